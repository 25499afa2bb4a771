"""Risk classes of a diff entry, and the notes that show a class on a concrete request.

The catalog gives each action its classes (docs/semantics.md, Risk classes); an entry's
classes then depend on its requests: ``bucket-wide-read`` only for data reads that reach a
whole bucket, ``exposure`` also when an upload may now set a public ACL, and
``condition-removed`` when only a source network or transport condition tells new access
from what the old side granted. Each such class is confirmed on a request with the
evaluators before it is claimed.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from permgen.policy import catalog
from permgen.policy.model import Statement
from permgen.policy.wildcard import arn_segments
from permgen.policy.wildcard import match as wildcard_match
from permgen.semantics.automata import (
    Budget,
    BudgetExceeded,
)
from permgen.semantics.classes import (
    DIFF_STEP_LIMIT,
    _describe_condition,
    _KeyClasses,
    _level_of,
    _pretty_resource,
)
from permgen.semantics.conditions import (
    CompiledCondition,
    MissingKey,
)
from permgen.semantics.evaluate import Evaluator, Request

#: Risk classes in the order reports list them (most severe first): the catalog's.
RISK_ORDER = catalog.RISK_CLASSES


#: Condition keys that say where a request comes from or how it travels. New access that
#: only a value of these keys tells apart from access the old side already granted is
#: ``condition-removed`` (docs/semantics.md, Risk classes).
NETWORK_KEYS = ("acs:SourceIp", "acs:SourceVpc", "acs:SecureTransport")

#: At most this many variants of a witness (values of the network keys) are evaluated
#: when looking for the condition a new access item no longer needs.
CONDITION_TRIES = 4096

#: At most this many other requests of an item (besides its witness) are tried as the
#: place where a network condition was dropped.
CONDITION_CANDIDATES = 32


@dataclass(frozen=True)
class RiskNote:
    """Why an item has a risk class, with a request that shows it (decided as the item's
    side says: allowed by one side, denied by the other)."""

    risk: str
    text: str
    request: Request

    def to_json(self) -> dict[str, Any]:
        return {"risk": self.risk, "text": self.text, "request": self.request.to_json()}


def _reaches(rest: str, *, object_level: bool) -> bool:
    """Whether the wildcard pattern ``rest`` (an ARN after its fourth ":") matches some
    bucket name (no "/"), or some ``bucket/key`` with a non-empty bucket and key."""
    # states: 0 start, 1 in the bucket name, 2 just after "/", 3 in the key; -1 dead
    accept = 3 if object_level else 1

    def step(state: int, ch: str) -> int:
        if state in (0, 1):
            return (2 if state == 1 and object_level else -1) if ch == "/" else 1
        return 3 if state in (2, 3) else -1

    states = {0}
    for ch in rest:
        if ch == "*":
            grown = set(states)
            while True:
                more = {step(s, c) for s in grown for c in "a/"} - {-1}
                if more <= grown:
                    break
                grown |= more
            states = grown
        else:
            chars = "a/" if ch == "?" else ch
            states = {step(s, c) for s in states for c in chars} - {-1}
        if not states:
            return False
    return accept in states


def _level_possible(statement: Statement, level: str) -> bool:
    """Whether the statement's resources can name an OSS resource of ``level`` (catalog
    levels: ``acs:oss:*:<account>:*``, ``...:<bucket>``, ``...:<bucket>/<key>``)."""
    if statement.not_resource or level not in ("service", "bucket", "object"):
        return True
    for r in statement.resources:
        if r == "*":
            return True
        head = arn_segments(r)
        if not head:
            continue  # not an ARN: no OSS request names it
        if not wildcard_match(r[:head].split(":")[1], "oss"):
            continue
        rest = r[head + 1 :]
        if level == "service":
            if wildcard_match(rest, "*"):
                return True
        elif _reaches(rest, object_level=level == "object"):
            return True
    return False


def _whole_bucket(pattern: str, level: str, statement: Statement) -> bool:
    """Whether ``pattern`` lets a data read of ``level`` cover a whole bucket: every key of
    some bucket (object reads), or listing a bucket with no limiting ``oss:Prefix``."""
    if pattern == "*":
        return True
    head = arn_segments(pattern)
    rest = pattern[head + 1 :] if head else pattern
    if level == "object":
        stem = rest.rstrip("*?")
        tail = rest[len(stem) :]
        slashes = stem.count("/")
        return "*" in tail and (slashes == 0 or (slashes == 1 and stem.endswith("/")))
    if not _reaches(rest, object_level=False):
        return False
    for c in statement.conditions:
        if c.key.lower() != "oss:prefix" or c.operator not in ("StringEquals", "StringLike"):
            continue
        if not any(c.operator == "StringLike" and set(v) <= {"*"} for v in c.values):
            return False  # a prefix condition that limits the listing
    return True


def _representatives(pattern: str, witness: Request, level: str | None) -> list[str]:
    """Resources of ``level`` (None: any) that ``pattern`` matches, to try: the witness's
    when it matches, and readable ones (a last ``*`` may stand for ``bucket/key``)."""
    cut = pattern.rfind("*")
    tries = [witness.resource, _pretty_resource(pattern)]
    if cut >= 0:
        tries.append(_pretty_resource(pattern[:cut] + "example/example" + pattern[cut + 1 :]))
    return [
        r
        for r in dict.fromkeys(tries)
        if wildcard_match(pattern, r, arn=True) and (level is None or _level_of(r) == level)
    ]


def _with(context: Mapping[str, str], key: str, value: str | None) -> dict[str, str]:
    """``context`` with ``key`` (any spelling) set to ``value`` (None: absent)."""
    out = {k: v for k, v in context.items() if k.lower() != key.lower()}
    if value is not None:
        out[key] = value
    return out


def _bucket_wide(
    actions: Sequence[str],
    statement: Statement,
    witness: Request,
    this: Evaluator,
    other: Evaluator,
) -> bool:
    """Some data read on a whole-bucket pattern of the statement is decided differently."""
    reads = [
        info
        for a in actions
        if (info := catalog.lookup(a)) is not None
        and info.service == "oss"
        and "bucket-wide-read" in info.risk
    ]
    if not reads:
        return False
    if statement.not_resource:
        return True
    for info in reads:
        for r in statement.resources:
            if not _whole_bucket(r, info.level, statement):
                continue
            for resource in _representatives(r, witness, info.level):
                req = Request(info.name, resource, witness.context)
                if this.allows(req) and not other.allows(req):
                    return True
    return False


def _public_acl(
    actions: Sequence[str], statement: Statement, witness: Request, old: Evaluator, new: Evaluator
) -> RiskNote | None:
    """A request that sets a public ACL and that only the new side allows."""
    for a in actions:
        info = catalog.lookup(a)
        if info is None or not info.acl_key:
            continue
        resources = [witness.resource] if _level_of(witness.resource) == info.level else []
        if not statement.not_resource:
            resources += [
                p for r in statement.resources for p in _representatives(r, witness, info.level)
            ]
        for resource in dict.fromkeys(resources):
            found = []
            for value in catalog.PUBLIC_ACLS:
                req = Request(info.name, resource, _with(witness.context, info.acl_key, value))
                if new.allows(req) and not old.allows(req):
                    found.append(req)
            if found:
                header = info.acl_key.partition(":")[2]
                who = {"oss:PutObject": "uploads", "oss:PutBucket": "new buckets"}.get(
                    info.name, info.name
                )
                values = " or ".join(r.context[info.acl_key] for r in found)
                return RiskNote("exposure", f"{who} may now set {header}: {values}", found[0])
    return None


@lru_cache(maxsize=1024)
def _network_values(
    key: str, atoms: tuple[tuple[str, tuple[str, ...], str], ...], missing: MissingKey
) -> tuple[str | None, ...]:
    """One value (None: absent) of ``key`` per class its atoms tell apart."""
    compiled = [CompiledCondition(op, spelled, values) for op, values, spelled in atoms]
    try:
        classes = _KeyClasses(key, compiled, missing, Budget(DIFF_STEP_LIMIT)).classes
    except BudgetExceeded:
        return (None,)
    return tuple(dict.fromkeys(value for _truth, value, _spelling in classes))


def _requirement(conditions: Sequence[Any], key: str) -> str:
    parts = []
    for c in conditions:
        if c.key.lower() != key.lower():
            continue
        if c.operator == "Bool" and len(c.values) == 1:
            parts.append(f"{key}={c.values[0]}")
        else:
            parts.append(_describe_condition(c))
    return " and ".join(parts)


def _targets(statement: Statement, action: str, resource: str) -> bool:
    """Whether ``statement`` may apply to requests of ``action`` on ``resource`` (its
    conditions aside; resources compared without case, so never too few)."""
    if any(wildcard_match(p, action, ignore_case=True) for p in statement.actions) is (
        statement.not_action
    ):
        return False
    if statement.not_resource:
        return True
    return any(wildcard_match(r, resource, ignore_case=True, arn=True) for r in statement.resources)


def _restricted(ev: Evaluator, action: str, resource: str) -> Evaluator:
    """``ev`` over the statements that may apply to ``action`` on ``resource``: it decides
    every request of that action on that resource exactly as ``ev`` does."""
    return Evaluator.from_statements(
        [
            (c.statement, c.policy, c.index)
            for c in (*ev.deny_statements, *ev.allow_statements)
            if _targets(c.statement, action, resource)
        ],
        missing_key=ev.missing_key,
    )


def _condition_candidates(
    actions: Sequence[str], statement: Statement, witness: Request, old: Evaluator, new: Evaluator
) -> Iterator[Request]:
    """The witness, then requests of the item elsewhere in its region where the old side
    had a network condition: an action of the item on a resource of such a statement, with
    the witness's condition keys, that the responsible statement may match, the new side
    allows and the old side denies (at most :data:`CONDITION_CANDIDATES`)."""
    yield witness
    wanted = {k.lower() for k in NETWORK_KEYS}
    seen = {(witness.action, witness.resource)}
    for cs in (*old.deny_statements, *old.allow_statements):
        s = cs.statement
        if s.not_action or s.not_resource:
            continue
        if not any(c.key.lower() in wanted for c in s.conditions):
            continue
        action = next(
            (
                a
                for a in (witness.action, *actions)
                if any(wildcard_match(p, a, ignore_case=True) for p in s.actions)
            ),
            None,
        )
        if action is None:
            continue
        for pattern in s.resources:
            for resource in _representatives(pattern, witness, None):
                if (action, resource) in seen or not _targets(statement, action, resource):
                    continue
                seen.add((action, resource))
                if len(seen) > CONDITION_CANDIDATES:
                    return
                request = Request(action, resource, witness.context)
                if new.allows(request) and not old.allows(request):
                    yield request


def _condition_removed(
    actions: Sequence[str], statement: Statement, witness: Request, old: Evaluator, new: Evaluator
) -> RiskNote | None:
    """The network or transport conditions the new side no longer asks for, shown on the
    witness or on another request of the item (:func:`_condition_candidates`)."""
    for request in _condition_candidates(actions, statement, witness, old, new):
        note = _condition_removed_at(
            request,
            _restricted(old, request.action, request.resource),
            _restricted(new, request.action, request.resource),
        )
        if note is not None:
            return note
    return None


def _condition_removed_at(request: Request, old: Evaluator, new: Evaluator) -> RiskNote | None:
    """Whether ``request`` (new allows, old denies) differs from a request both sides allow
    in the values of :data:`NETWORK_KEYS` alone.

    The values tried are one per class the two sides' conditions on each key tell apart,
    fewest keys changed first; the first variant both sides allow shows that the
    difference lies in those keys alone."""
    witness = request
    wanted = {k.lower(): k for k in NETWORK_KEYS}
    atoms: dict[str, dict[tuple[str, tuple[str, ...], str], None]] = {}
    for ev in (old, new):
        for cs in (*ev.deny_statements, *ev.allow_statements):
            for c in cs.statement.conditions:
                if c.key.lower() in wanted:
                    atoms.setdefault(wanted[c.key.lower()], {})[(c.operator, c.values, c.key)] = (
                        None
                    )
    if not atoms:
        return None
    keys = sorted(atoms)
    current = {
        k: next((v for name, v in witness.context.items() if name.lower() == k.lower()), None)
        for k in keys
    }
    options = {
        k: [
            v
            for v in _network_values(k.lower(), tuple(atoms[k]), old.missing_key)
            if v != current[k]
        ]
        for k in keys
    }
    tries = 0
    for n in range(1, len(keys) + 1):
        for chosen in itertools.combinations(keys, n):
            for values in itertools.product(*(options[k] for k in chosen)):
                tries += 1
                if tries > CONDITION_TRIES:
                    return None
                context: Mapping[str, str] = witness.context
                for k, v in zip(chosen, values, strict=True):
                    context = _with(context, k, v)
                variant = Request(witness.action, witness.resource, context)
                if old.allows(variant) and new.allows(variant):
                    return RiskNote(
                        "condition-removed",
                        _removed_text(witness, variant, chosen, current, old),
                        witness,
                    )
    return None


def _removed_text(
    witness: Request,
    variant: Request,
    keys: Sequence[str],
    current: dict[str, str | None],
    old: Evaluator,
) -> str:
    before = old.decide(witness)
    if before.kind == "explicit_deny":
        deciders = [s.statement for s in before.statements]
        verb = "old denied it"
    else:
        deciders = [s.statement for s in old.decide(variant).statements]
        verb = "old required"
    parts = []
    for k in keys:
        value = variant.context.get(k)
        req = next(
            (text for s in deciders if (text := _requirement(s.conditions, k))),
            f"{k}={value}" if value is not None else f"no {k}",
        )
        if current[k] is None and verb == "old required" and "=" in req and " " not in req:
            parts.append(f"without {req}")
        elif current[k] is None:
            parts.append(f"without {k} ({verb}: {req})")
        else:
            parts.append(f"with {k}={current[k]} ({verb}: {req})")
    return "now allowed " + " and ".join(parts)


def _risks(
    actions: Sequence[str],
    future: bool,
    statement: Statement,
    witness: Request,
    this: Evaluator,
    other: Evaluator,
    *,
    new: bool,
) -> tuple[tuple[str, ...], tuple[RiskNote, ...]]:
    """The risk classes of an item of access ``this`` side allows and ``other`` denies
    (``new``: new access), with notes that show the class on a concrete request."""
    risk: set[str] = set()
    notes: list[RiskNote] = []
    for a in actions:
        info = catalog.lookup(a)
        if info is None:
            continue
        if info.service == "oss" and not _level_possible(statement, info.level):
            continue  # e.g. a bucket action of oss:* on object ARNs: no such request
        risk.update(r for r in info.risk if r != "bucket-wide-read")
    if future:
        risk.add("future-actions")
    wide_action = statement.not_action or any(
        a == "*" or a.endswith(":*") for a in statement.actions
    )
    wide_resource = statement.not_resource or any(
        r == "*" or (r.startswith("acs:") and set(r.split(":", 4)[-1]) <= {"*"})
        for r in statement.resources
    )
    if wide_action or wide_resource:
        risk.add("wildcard-scope")
    if _bucket_wide(actions, statement, witness, this, other):
        risk.add("bucket-wide-read")
    if new:
        old_eval, new_eval = other, this
        for note in (
            _public_acl(actions, statement, witness, old_eval, new_eval),
            _condition_removed(actions, statement, witness, old_eval, new_eval),
        ):
            if note is not None:
                risk.add(note.risk)
                notes.append(note)
    order = {r: i for i, r in enumerate(RISK_ORDER)}
    notes.sort(key=lambda n: order[n.risk])
    return tuple(r for r in RISK_ORDER if r in risk), tuple(notes)


__all__ = ["CONDITION_CANDIDATES", "CONDITION_TRIES", "NETWORK_KEYS", "RISK_ORDER", "RiskNote"]
