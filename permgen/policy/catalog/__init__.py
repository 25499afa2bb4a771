"""The catalog of actions permgen knows: OSS (every action of ram-facts 3.2), plus the RAM
and STS actions that matter for risk classification.

Each entry has its name, resource level (service / bucket / object / account), access class
(read, list, write, delete, permissions, tagging, configuration), risk classes, for actions
that set an ACL the condition key carrying it, and the source that documents it. The risk
``bucket-wide-read`` marks a data read (object contents or key listings): the diff reports it
only when the read covers a whole bucket. The data lives in ``actions.json`` next to this
file; it is loaded once, on first use.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path

LEVELS = ("service", "bucket", "object", "account")
ACCESS_CLASSES = ("read", "list", "write", "delete", "permissions", "tagging", "configuration")
#: Every risk class, most severe first: the order reports list them in and the names
#: ``--fail-on-risk`` accepts (docs/semantics.md, Risk classes).
RISK_CLASSES = (
    "destructive",
    "exposure",
    "permissions-management",
    "condition-removed",
    "bucket-wide-read",
    "wildcard-scope",
    "future-actions",
)

#: ACL values that make an object or bucket readable by anyone (ram-facts 1.7).
PUBLIC_ACLS = ("public-read", "public-read-write")


@dataclass(frozen=True)
class ActionInfo:
    name: str
    level: str
    access: str
    risk: tuple[str, ...]
    source: str
    service: str = ""
    #: the condition key through which a request of this action sets an ACL
    #: (``oss:x-oss-object-acl``, ``oss:x-oss-acl``), or ""
    acl_key: str = ""

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
            acl_key=row.get("acl_key", ""),
        )
        out[info.name.lower()] = info
    return out


def lookup(action: str) -> ActionInfo | None:
    """The catalog entry for an exact action name (any case), or None."""
    return actions().get(action.lower())


@cache
def _names() -> tuple[str, ...]:
    return tuple(i.name for i in actions().values())


def matching(pattern: str) -> list[ActionInfo]:
    """The catalog actions an Action pattern matches (any case, as the evaluator)."""
    from permgen.policy.wildcard import names_matching

    table = actions()
    return [table[n.lower()] for n in names_matching(pattern, _names())]


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
    "PUBLIC_ACLS",
    "RISK_CLASSES",
    "ActionInfo",
    "actions",
    "canonical_action_name",
    "known_services",
    "lookup",
]
