"""Semantic checks over one policy, used by the PG2xx lint rules.

Containment of patterns is decided exactly (:mod:`permgen.semantics.automata`): pattern A is
contained in B when no string matches A but not B. A statement is reported as granting
nothing only when that is certain: every request it allows is also allowed by one other
Allow whose conditions are a subset of its own, or denied by one Deny without conditions
(or with a subset of its conditions).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from functools import lru_cache

from permgen.policy import catalog
from permgen.policy.model import ALLOW, DENY, Policy, Statement
from permgen.policy.wildcard import match as wildcard_match
from permgen.semantics.automata import Realized, realize, tokens
from permgen.semantics.conditions import documented_key


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
        if a == b:
            return True
    wild_b = _first_wild(b)
    if wild_b == len(b):  # b is a literal: it contains only itself
        return False
    lit_a = a[: _first_wild(a)]
    if not lit_a.startswith(b[:wild_b]):
        return False  # a matches strings that do not start with b's literal prefix
    if b.endswith("*") and _first_wild(b) == len(b) - 1:
        return True  # b is "L*" and every string of a starts with L
    return _contains(realize([tokens(a), tokens(b)]))


def _first_wild(pattern: str) -> int:
    cut = [i for i in (pattern.find("*"), pattern.find("?")) if i >= 0]
    return min(cut) if cut else len(pattern)


@lru_cache(maxsize=65536)
def contained_resource(a: str, b: str) -> bool:
    """Resource pattern ``a`` is contained in ``b`` (ARN heads and rests compared apart,
    wildcards in the head not crossing ":", as the evaluator matches them)."""
    from permgen.policy.wildcard import arn_segments

    if b == "*" or a == b:
        return True
    na, nb = arn_segments(a), arn_segments(b)
    if na and nb:
        head_a, head_b = a[:na], b[:nb]
        if head_a != head_b:
            found = realize(
                [tokens(head_a + ":", arn=True)[:-1], tokens(head_b + ":", arn=True)[:-1]]
            )
            if not _contains(found):
                return False
        return contained(a[na + 1 :], b[nb + 1 :])
    return _contains(realize([tokens(a, arn=True), tokens(b, arn=True)]))


def _contains(found: Realized) -> bool:
    """No string matches the first pattern but not the second. A search cut short at its
    state limit proves nothing, so it answers False (a statement is then not reported as
    redundant: the safe side)."""
    return found.complete and not any(vec & 1 and not vec & 2 for vec in found.witnesses)


def _all_contained(items: Sequence[str], within: Sequence[str], *, ignore_case: bool) -> bool:
    if ignore_case:
        return all(any(contained(x, y, ignore_case=True) for y in within) for x in items)
    return all(any(contained_resource(x, y) for y in within) for x in items)


class _PlainStatement:
    """What containment checks need of a plain (Action + Resource) statement, computed once."""

    __slots__ = ("_conditions", "actions", "index", "statement", "wild_actions", "wild_resources")

    def __init__(self, index: int, s: Statement) -> None:
        self.index = index
        self.statement = s
        self.actions = frozenset([a.lower() for a in s.actions])
        self.wild_actions = any("*" in a or "?" in a for a in s.actions)
        self.wild_resources = any("*" in r or "?" in r for r in s.resources)
        self._conditions: frozenset[object] | None = None

    @property
    def conditions(self) -> frozenset[object]:
        if self._conditions is None:
            self._conditions = frozenset(self.statement.conditions)
        return self._conditions


def _covers(b: _PlainStatement, sm: _PlainStatement) -> bool:
    """``b``'s statement matches every request ``sm``'s matches."""
    big, small = b.statement, sm.statement
    if big.conditions and not b.conditions <= sm.conditions:
        return False
    # plain names on the covering side: containment is set inclusion
    if not b.wild_actions:
        if not sm.actions <= b.actions:
            return False
    elif not _all_contained(small.actions, big.actions, ignore_case=True):
        return False
    if not b.wild_resources:
        return set(small.resources) <= set(big.resources)
    return _all_contained(small.resources, big.resources, ignore_case=False)


class _Index:
    """Statements that could cover a given one, in statement order.

    A statement whose actions are all plain names can cover only statements whose
    actions are all among them, so it is filed under each of its actions; a statement
    with a wildcard action is a candidate for every statement.
    """

    def __init__(self, shapes: list[_PlainStatement]) -> None:
        self.by_action: dict[str, list[_PlainStatement]] = {}
        self.wild: list[_PlainStatement] = []
        for sh in shapes:
            if sh.wild_actions:
                self.wild.append(sh)
            else:
                for a in sh.actions:
                    self.by_action.setdefault(a, []).append(sh)

    def candidates(self, sm: _PlainStatement) -> list[_PlainStatement]:
        first = sm.statement.actions[0].lower()
        named = [] if sm.wild_actions else self.by_action.get(first, [])
        if not self.wild:
            return named
        if not named:
            return self.wild
        return sorted([*named, *self.wild], key=lambda sh: sh.index)


def redundant_statements(policy: Policy) -> Iterator[SemanticIssue]:
    shapes = [
        _PlainStatement(j, t)
        for j, t in enumerate(policy.statements)
        if not (t.not_action or t.not_resource) and t.actions
    ]
    # A Deny with conditions shadows an Allow only when its keys are spelled as requests
    # name them: otherwise it may not apply under one reading of key-name case while the
    # Allow does under the other (docs/unconfirmed.md).
    denies = _Index(
        [
            sh
            for sh in shapes
            if sh.statement.effect == DENY
            and all(documented_key(c.key) == c.key for c in sh.statement.conditions)
        ]
    )
    allow_shapes = [sh for sh in shapes if sh.statement.effect == ALLOW]
    allows = _Index(allow_shapes)
    for ss in allow_shapes:
        i = ss.index
        shadow = next((d.index for d in denies.candidates(ss) if _covers(d, ss)), None)
        if shadow is not None:
            yield SemanticIssue(
                "shadowed",
                i,
                f"every request this Allow matches is denied by Statement[{shadow}]; it grants nothing",
            )
            continue
        for ts in allows.candidates(ss):
            j = ts.index
            if j == i or not _covers(ts, ss):
                continue
            if j > i and _covers(ss, ts):
                continue  # two identical statements: report only the later one
            yield SemanticIssue(
                "contained", i, f"Statement[{j}] already allows every request this statement allows"
            )
            break
    # An Allow with NotAction or NotResource is compared with the others only when it repeats
    # one exactly (the same effect, lists and conditions; actions in any case): the later one
    # grants nothing.
    first: dict[tuple[object, ...], int] = {}
    for j, t in enumerate(policy.statements):
        if t.effect != ALLOW or not (t.not_action or t.not_resource):
            continue
        key = (
            t.not_action,
            frozenset(a.lower() for a in t.actions),
            t.not_resource,
            frozenset(t.resources),
            frozenset(t.conditions),
        )
        if key in first:
            yield SemanticIssue(
                "contained",
                j,
                f"Statement[{first[key]}] already allows every request this statement allows",
            )
        else:
            first[key] = j


@lru_cache(maxsize=8)
def _oss_actions(level: str | None = None) -> tuple[str, ...]:
    return tuple(
        i.name
        for i in catalog.actions().values()
        if i.service == "oss" and (level is None or i.level == level)
    )


def effectively_all_on_bucket(policy: Policy) -> Iterator[SemanticIssue]:
    """An Allow whose actions cover every OSS object (or bucket) action of a named bucket."""
    objects, buckets = _oss_actions("object"), _oss_actions("bucket")
    fewest = min(len(objects), len(buckets))
    for i, s in enumerate(policy.statements):
        if s.effect != ALLOW or s.not_resource:
            continue
        if (
            not s.not_action
            and len(s.actions) < fewest
            and not any("*" in a or "?" in a for a in s.actions)
        ):
            continue  # a short list of plain names cannot name every action
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


@lru_cache(maxsize=1)
def _deletes() -> tuple[str, ...]:
    return tuple(
        i.name for i in catalog.actions().values() if i.service == "oss" and i.access == "delete"
    )


def _matches_action(pattern: str, name: str) -> bool:
    return wildcard_match(pattern, name, ignore_case=True)


def destructive_without_conditions(policy: Policy) -> Iterator[SemanticIssue]:
    deletes = _deletes()
    for i, s in enumerate(policy.statements):
        if s.effect != ALLOW or s.conditions or s.not_action:
            continue
        hits = [d for d in deletes if any(_matches_action(a, d) for a in s.actions)]
        if hits:
            more = "..." if len(hits) > 3 else ""
            yield SemanticIssue(
                "destructive-unconditioned",
                i,
                f"allows {', '.join(hits[:3])}{more} with no condition (source network, HTTPS)",
            )


__all__ = [
    "SemanticIssue",
    "contained",
    "contained_resource",
    "destructive_without_conditions",
    "effectively_all_on_bucket",
    "redundant_statements",
]
