"""Deciding requests the way RAM does.

Default deny; any matching explicit Deny wins; otherwise a matching Allow permits. A
statement matches when its Action (or NotAction) matches the action, its Resource (or
NotResource) matches the resource and every condition holds. Actions compare without
regard to case, resources with it, except the ARN of a RAM user, group or role, whose
name RAM treats without regard to case: there the reading that grants less is taken
(:func:`resource_case_insensitive`, docs/unconfirmed.md). Several policies (a principal's
attached set) combine as one; a token's session policy is ANDed with the role's policies.

Policies are compiled once into an :class:`Evaluator`; deciding a request is then a loop
over precompiled matchers, with no parsing.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from decimal import MAX_EMAX, MIN_EMIN, Context, Decimal
from functools import lru_cache
from typing import Any, Literal

from permgen.policy.model import DENY, Condition, Policy, Statement
from permgen.policy.wildcard import PatternSet
from permgen.semantics.conditions import (
    CompiledCondition,
    MissingKey,
    RequestContext,
    check_conditions,
)

DecisionKind = Literal["allow", "explicit_deny", "implicit_deny"]


@dataclass(frozen=True)
class Request:
    """One request: an action, a resource ARN, and condition keys (``acs:SourceIp`` ...)."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "resource": self.resource, "context": dict(self.context)}


@dataclass(frozen=True)
class StatementRef:
    """A statement that decided a request: which policy, which index, and why."""

    policy: str
    index: int
    effect: str
    statement: Statement
    why: str

    def to_json(self) -> dict[str, Any]:
        return {
            "policy": self.policy,
            "index": self.index,
            "effect": self.effect,
            "why": self.why,
            "statement": self.statement.to_json(),
        }


@dataclass(frozen=True)
class Decision:
    kind: DecisionKind
    statements: tuple[StatementRef, ...] = ()

    @property
    def allowed(self) -> bool:
        return self.kind == "allow"

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.kind, "statements": [s.to_json() for s in self.statements]}


@lru_cache(maxsize=16384)
def _pattern_set(patterns: tuple[str, ...], *, ignore_case: bool, arn: bool = False) -> PatternSet:
    return PatternSet(patterns, ignore_case=ignore_case, arn=arn)


_RAM_ENTITY_ARN = re.compile(r"acs:ram:[^:]*:[^:]*:(?:user|group|role)/.*", re.I | re.S)


def resource_case_insensitive(resource: str, *, deny: bool, not_resource: bool) -> bool:
    """Whether a statement compares ``resource`` without regard to case.

    RAM user, group and role names are unique without regard to case, but whether a
    policy's ``role/admin-role`` covers a request for ``role/Admin-Role`` is not documented
    (docs/unconfirmed.md). For those ARNs the case is ignored exactly when that makes the
    statement apply to more requests if it is a Deny, and to fewer if it is an Allow:
    ``Resource`` of a Deny, ``NotResource`` of an Allow. Every other resource (OSS keys
    above all) compares with case."""
    if deny is not_resource:
        return False
    return resource[:8].lower() == "acs:ram:" and _RAM_ENTITY_ARN.fullmatch(resource) is not None


class CompiledStatement:
    """A statement ready to match requests. Pattern matchers (:mod:`.wildcard`, linear time)
    are built on first use and shared (cached) between statements with the same patterns."""

    __slots__ = (
        "_conditions",
        "_resources",
        "_resources_ci",
        "actions",
        "deny",
        "index",
        "not_action",
        "not_resource",
        "policy",
        "statement",
    )

    def __init__(self, statement: Statement, policy: str, index: int) -> None:
        self.statement = statement
        self.policy = policy
        self.index = index
        self.actions = _pattern_set(statement.actions, ignore_case=True).fullmatch
        self.deny = statement.effect == DENY
        self.not_action = statement.not_action
        self.not_resource = statement.not_resource
        self._resources: Callable[[str], object] | None = None
        self._resources_ci: Callable[[str], object] | None = None
        self._conditions: tuple[CompiledCondition, ...] | None = None

    def matches(
        self, action: str, resource: str, context: RequestContext, missing: MissingKey
    ) -> bool:
        if (self.actions(action) is None) is not self.not_action:
            return False
        if resource_case_insensitive(resource, deny=self.deny, not_resource=self.not_resource):
            resources = self._resources_ci
            if resources is None:
                resources = self._resources_ci = _pattern_set(
                    self.statement.resources, ignore_case=True, arn=True
                ).fullmatch
        else:
            resources = self._resources
            if resources is None:
                resources = self._resources = _pattern_set(
                    self.statement.resources, ignore_case=False, arn=True
                ).fullmatch
        if (resources(resource) is None) is not self.not_resource:
            return False
        conditions = self._conditions
        if conditions is None:
            conditions = self._conditions = tuple(
                CompiledCondition(c.operator, c.key, c.values) for c in self.statement.conditions
            )
        if not conditions:
            return True
        # Condition-key names with or without case (UNCONFIRMED): an Allow applies when its
        # conditions hold under either reading, a Deny only when they hold under both, so
        # no reading of RAM grants more than the evaluator reports.
        folded = True
        for c in conditions:  # a loop, not all(...): this runs for every request
            if not c.holds(context.folded, missing):
                folded = False
                break
        if folded is not self.deny:
            return folded
        exact = context.exact
        return all(c.holds_exact(exact, missing) for c in conditions)

    def why(self) -> str:
        s = self.statement
        parts = [
            ("action not in NotAction" if s.not_action else "action matches Action"),
            ("resource not in NotResource" if s.not_resource else "resource matches Resource"),
        ]
        if s.conditions:
            parts.append("every condition holds")
        return ", ".join(parts)

    def ref(self) -> StatementRef:
        return StatementRef(
            self.policy, self.index, self.statement.effect, self.statement, self.why()
        )


