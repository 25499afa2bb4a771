"""Spreading a batch over forked worker processes, for the batch commands (lint, compile).

Each worker is a ``fork`` of the caller, so it starts with everything already imported and
loaded; it runs one function on one share of the work and sends the pickled result back on
a pipe. The caller gets the results in order, with ``None`` for a worker that failed (an
exception, or killed from outside), and redoes that share itself, so errors surface exactly
as in a one-process run.

Ctrl-C belongs to the caller: it is held back while forking (so a worker never sees it
before it has set itself to ignore it), the workers ignore it, and the caller kills and reaps
them before the KeyboardInterrupt goes on. Forking a process that runs other threads is
unsafe: use this only from single-threaded programs such as the command line.
"""

from __future__ import annotations

import os
import pickle
import signal
from collections.abc import Callable, Sequence
from typing import NoReturn, TypeVar

T = TypeVar("T")
R = TypeVar("R")

#: The most workers a batch uses, whatever the machine has.
MAX_JOBS = 8


def available() -> bool:
    """Whether this platform can fork workers."""
    return hasattr(os, "fork")


def default_jobs() -> int:
    """The CPUs this process may run on (its affinity where known), at most :data:`MAX_JOBS`."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, MAX_JOBS))


def split(items: Sequence[T], parts: int) -> list[Sequence[T]]:
    """``items`` in at most ``parts`` contiguous slices of nearly equal size, in order."""
    size = max(1, -(-len(items) // max(1, parts)))
    return [items[i : i + size] for i in range(0, len(items), size)]


def _worker(fn: Callable[[T], R], item: T, read_end: int, write_end: int) -> NoReturn:
    code = 1
    try:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})
        os.close(read_end)
        data = pickle.dumps(fn(item), pickle.HIGHEST_PROTOCOL)
        with os.fdopen(write_end, "wb") as out:
            out.write(data)
        code = 0
    finally:
        os._exit(code)  # no atexit handlers, no flushing the caller's buffers twice


def fork_map(
    fn: Callable[[T], R], items: Sequence[T], *, first_here: bool = False
) -> list[R | None]:
    """``[fn(item) for item in items]``, each in its own forked worker; ``None`` where a
    worker failed or could not be started (the system refused another process).

    ``first_here``: the first item runs in this process, while the workers run the others
    (its result is not pickled; an exception it raises stops the workers and goes on)."""
    here = 1 if first_here and items else 0
    children: list[tuple[int, int]] = []  # (pid, read end of its pipe), in item order
    live: dict[int, int | None] = {}  # children not reaped yet -> pipe end still to close
    interrupt = {signal.SIGINT}
    try:
        for item in items[here:]:
            # Ctrl-C waits until the new child is in ``live``: lifting the mask raises the
            # KeyboardInterrupt of a Ctrl-C that came meanwhile, and a child not yet recorded
            # then would be left running, unseen by the clean-up below.
            signal.pthread_sigmask(signal.SIG_BLOCK, interrupt)
            try:
                read_end, write_end = os.pipe()
                try:
                    pid = os.fork()
                except OSError:
                    pid = -1
                if pid == 0:
                    _worker(fn, item, read_end, write_end)  # never returns
                if pid > 0:
                    children.append((pid, read_end))
                    live[pid] = read_end
                else:  # no more processes: what is left comes back as None, for the caller
                    os.close(read_end)
                os.close(write_end)
            finally:
                signal.pthread_sigmask(signal.SIG_UNBLOCK, interrupt)
            if pid < 0:
                break
        results: list[R | None] = [None] * len(items)
        if here:
            results[0] = fn(items[0])
        for index, (pid, read_end) in enumerate(children, start=here):
            live[pid] = None  # the stream closes it from here on
            with os.fdopen(read_end, "rb") as stream:
                data = stream.read()
            _, status = os.waitpid(pid, 0)
            del live[pid]
            if os.waitstatus_to_exitcode(status) == 0 and data:
                results[index] = pickle.loads(data)  # our own child's bytes
        return results
    except BaseException:
        signal.pthread_sigmask(signal.SIG_BLOCK, interrupt)  # a second Ctrl-C waits too
        try:
            _kill_and_reap(live)
        finally:
            signal.pthread_sigmask(signal.SIG_UNBLOCK, interrupt)
        raise


def _kill_and_reap(live: dict[int, int | None]) -> None:
    for pid, unclosed in live.items():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (ProcessLookupError, ChildProcessError):
            pass
        if unclosed is not None:
            os.close(unclosed)


__all__ = ["MAX_JOBS", "available", "default_jobs", "fork_map", "split"]
