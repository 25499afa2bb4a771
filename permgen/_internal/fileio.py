"""Atomic file writes: a file is written whole or not at all.

Each file goes to a temporary file in the same directory, is flushed and fsync'd, gets its
mode, and is renamed over the target. :func:`atomic_write_many` writes every temporary file
first and renames only when all were written, so a failure leaves no output at all.
Files that hold secrets are written with mode 0600 from the start (the temporary file is
created 0600 by :func:`tempfile.mkstemp`).

A path that cannot be written (a missing or read-only place, ``/proc``, a directory where
the file should be) raises :class:`~permgen.errors.InputError` (exit 2) naming the path;
directories created for the output are removed again when the write fails.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path

from permgen.errors import InputError


def _cannot_write(path: Path, exc: OSError) -> InputError:
    return InputError(f"{path}: cannot write: {exc.strerror or exc}")


def _make_parents(directory: Path) -> list[Path]:
    """Create ``directory`` and its missing parents; returns those created, deepest first."""
    missing: list[Path] = []
    d = directory
    while not d.exists() and d != d.parent:
        missing.append(d)
        d = d.parent
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError:
        _remove_dirs(missing)
        raise
    return missing


def _remove_dirs(created: list[Path]) -> None:
    for d in created:  # deepest first; only empty directories go
        with contextlib.suppress(OSError):
            d.rmdir()


def _write_temp(path: Path, data: str | bytes, mode: int, durable: bool = True) -> Path:
    if path.is_dir():
        raise IsADirectoryError(21, "Is a directory")
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            fh.write(data.encode("utf-8") if isinstance(data, str) else data)
            fh.flush()
            if durable:
                os.fsync(fh.fileno())
        os.chmod(tmp, mode)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return Path(tmp)


def atomic_write(path: str | os.PathLike[str], data: str | bytes, *, mode: int = 0o644) -> None:
    """Write ``data`` to ``path`` atomically with file mode ``mode``."""
    target = Path(path)
    created: list[Path] = []
    try:
        created = _make_parents(target.parent)
        tmp = _write_temp(target, data, mode)
    except OSError as exc:
        _remove_dirs(created)
        raise _cannot_write(target, exc) from None
    except BaseException:
        _remove_dirs(created)
        raise
    try:
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        _remove_dirs(created)
        if isinstance(exc, OSError):
            raise _cannot_write(target, exc) from None
        raise


def atomic_write_many(
    files: Mapping[Path, str | bytes], *, mode: int = 0o644, durable: bool = True
) -> None:
    """Write several files: all temporary files first, then the renames.

    If any temporary write fails, every temporary file is removed and no target changes.
    ``durable=False`` skips the per-file fsync: each file is still whole or absent for every
    reader and across a crash of this process, but a power loss may lose it. For outputs
    that can be regenerated (compiled policies), where a thousand fsyncs cost seconds.
    """
    written: list[tuple[Path, Path]] = []
    created: list[Path] = []
    current = Path()
    try:
        for target, data in files.items():
            current = Path(target)
            created += _make_parents(current.parent)
            written.append((_write_temp(current, data, mode, durable), current))
    except BaseException as exc:
        for tmp, _ in written:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _remove_dirs(created)
        if isinstance(exc, OSError):
            raise _cannot_write(current, exc) from None
        raise
    for tmp, target in written:
        os.replace(tmp, target)


def check_writable(path: str | os.PathLike[str]) -> None:
    """Raise :class:`InputError` now if :func:`atomic_write` could not write ``path``.

    For a write that must not fail after something irreversible (a token minted): the
    nearest existing directory is probed with a temporary file, removed at once; nothing
    is created for good.
    """
    target = Path(path)
    d = target.parent
    while not d.exists() and d != d.parent:
        d = d.parent
    try:
        if target.is_dir():
            raise IsADirectoryError(21, "Is a directory")
        if not d.is_dir():
            raise NotADirectoryError(20, f"{d} is not a directory")
        fd, tmp = tempfile.mkstemp(prefix=".permgen-probe.", dir=d)
        os.close(fd)
        os.unlink(tmp)
    except OSError as exc:
        raise _cannot_write(target, exc) from None


def write_secret_file(path: str | os.PathLike[str], data: str) -> None:
    """Write a file that holds credentials: mode 0600, atomically."""
    atomic_write(path, data, mode=0o600)


__all__ = ["atomic_write", "atomic_write_many", "check_writable", "write_secret_file"]