class Evaluator:
    """A set of policies compiled for deciding requests (union: any Allow, Deny wins)."""

    def __init__(
        self, policies: Sequence[Policy], *, missing_key: MissingKey = MissingKey.NEGATED_TRUE
    ) -> None:
        self.missing_key = missing_key
        self.policies = tuple(policies)
        check_conditions(
            (s, p.name or f"policy[{n}]", i)
            for n, p in enumerate(policies)
            for i, s in enumerate(p.statements)
        )
        compiled = [
            CompiledStatement(s, p.name or f"policy[{n}]", i)
            for n, p in enumerate(policies)
            for i, s in enumerate(p.statements)
        ]
        self.deny_statements = tuple(c for c in compiled if c.statement.effect == DENY)
        self.allow_statements = tuple(c for c in compiled if c.statement.effect != DENY)

    @classmethod
    def from_statements(
        cls,
        statements: Sequence[tuple[Statement, str, int]],
        *,
        missing_key: MissingKey = MissingKey.NEGATED_TRUE,
    ) -> Evaluator:
        """An evaluator over some statements of some policies: (statement, policy name,
        index in that policy); decisions name the statements by those."""
        self = cls([], missing_key=missing_key)
        check_conditions(statements)
        compiled = [CompiledStatement(s, p, i) for s, p, i in statements]
        self.deny_statements = tuple(c for c in compiled if c.statement.effect == DENY)
        self.allow_statements = tuple(c for c in compiled if c.statement.effect != DENY)
        return self

    @classmethod
    def from_compiled(
        cls,
        statements: Iterable[CompiledStatement],
        *,
        missing_key: MissingKey = MissingKey.NEGATED_TRUE,
    ) -> Evaluator:
        """An evaluator over statements compiled already (their conditions were checked
        when they were read): a caller that decides many sets of the same statements
        compiles each once, and they keep their matchers between sets."""
        self = cls([], missing_key=missing_key)
        compiled = list(statements)
        self.deny_statements = tuple(c for c in compiled if c.deny)
        self.allow_statements = tuple(c for c in compiled if not c.deny)
        return self

    def decide(self, request: Request) -> Decision:
        context = RequestContext(request.context)
        action, resource, missing = request.action, request.resource, self.missing_key
        denies = [
            c.ref() for c in self.deny_statements if c.matches(action, resource, context, missing)
        ]
        if denies:
            return Decision("explicit_deny", tuple(denies))
        allows = [
            c.ref() for c in self.allow_statements if c.matches(action, resource, context, missing)
        ]
        if allows:
            return Decision("allow", tuple(allows))
        return Decision("implicit_deny")

    def allows(self, request: Request) -> bool:
        """The decision only (faster: stops at the first deciding statement)."""
        context = RequestContext(request.context)
        action, resource, missing = request.action, request.resource, self.missing_key
        for c in self.deny_statements:
            if c.matches(action, resource, context, missing):
                return False
        for c in self.allow_statements:  # noqa: SIM110 (a loop: no generator per request)
            if c.matches(action, resource, context, missing):
                return True
        return False


