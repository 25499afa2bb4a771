"""The evaluator against an independent reading of the same rules.

The emulator authorizes with the product's Evaluator, so an emulator test cannot catch an
evaluator bug: both sides would agree with themselves. Here a second evaluator, written in
this file from the rules in docs/semantics.md, docs/unconfirmed.md and ram-facts (default
deny, explicit Deny wins, NotAction/NotResource, ``*``/``?`` by a plain recursive matcher,
wildcards in an ARN's first four segments not crossing ``:``, actions without case, a set of
condition operators with the documented absent-key rule), decides random small policies and
requests over a small universe, and the two must agree on every decision.

Kept away from on purpose (documented readings this model does not restate):
- RAM user/group/role ARNs (their per-effect case rule): resources here are OSS ARNs only;
- condition-key name case (the both-readings rule): policies and requests spell every key
  as documented;
- exotic numbers and dates (exact Decimal forms, week dates ...): constants and request
  values are small decimals and plain ``YYYY-MM-DDTHH:MM:SSZ`` instants;
- non-ASCII case folding: all text is ASCII.
"""

from __future__ import annotations

import ipaddress
import json
from datetime import datetime
from fractions import Fraction
from functools import cache
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.policy.model import parse_policy
from permgen.semantics import Evaluator, Request
from permgen.semantics.conditions import MissingKey
from permgen.semantics.evaluate import CompiledStatement

# ---------------------------------------------------------------------------------------
# The independent reading


def glob(pattern: str, text: str) -> bool:
    """``*`` any run (also empty), ``?`` one character, anything else itself."""

    @cache
    def go(i: int, j: int) -> bool:
        if i == len(pattern):
            return j == len(text)
        if pattern[i] == "*":
            return go(i + 1, j) or (j < len(text) and go(i, j + 1))
        return j < len(text) and pattern[i] in ("?", text[j]) and go(i + 1, j + 1)

    return go(0, 0)


def resource_matches(pattern: str, arn: str) -> bool:
    """An ARN pattern (``acs:`` and at least four ``:``) is read segment by segment: each of
    its first four segments matches one segment of the ARN (so no wildcard there can take a
    ``:``), and the rest matches the rest of the ARN, ``:`` included. Any other pattern is
    matched against the whole text."""
    if not pattern.startswith("acs:") or pattern.count(":") < 4:
        return glob(pattern, arn)
    p = pattern.split(":", 4)
    t = arn.split(":", 4)
    if len(t) < 5:
        return False
    return all(glob(a, b) for a, b in zip(p, t, strict=True))


def action_matches(pattern: str, action: str) -> bool:
    return glob(pattern.lower(), action.lower())


def number(text: str) -> Fraction | None:
    try:
        return Fraction(text)
    except (ValueError, ZeroDivisionError):
        return None


def instant(text: str) -> datetime | None:
    try:
        return datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ")
    except ValueError:
        return None


def ip_in(value: str, pattern: str) -> bool:
    if "*" in pattern:
        return glob(pattern, value)
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(pattern, strict=False)
    except ValueError:
        return False


def positive(operator: str, const: str, value: str) -> bool:
    """Whether one present request value satisfies one constant of a positive operator."""
    if operator in ("StringEquals", "StringNotEquals"):
        return value == const
    if operator == "StringLike":
        return glob(const, value)
    if operator in ("IpAddress", "NotIpAddress"):
        return ip_in(value, const)
    if operator == "Bool":
        return value.lower() == const
    if operator == "NumericLessThan":
        a, b = number(value), number(const)
        return a is not None and b is not None and a < b
    if operator == "DateGreaterThan":
        x, y = instant(value), instant(const)
        return x is not None and y is not None and x > y
    raise AssertionError(operator)


NEGATIVE = {"StringNotEquals", "NotIpAddress"}


def condition_holds(
    operator: str, key: str, consts: list[str], context: dict[str, str], missing: MissingKey
) -> bool:
    value = context.get(key)
    if value is None:
        # absent key: positive operators false; negated ones true under the default reading
        return operator in NEGATIVE and missing is MissingKey.NEGATED_TRUE
    hit = any(positive(operator, c, value) for c in consts)
    return not hit if operator in NEGATIVE else hit


def statement_applies(
    s: dict[str, Any], action: str, resource: str, context: dict[str, str], missing: MissingKey
) -> bool:
    if "Action" in s:
        if not any(action_matches(p, action) for p in s["Action"]):
            return False
    elif any(action_matches(p, action) for p in s["NotAction"]):
        return False
    if "Resource" in s:
        if not any(resource_matches(p, resource) for p in s["Resource"]):
            return False
    elif any(resource_matches(p, resource) for p in s["NotResource"]):
        return False
    return all(
        condition_holds(op, key, consts, context, missing)
        for op, keys in s.get("Condition", {}).items()
        for key, consts in keys.items()
    )


