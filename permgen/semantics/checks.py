"""Semantic checks over one policy, used by the PG2xx lint rules.

Containment of patterns is decided exactly (:mod:`permgen.semantics.glob`): pattern A is
contained in B when no string matches A but not B. A statement is reported as granting
nothing only when that is certain: every request it allows is also allowed by one other
Allow whose conditions are a subset of its own, or denied by one Deny without conditions
(or with a subset of its conditions).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from permgen import catalog
from permgen.model import ALLOW, DENY, Policy, Statement
from permgen.semantics.glob import realize, tokens


@dataclass(frozen=True)
class SemanticIssue:
    kind: str
    statement_index: int
    message: str


@lru_cache(maxsize=65536)
def contained(a: str, b: str, *, ignore_case: bool = False) -> bool:
    """Every string ``a`` matches, ``b`` matches too (wildcard patterns)."""
    if b == "*" or a == b:
        return True
    if ignore_case:
        a, b = a.lower(), b.lower()
    found = realize([tokens(a), tokens(b)])
    return not any(vec & 1 and not vec & 2 for vec in found.witnesses)


def _all_contained(items: Sequence[str], within: Sequence[str], *, ignore_case: bool) -> bool:
    return all(any(contained(x, y, ignore_case=ignore_case) for y in within) for x in items)


def _covers(big: Statement, small: Statement) -> bool:
    """``big`` matches every request ``small`` matches (plain Action/Resource only)."""
    if big.not_action or big.not_resource or small.not_action or small.not_resource:
        return False
    if not set(big.conditions) <= set(small.conditions):
        return False
    return _all_contained(small.actions, big.actions, ignore_case=True) and _all_contained(
        small.resources, big.resources, ignore_case=False
    )


def redundant_statements(policy: Policy) -> Iterator[SemanticIssue]:
    for i, s in enumerate(policy.statements):
        if s.effect != ALLOW:
            continue
        for j, d in enumerate(policy.statements):
            if j != i and d.effect == DENY and _covers(d, s):
                yield SemanticIssue(
                    "shadowed",
                    i,
                    f"every request this Allow matches is denied by Statement[{j}]; it grants nothing",
                )
                break
        else:
            for j, t in enumerate(policy.statements):
                if j == i or t.effect != ALLOW or not _covers(t, s):
                    continue
                if _covers(s, t) and j > i:
                    continue  # two identical statements: report only the later one
                yield SemanticIssue(
                    "contained",
                    i,
                    f"Statement[{j}] already allows every request this statement allows",
                )
                break


def _oss_actions(level: str | None = None) -> tuple[str, ...]:
    return tuple(
        i.name
        for i in catalog.actions().values()
        if i.service == "oss" and (level is None or i.level == level)
    )


def effectively_all_on_bucket(policy: Policy) -> Iterator[SemanticIssue]:
    """An Allow whose actions cover every OSS object (or bucket) action of a named bucket."""
    from permgen.model import wildcard_match

    objects, buckets = _oss_actions("object"), _oss_actions("bucket")
    for i, s in enumerate(policy.statements):
        if s.effect != ALLOW or s.not_resource:
            continue
        named = [
            r
            for r in s.resources
            if r.startswith("acs:oss:")
            and r.split(":", 4)[-1]
            and set(r.split(":", 4)[-1]) != {"*"}
        ]
        if not named:
            continue

        def granted(name: str, s: Statement = s) -> bool:
            hit = any(wildcard_match(a, name, ignore_case=True) for a in s.actions)
            return hit != s.not_action

        if all(granted(a) for a in objects) or all(granted(a) for a in buckets):
            yield SemanticIssue(
                "all-on-bucket",
                i,
                f"grants every OSS action on {', '.join(named)}: effectively oss:* there",
            )


def destructive_without_conditions(policy: Policy) -> Iterator[SemanticIssue]:
    from permgen.model import wildcard_match

    deletes = tuple(
        i.name for i in catalog.actions().values() if i.service == "oss" and i.access == "delete"
    )
    for i, s in enumerate(policy.statements):
        if s.effect != ALLOW or s.conditions or s.not_action:
            continue
        hits = [
            d for d in deletes if any(wildcard_match(a, d, ignore_case=True) for a in s.actions)
        ]
        if hits:
            yield SemanticIssue(
                "destructive-unconditioned",
                i,
                f"allows {', '.join(hits[:3])}{'...' if len(hits) > 3 else ''} with no condition (source network, HTTPS)",
            )


__all__ = [
    "SemanticIssue",
    "contained",
    "destructive_without_conditions",
    "effectively_all_on_bucket",
    "redundant_statements",
]
