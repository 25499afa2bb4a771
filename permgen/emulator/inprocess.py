"""The emulator's backend behind the same RAM operations the SDK client offers, so one
contract suite runs in process and over HTTP through the real SDK."""

from __future__ import annotations

import json
from typing import Any

from permgen.account.operations import RamOperations
from permgen.emulator.backend import Backend
from permgen.emulator.state import ADMIN_KEY_ID, EmulatorError
from permgen.errors import CloudError


class InProcessRam(RamOperations):
    """RAM on a :class:`Backend`, called directly; errors become CloudError as from the SDK."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend

    def invoke(self, action: str, params: dict[str, str]) -> dict[str, Any]:
        handler = getattr(self.backend, action)
        try:
            result = handler(dict(params), self.backend.keys[ADMIN_KEY_ID])
        except EmulatorError as exc:
            raise CloudError(
                f"Ram {action} failed: {exc.code} (HTTP {exc.status}): {exc.message}",
                code=exc.code,
                http_status=exc.status,
                action=action,
            ) from None
        out: dict[str, Any] = json.loads(json.dumps(result))  # the shapes the wire carries
        return out


__all__ = ["InProcessRam"]
