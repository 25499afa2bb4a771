"""Atomic file writes: a file is written whole or not at all.

Each file goes to a temporary file in the same directory, is flushed and fsync'd, gets its
mode, and is renamed over the target. :func:`atomic_write_many` writes every temporary file
first and renames only when all were written, so a failure leaves no output at all.
Files that hold secrets are written with mode 0600 from the start (the temporary file is
created 0600 by :func:`tempfile.mkstemp`).
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Mapping
from pathlib import Path


def _write_temp(path: Path, data: str | bytes, mode: int, durable: bool = True) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
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
    tmp = _write_temp(target, data, mode)
    try:
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
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
    try:
        for target, data in files.items():
            written.append((_write_temp(Path(target), data, mode, durable), Path(target)))
    except BaseException:
        for tmp, _ in written:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        raise
    for tmp, target in written:
        os.replace(tmp, target)


def write_secret_file(path: str | os.PathLike[str], data: str) -> None:
    """Write a file that holds credentials: mode 0600, atomically."""
    atomic_write(path, data, mode=0o600)


__all__ = ["atomic_write", "atomic_write_many", "write_secret_file"]