def reference_decision(
    policies: list[dict[str, Any]],
    action: str,
    resource: str,
    context: dict[str, str],
    missing: MissingKey,
) -> str:
    applying = [
        s
        for p in policies
        for s in p["Statement"]
        if statement_applies(s, action, resource, context, missing)
    ]
    if any(s["Effect"] == "Deny" for s in applying):
        return "explicit_deny"
    if applying:
        return "allow"
    return "implicit_deny"


# ---------------------------------------------------------------------------------------
# The universe

ACTIONS = ["oss:GetObject", "oss:PutObject", "oss:ListObjects", "oss:DeleteObject", "ram:GetRole"]
ACTION_PATTERNS = [*ACTIONS, "oss:*", "oss:Get*", "oss:?utObject", "*", "OSS:getobject", "ram:*"]

_seg_service = st.sampled_from(["oss", "*", "o?s", "*s", "ram"])
_seg_region = st.sampled_from(["*", "cn-*", "cn-hangzhou", "", "?"])
_seg_account = st.sampled_from(["*", "123", "1?3", "12*"])
_rest_pat = st.text(alphabet="ab/*?:", max_size=6)
RESOURCE_PATTERN = st.one_of(
    st.builds(
        lambda s, r, a, rest: f"acs:{s}:{r}:{a}:{rest}",
        _seg_service,
        _seg_region,
        _seg_account,
        _rest_pat,
    ),
    st.sampled_from(["*", "acs:oss:*", "acs:*:b*", "acs:oss:*:*:a*"]),
)
RESOURCE = st.builds(
    lambda s, r, a, rest: f"acs:{s}:{r}:{a}:{rest}",
    st.sampled_from(["oss", "ram"]),
    st.sampled_from(["cn-hangzhou", "", "cn-x"]),
    st.sampled_from(["123", "143", "12"]),
    st.text(alphabet="ab/:", max_size=6),
)

CONDITIONS: dict[str, tuple[str, list[str]]] = {
    "StringEquals": ("oss:Prefix", ["a/", "b", ""]),
    "StringNotEquals": ("oss:Prefix", ["a/", "b"]),
    "StringLike": ("oss:Prefix", ["a/*", "?", "*b"]),
    "IpAddress": ("acs:SourceIp", ["10.0.0.0/8", "192.168.1.1", "10.1.*.*"]),
    "NotIpAddress": ("acs:SourceIp", ["10.0.0.0/8", "192.168.1.1"]),
    "Bool": ("acs:SecureTransport", ["true", "false"]),
    "NumericLessThan": ("ext:n", ["5", "10", "-1", "2.5"]),
    "DateGreaterThan": ("acs:CurrentTime", ["2026-01-01T00:00:00Z", "2026-06-01T12:00:00Z"]),
}
CONTEXT_VALUES = {
    "oss:Prefix": ["a/", "a/x", "b", "", "ab", "A/"],
    "acs:SourceIp": ["10.1.2.3", "192.168.1.1", "8.8.8.8", "not-an-ip", "10.2.0.1"],
    "acs:SecureTransport": ["true", "false", "TRUE", "yes"],
    "ext:n": ["3", "10", "abc", "7.5", "-2", "2.50"],
    "acs:CurrentTime": [
        "2025-12-31T23:59:59Z",
        "2026-03-01T00:00:00Z",
        "2027-01-01T00:00:00Z",
        "x",
    ],
}


# The strategies the composites below draw from, built once: the same draws, without
# building a strategy object for each of them in every example.
_OPS = st.lists(st.sampled_from(sorted(CONDITIONS)), max_size=2, unique=True)
_CONSTANTS = {
    op: st.lists(st.sampled_from(consts), min_size=1, max_size=2)
    for op, (_, consts) in CONDITIONS.items()
}
_EFFECT = st.sampled_from(["Allow", "Deny"])
_ACTION_LIST = st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=3)
_RESOURCE_LIST = st.lists(RESOURCE_PATTERN, min_size=1, max_size=3)
_ACTION = st.sampled_from(ACTIONS)
_SPELLINGS = {a: st.sampled_from([a, a.upper(), a.lower()]) for a in ACTIONS}
_BOOLEAN = st.booleans()
_ONE_IN_FOUR = st.integers(0, 3)
_KEYS = st.lists(st.sampled_from(sorted(CONTEXT_VALUES)), unique=True)
_VALUES = {k: st.sampled_from(values) for k, values in CONTEXT_VALUES.items()}