class TokenEvaluator:
    """An STS token: its session policy AND the role's policies (a Deny in either wins)."""

    def __init__(
        self,
        session: Sequence[Policy],
        role: Sequence[Policy],
        *,
        missing_key: MissingKey = MissingKey.NEGATED_TRUE,
    ) -> None:
        self.session = Evaluator(session, missing_key=missing_key)
        self.role = Evaluator(role, missing_key=missing_key)

    def decide(self, request: Request) -> Decision:
        s = self.session.decide(request)
        r = self.role.decide(request)
        if s.kind == "explicit_deny" or r.kind == "explicit_deny":
            return Decision(
                "explicit_deny",
                tuple(x for d in (s, r) if d.kind == "explicit_deny" for x in d.statements),
            )
        if s.allowed and r.allowed:
            return Decision("allow", s.statements + r.statements)
        return Decision(
            "implicit_deny", s.statements if s.allowed else r.statements if r.allowed else ()
        )

    def allows(self, request: Request) -> bool:
        return self.session.allows(request) and self.role.allows(request)


def explain(
    policies: Sequence[Policy],
    request: Request,
    *,
    session: Sequence[Policy] | None = None,
    missing_key: MissingKey = MissingKey.NEGATED_TRUE,
) -> Decision:
    """Decide one request (compiles the policies each call; keep an Evaluator for many)."""
    if session is not None:
        return TokenEvaluator(session, policies, missing_key=missing_key).decide(request)
    return Evaluator(policies, missing_key=missing_key).decide(request)


# --- Explaining one request: the condition keys it did not give ----------------------------
#
# A request that omits a condition key is decided as if the key were absent (MissingKey). That
# is right for a request that really has no such key, and misleading for one described
# incompletely: "deny" may hold only because acs:SourceVpc was left out. explain_request finds
# the keys that statements matching the action and resource test and the request does not
# give, and decides the request again with representative values for them (values satisfying
# and values failing each condition), fewest keys first.

#: How many variants of the request explain_request decides at most (then it stops, and says so).
EXPLAIN_BUDGET = 4096
#: Representative values tried per absent key, at most.
VALUES_PER_KEY = 8


@dataclass(frozen=True)
class Alternative:
    """The decision the request would get with some absent keys given these values."""

    decision: DecisionKind
    context: Mapping[str, str]

    def to_json(self) -> dict[str, Any]:
        return {"decision": self.decision, "context": dict(self.context)}


@dataclass(frozen=True)
class Explanation:
    """One request decided, with what the absent condition keys could change.

    ``missing_keys``: keys tested by statements whose action and resource match, absent from
    the request (spelled as in the policy). ``alternatives``: for each decision other than
    ``decision.kind`` that some values of those keys produce, the first such values found
    (fewest keys). ``exhaustive``: every combination of representative values was tried.
    ``ceiling`` and ``session``: with a session policy, the role policies' and the session
    policy's own decisions."""

    decision: Decision
    missing_keys: tuple[str, ...] = ()
    alternatives: tuple[Alternative, ...] = ()
    exhaustive: bool = True
    ceiling: Decision | None = None
    session: Decision | None = None

    @property
    def denied_by(self) -> tuple[str, ...]:
        """With a session policy and a deny: which of "ceiling", "session" denied."""
        if self.ceiling is None or self.session is None or self.decision.allowed:
            return ()
        return tuple(
            name
            for name, d in (("ceiling", self.ceiling), ("session", self.session))
            if not d.allowed
        )

    def flips(self, expect_allow: bool) -> tuple[Alternative, ...]:
        """The alternatives whose answer (allow or not) differs from ``expect_allow``."""
        return tuple(a for a in self.alternatives if (a.decision == "allow") != expect_allow)


def _sample_values(operator: str, values: tuple[str, ...]) -> list[str]:
    """Values of a key that satisfy the condition and values that fail it (a few each)."""
    from permgen.semantics.conditions import (
        FAMILY,
        format_date,
        parse_date,
        parse_network,
        parse_number,
    )

    family = FAMILY.get(operator)
    given = list(values[:3])
    out: list[str] = []
    if family == "string":
        if operator.endswith("Like"):
            out += [v.replace("*", "x").replace("?", "x") for v in given]
        else:
            out += given
        out += ["", "permgen-example"]
    elif family == "bool":
        out += ["true", "false"]
    elif family == "number":
        for v in given:
            n = parse_number(v)
            if n is not None:
                exact = Context(prec=_digits(n) + 30, Emax=MAX_EMAX, Emin=MIN_EMIN)
                out += [_number_text(exact.subtract(n, 1)), _number_text(n)]
                out.append(_number_text(exact.add(n, 1)))
    elif family == "date":
        for v in given:
            t = parse_date(v)
            if t is not None:
                out += [d for d in (format_date(t - 1), format_date(t), format_date(t + 1)) if d]
    elif family == "ip":
        for v in given:
            net = parse_network(v)
            if net is not None:
                out.append(str(net.network_address))
        out += ["192.0.2.1", "2001:db8::1"]
    return out


def _digits(n: Decimal) -> int:
    return len(n.as_tuple().digits)


