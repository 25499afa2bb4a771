"""``permgen emulator``: a local RAM (2015-05-01) and STS (2015-04-01) RPC API on 127.0.0.1
that Alibaba's own SDK talks to unchanged. See docs/emulator.md."""

from permgen.emulator.backend import Backend
from permgen.emulator.server import Emulator, Fault
from permgen.emulator.state import (
    ACCOUNT,
    ADMIN_KEY_ID,
    ADMIN_KEY_SECRET,
    HANDLERS,
    EmulatorError,
)


def coverage_markdown() -> str:
    """The actions the emulator implements, with what each reproduces (for docs/emulator.md)."""
    out = ["| API | action | reproduces |", "|---|---|---|"]
    for (version, action), name in sorted(HANDLERS.items()):
        doc = " ".join((getattr(Backend, name).__doc__ or "").split())
        api = "RAM 2015-05-01" if version == "2015-05-01" else "STS 2015-04-01"
        out.append(f"| {api} | {action} | {doc} |")
    from permgen.emulator.oss import coverage_rows

    for name, request, doc in sorted(coverage_rows()):
        out.append(f"| OSS (REST, path-style) | {name} (`{request}`) | {doc} |")
    return "\n".join(out) + "\n"


__all__ = [
    "ACCOUNT",
    "ADMIN_KEY_ID",
    "ADMIN_KEY_SECRET",
    "Backend",
    "Emulator",
    "EmulatorError",
    "Fault",
    "coverage_markdown",
]