@st.composite
def condition_block(draw: st.DrawFn) -> dict[str, dict[str, list[str]]]:
    ops = draw(_OPS)
    block: dict[str, dict[str, list[str]]] = {}
    for op in ops:
        key, _ = CONDITIONS[op]
        block[op] = {key: draw(_CONSTANTS[op])}
    return block


_CONDITION_BLOCK = condition_block()


@st.composite
def statement(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {"Effect": draw(_EFFECT)}
    actions = draw(_ACTION_LIST)
    s["NotAction" if draw(_BOOLEAN) else "Action"] = actions
    resources = draw(_RESOURCE_LIST)
    s["NotResource" if draw(_ONE_IN_FOUR) == 0 else "Resource"] = resources
    condition = draw(_CONDITION_BLOCK)
    if condition:
        s["Condition"] = condition
    return s


POLICY = st.builds(
    lambda ss: {"Version": "1", "Statement": ss}, st.lists(statement(), min_size=1, max_size=4)
)


@st.composite
def request(draw: st.DrawFn) -> tuple[str, str, dict[str, str]]:
    action = draw(_SPELLINGS[draw(_ACTION)])
    resource = draw(RESOURCE)
    keys = draw(_KEYS)
    context = {k: draw(_VALUES[k]) for k in keys}
    return action, resource, context


@settings(max_examples=200, deadline=None)
@given(
    policies=st.lists(POLICY, min_size=1, max_size=2),
    requests=st.lists(request(), min_size=1, max_size=6),
    missing=st.sampled_from(list(MissingKey)),
)
def test_the_evaluator_agrees_with_an_independent_reading(
    policies: list[dict[str, Any]],
    requests: list[tuple[str, str, dict[str, str]]],
    missing: MissingKey,
) -> None:
    parsed = [parse_policy(json.dumps(p), source=f"p{n}") for n, p in enumerate(policies)]
    evaluator = Evaluator(parsed, missing_key=missing)
    # the same statements compiled one by one and put together (how the audit builds them)
    compiled = Evaluator.from_compiled(
        [
            CompiledStatement(one, p.name or f"policy[{n}]", i)
            for n, p in enumerate(parsed)
            for i, one in enumerate(p.statements)
        ],
        missing_key=missing,
    )
    for action, resource, context in requests:
        expected = reference_decision(policies, action, resource, context, missing)
        got = evaluator.decide(Request(action, resource, context))
        assert got.kind == expected, (policies, action, resource, context)
        assert evaluator.allows(Request(action, resource, context)) is (expected == "allow")
        assert compiled.decide(Request(action, resource, context)) == got


def test_the_reference_reads_the_documented_cases() -> None:
    """The reference itself on cases docs/semantics.md spells out, so a wrong reference
    cannot make the differential test vacuous."""
    assert resource_matches("acs:oss:*:*:pub/*", "acs:oss:r:1:pub/x")
    assert not resource_matches("acs:*:*:*:x", "acs:oss:a:b:c:x")  # head * never takes ":"
    assert resource_matches("acs:oss:*:*:*x", "acs:oss:a:b:c:x")  # the rest's * does
    assert not resource_matches("acs:oss:*:*:Pub/*", "acs:oss:r:1:pub/x")  # resources: case
    assert action_matches("OSS:get*", "oss:GetObject")
    ctx: dict[str, str] = {}
    assert condition_holds(
        "NotIpAddress", "acs:SourceIp", ["10.0.0.0/8"], ctx, MissingKey.NEGATED_TRUE
    )
    assert not condition_holds(
        "NotIpAddress", "acs:SourceIp", ["10.0.0.0/8"], ctx, MissingKey.FALSE
    )
    assert not condition_holds(
        "IpAddress", "acs:SourceIp", ["10.0.0.0/8"], ctx, MissingKey.NEGATED_TRUE
    )
    assert (
        condition_holds("NumericLessThan", "n", ["2.5"], {"n": "2.50"}, MissingKey.FALSE) is False
    )
    assert condition_holds("NumericLessThan", "n", ["2.5"], {"n": "2.4"}, MissingKey.FALSE)
    deny_and_allow = [
        {"Statement": [{"Effect": "Allow", "Action": ["*"], "Resource": ["*"]}]},
        {"Statement": [{"Effect": "Deny", "Action": ["oss:*"], "Resource": ["*"]}]},
    ]
    assert reference_decision(deny_and_allow, "OSS:GETOBJECT", "x", {}, MissingKey.FALSE) == (
        "explicit_deny"
    )
    assert reference_decision(deny_and_allow, "ram:GetRole", "x", {}, MissingKey.FALSE) == "allow"
    assert reference_decision([], "ram:GetRole", "x", {}, MissingKey.FALSE) == "implicit_deny"