def _number_text(n: Decimal) -> str:
    """An exact number as a request would send it (no exponent for ordinary sizes)."""
    return format(n, "f") if -30 <= n.adjusted() <= 40 else str(n)


def _conditions_in_play(
    policies: Sequence[Policy], request: Request, missing_key: MissingKey
) -> list[tuple[Condition, ...]]:
    """The conditions of every statement whose action and resource match the request (only
    those statements can change its decision)."""
    from dataclasses import replace

    out = []
    for policy in policies:
        for statement in policy.statements:
            if not statement.conditions:
                continue
            bare = CompiledStatement(replace(statement, conditions=()), "", 0)
            if bare.matches(request.action, request.resource, RequestContext({}), missing_key):
                out.append(statement.conditions)
    return out


def _satisfying(
    conditions: tuple[Condition, ...],
    samples: dict[str, list[str]],
    spelling: dict[str, str],
    missing_key: MissingKey,
) -> dict[str, str] | None:
    """Values of the absent keys that make every one of ``conditions`` on them hold, from the
    samples, or None."""
    compiled = [CompiledCondition(c.operator, c.key, c.values) for c in conditions]
    out: dict[str, str] = {}
    for key in dict.fromkeys(c.key for c in compiled if c.key in samples):
        on_key = [c for c in compiled if c.key == key]
        value = next(
            (v for v in samples[key] if all(c.holds({key: v}, missing_key) for c in on_key)),
            None,
        )
        if value is None:
            return None
        out[spelling[key]] = value
    return out


def explain_request(
    policies: Sequence[Policy],
    request: Request,
    *,
    session: Sequence[Policy] | None = None,
    missing_key: MissingKey = MissingKey.NEGATED_TRUE,
    budget: int = EXPLAIN_BUDGET,
) -> Explanation:
    """Decide one request like :func:`explain`, and say what the condition keys it does not
    give could change (see :class:`Explanation`). With ``session``, also each side's decision."""
    import itertools

    ceiling_ev = Evaluator(policies, missing_key=missing_key)
    session_ev = Evaluator(session, missing_key=missing_key) if session is not None else None

    decide = ceiling_ev.decide
    if session_ev is not None:
        token = TokenEvaluator((), (), missing_key=missing_key)
        token.session, token.role = session_ev, ceiling_ev
        decide = token.decide

    decision = decide(request)
    given = {k.lower() for k in request.context}
    in_play = _conditions_in_play([*policies, *(session or ())], request, missing_key)
    spelling: dict[str, str] = {}
    samples: dict[str, list[str]] = {}
    for c in (c for conditions in in_play for c in conditions):
        low = c.key.lower()
        if low in given:
            continue
        spelling.setdefault(low, c.key)
        bucket = samples.setdefault(low, [])
        for v in _sample_values(c.operator, c.values):
            if v not in bucket and len(bucket) < VALUES_PER_KEY:
                bucket.append(v)
    keys = list(spelling)
    found: dict[str, Alternative] = {}
    tried = 0
    exhaustive = True
    for size in range(1, len(keys) + 1):
        for subset in itertools.combinations(keys, size):
            for values in itertools.product(*(samples[k] for k in subset)):
                if tried >= budget:
                    exhaustive = False
                    break
                tried += 1
                extra = {spelling[k]: v for k, v in zip(subset, values, strict=True)}
                kind = decide(
                    Request(request.action, request.resource, {**request.context, **extra})
                ).kind
                if kind != decision.kind and kind not in found:
                    found[kind] = Alternative(kind, extra)
            if not exhaustive or len(found) == 2:
                break
        if not exhaustive or len(found) == 2:
            break
    if not exhaustive:  # too many combinations: at least try making each statement match
        for conditions in in_play:
            wanted = _satisfying(conditions, samples, spelling, missing_key)
            if wanted:
                req = Request(request.action, request.resource, {**request.context, **wanted})
                kind = decide(req).kind
                if kind != decision.kind and kind not in found:
                    found[kind] = Alternative(kind, wanted)
    order = ("allow", "explicit_deny", "implicit_deny")
    return Explanation(
        decision=decision,
        missing_keys=tuple(spelling[k] for k in keys),
        alternatives=tuple(found[k] for k in order if k in found),
        exhaustive=exhaustive,
        ceiling=ceiling_ev.decide(request) if session_ev is not None else None,
        session=session_ev.decide(request) if session_ev is not None else None,
    )


__all__ = [
    "EXPLAIN_BUDGET",
    "Alternative",
    "Decision",
    "DecisionKind",
    "Evaluator",
    "Explanation",
    "Request",
    "StatementRef",
    "TokenEvaluator",
    "explain",
    "explain_request",
    "resource_case_insensitive",
]
