"""The catalog of actions permgen knows: OSS (every action of ram-facts 3.2), plus the RAM
and STS actions that matter for risk classification.

Each entry has its name, resource level (service / bucket / object / account), access class
(read, list, write, delete, permissions, tagging, configuration), risk classes and the source
that documents it. The data lives in ``actions.json`` next to this file; it is loaded once,
on first use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LEVELS = ("service", "bucket", "object", "account")
ACCESS_CLASSES = ("read", "list", "write", "delete", "permissions", "tagging", "configuration")
RISK_CLASSES = (
    "destructive",
    "exposure",
    "permissions-management",
    "bucket-wide-read",
    "wildcard-scope",
    "future-actions",
)


@dataclass(frozen=True)
class ActionInfo:
    name: str
    level: str
    access: str
    risk: tuple[str, ...]
    source: str
    service: str = ""

    def __post_init__(self) -> None:
        if not self.service:
            object.__setattr__(self, "service", self.name.partition(":")[0])


@cache
def actions() -> dict[str, ActionInfo]:
    """All catalog actions keyed by their lower-case name."""
    text = (Path(__file__).parent / "actions.json").read_text("utf-8")
    data = json.loads(text)
    out: dict[str, ActionInfo] = {}
    for row in data["actions"]:
        info = ActionInfo(
            name=row["name"],
            level=row["level"],
            access=row["access"],
            risk=tuple(row.get("risk", ())),
            source=row["source"],
        )
        out[info.name.lower()] = info
    return out


def lookup(action: str) -> ActionInfo | None:
    """The catalog entry for an exact action name (any case), or None."""
    return actions().get(action.lower())


def canonical_action_name(service: str, name: str) -> str:
    """The catalog's spelling of ``service:name``, or the input with the service lower-cased."""
    info = actions().get(f"{service}:{name}".lower())
    return info.name if info else f"{service.lower()}:{name}"


@cache
def known_services() -> frozenset[str]:
    return frozenset(info.service for info in actions().values())


__all__ = [
    "ACCESS_CLASSES",
    "LEVELS",
    "RISK_CLASSES",
    "ActionInfo",
    "actions",
    "canonical_action_name",
    "known_services",
    "lookup",
]
