"""Running the command of ``permgen token --exec``.

permgen starts the command as a child process and stays alive until it ends:

* Signals that would end permgen (``SIGTERM``, ``SIGINT``, ``SIGHUP``, ``SIGQUIT``) and the
  user signals are forwarded to the child, and permgen keeps waiting for it, so the command
  never keeps running with the credentials after permgen is gone. A signal the terminal
  sent (Ctrl-C, Ctrl-\\\\, a hang-up) already reached the child, which is in the same
  process group; it is not sent a second time.
* The exit code is the child's; a child killed by signal N gives 128+N, as a shell reports.
* A command that cannot be started (missing, not executable, not a program) is bad input:
  a one-line message and exit 2.

Signals are blocked in permgen's thread before the child starts (the child gets the mask
it had before) and taken with ``sigtimedwait``, so there is no window in which a signal
ends permgen but not the child.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import subprocess
from collections.abc import Mapping, Sequence
from contextlib import AbstractContextManager

from permgen.errors import UsageError

#: Signals forwarded to the child.
FORWARDED: tuple[signal.Signals, ...] = tuple(
    getattr(signal, name)
    for name in ("SIGTERM", "SIGINT", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")
    if hasattr(signal, name)
)
#: How often permgen looks at the child when no signal arrives (seconds).
POLL_INTERVAL = 0.5
#: ``si_code`` of a signal the kernel generated (the terminal's Ctrl-C, Ctrl-\\, hang-up).
_SI_KERNEL = 0x80


def exit_code(returncode: int) -> int:
    """A ``Popen.returncode`` as a shell reports it: killed by signal N -> 128+N."""
    return 128 - returncode if returncode < 0 else returncode


def _start(
    argv: Sequence[str], env: Mapping[str, str], mask: set[int] | set[signal.Signals] | None
) -> subprocess.Popen[bytes]:
    def restore_mask() -> None:  # runs in the child, between fork and exec
        signal.pthread_sigmask(signal.SIG_SETMASK, mask or ())

    try:
        return subprocess.Popen(
            list(argv), env=dict(env), preexec_fn=restore_mask if mask is not None else None
        )
    except FileNotFoundError:
        raise UsageError(f"--exec: command not found: {argv[0]!r}") from None
    except PermissionError:
        raise UsageError(f"--exec: {argv[0]!r} is not an executable file") from None
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno or 0, "error")
        raise UsageError(f"--exec: cannot run {argv[0]!r}: {reason}") from None


def check_runnable(argv: Sequence[str], env: Mapping[str, str]) -> None:
    """A usage error unless ``argv[0]`` names an executable file (looked up in the ``PATH``
    of ``env`` when it has no ``/``), so no credentials are minted for a command that cannot
    start."""
    if not argv:
        raise UsageError("--exec needs a command after --")
    name = argv[0]
    if "/" in name:
        if not os.path.exists(name):
            raise UsageError(f"--exec: command not found: {name!r}")
        if os.path.isdir(name) or not os.access(name, os.X_OK):
            raise UsageError(f"--exec: {name!r} is not an executable file")
    elif shutil.which(name, path=env.get("PATH", os.defpath)) is None:
        raise UsageError(f"--exec: command not found: {name!r}")


def run(
    argv: Sequence[str],
    env: Mapping[str, str],
    *,
    alongside: AbstractContextManager[object] | None = None,
) -> int:
    """Run ``argv`` with exactly ``env``; forward signals; return its exit code (128+N when
    a signal ended it).

    ``alongside`` (the ``--refresh`` credentials server) is entered just before the child
    starts and left when it has ended; it is entered with the forwarded signals blocked, so
    threads it starts inherit the mask and the signals come to this thread."""
    if not argv:
        raise UsageError("--exec needs a command after --")
    if not hasattr(signal, "sigtimedwait"):  # pragma: no cover - not POSIX
        with alongside or contextlib.nullcontext():
            return exit_code(_start(argv, env, None).wait())
    waited = {*FORWARDED, signal.SIGCHLD}
    before = signal.pthread_sigmask(signal.SIG_BLOCK, waited)
    try:
        with alongside or contextlib.nullcontext():
            return _run_blocked(argv, env, before, waited)
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, before)


def _run_blocked(
    argv: Sequence[str],
    env: Mapping[str, str],
    before: set[int | signal.Signals],
    waited: set[signal.Signals],
) -> int:
    child = _start(argv, env, before)
    while (code := child.poll()) is None:
        info = signal.sigtimedwait(waited, POLL_INTERVAL)
        if info is None or info.si_signo == signal.SIGCHLD:
            continue
        if info.si_code == _SI_KERNEL:
            continue  # from the terminal: the child, in our process group, has it too
        with contextlib.suppress(ProcessLookupError):  # it may have ended in between
            child.send_signal(info.si_signo)
    while signal.sigtimedwait(waited, 0) is not None:
        pass  # arrived as the child ended: nothing left to forward them to
    return exit_code(code)


__all__ = ["FORWARDED", "POLL_INTERVAL", "check_runnable", "exit_code", "run"]
