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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from permgen.model import DENY, Policy, Statement
from permgen.semantics.conditions import (
    CompiledCondition,
    MissingKey,
    RequestContext,
    check_conditions,
)
from permgen.semantics.wildcard import PatternSet

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
        folded = all(c.holds(context.folded, missing) for c in conditions)
        if folded is not self.deny:
            return folded
        return all(c.holds_exact(context.exact, missing) for c in conditions)

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
        return any(c.matches(action, resource, context, missing) for c in self.allow_statements)


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


__all__ = [
    "Decision",
    "DecisionKind",
    "Evaluator",
    "Request",
    "StatementRef",
    "TokenEvaluator",
    "explain",
    "resource_case_insensitive",
]
