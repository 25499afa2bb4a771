"""The semantic core: evaluation cases, the exact diff against brute force, properties."""

from __future__ import annotations

import ipaddress
import itertools
import json
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permgen.errors import PolicyParseError
from permgen.policy.model import Condition, Policy, Statement, parse_policy
from permgen.semantics import Evaluator, MissingKey, Request, TokenEvaluator, diff_policies
from permgen.semantics.checks import redundant_statements
from tests.conftest import EXAMPLES, ROOT, run_cli

CASES = ROOT / "tests" / "eval_cases"


def _load(name: str) -> list[dict[str, Any]]:
    data: list[dict[str, Any]] = yaml.safe_load((CASES / name).read_text())
    return data


def _policies(docs: list[dict[str, Any]]) -> list[Policy]:
    return [parse_policy(d, source=f"p{i}") for i, d in enumerate(docs)]


@pytest.mark.parametrize("case", _load("elements.yaml"), ids=lambda c: c["description"])
def test_evaluation_elements(case: dict[str, Any]) -> None:
    policies = _policies(case["policies"])
    req = Request(
        case["request"]["action"], case["request"]["resource"], case["request"].get("context", {})
    )
    if "session" in case:
        decision = TokenEvaluator(_policies(case["session"]), policies).decide(req)
    else:
        decision = Evaluator(policies).decide(req)
    assert decision.kind == case["expect"]


@pytest.mark.parametrize("case", _load("operators.yaml"), ids=lambda c: c["description"])
def test_evaluation_operators(case: dict[str, Any]) -> None:
    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "oss:GetObject",
                "Resource": "*",
                "Condition": {case["op"]: {case["key"]: case["values"]}},
            }
        ],
    }
    doc["Statement"][0]["Effect"] = case.get("effect", "Allow")
    if case.get("allow_all"):  # a Deny case: everything else is allowed
        doc["Statement"].append({"Effect": "Allow", "Action": "*", "Resource": "*"})
    context = {} if case["value"] is None else {case.get("request_key", case["key"]): case["value"]}
    mode = MissingKey(case.get("missing_key", "negated-true"))
    policies = _policies([doc])
    if case["expect"] == "refused":  # a constant the operator cannot compare: exit 2
        with pytest.raises(PolicyParseError) as err:
            Evaluator(policies, missing_key=mode)
        assert repr(case["values"][-1]) in str(err.value)
        assert f"Statement[0].Condition.{case['op']}.{case['key']}" in str(err.value)
        return
    decision = Evaluator(policies, missing_key=mode).decide(
        Request("oss:GetObject", "acs:oss:*:*:b/k", context)
    )
    assert decision.kind == case["expect"]


def test_every_documented_operator_has_a_case() -> None:
    from permgen.policy.model import OPERATORS

    covered = {c["op"] for c in _load("operators.yaml")}
    assert set(OPERATORS) <= covered


def test_decision_names_the_deciding_statements() -> None:
    policy = parse_policy((EXAMPLES / "compiled" / "ingest-writer.json").read_text(), source="w")
    ok = {"acs:SecureTransport": "true", "acs:SourceVpc": "vpc-bp1corpdata01"}
    d = Evaluator([policy]).decide(
        Request(
            "oss:PutObject",
            "acs:oss:*:1234567890123456:corp-data/ingest/x",
            {**ok, "oss:x-oss-object-acl": "public-read"},
        )
    )
    assert d.kind == "explicit_deny"
    assert [(s.policy, s.index, s.effect) for s in d.statements] == [("w", 0, "Deny")]


# ------------------------------------------------------------------ the diff


def _p(*statements: dict[str, Any]) -> Policy:
    return parse_policy({"Version": "1", "Statement": list(statements)})


def test_diff_finds_new_delete_with_a_confirmed_witness() -> None:
    old = _p({"Effect": "Allow", "Action": ["oss:PutObject"], "Resource": "acs:oss:*:*:b/in/*"})
    new = _p(
        {
            "Effect": "Allow",
            "Action": ["oss:PutObject", "oss:DeleteObject"],
            "Resource": "acs:oss:*:*:b/in/*",
        }
    )
    result = diff_policies([old], [new])
    (item,) = result.new_access
    assert item.actions == ("oss:DeleteObject",)
    assert "destructive" in item.risk
    assert item.witness.action == "oss:DeleteObject"
    assert Evaluator([new]).allows(item.witness) and not Evaluator([old]).allows(item.witness)
    assert result.removed_access == ()


def test_diff_reports_future_actions_separately() -> None:
    old = _p(
        {
            "Effect": "Allow",
            "Action": [
                "oss:GetObject",
                "oss:GetObjectVersion",
                "oss:GetObjectAcl",
                "oss:GetObjectTagging",
                "oss:GetObjectVersionAcl",
                "oss:GetObjectVersionTagging",
            ],
            "Resource": "acs:oss:*:*:b/*",
        }
    )
    new = _p({"Effect": "Allow", "Action": "oss:GetObject*", "Resource": "acs:oss:*:*:b/*"})
    result = diff_policies([old], [new])
    (item,) = result.new_access
    assert item.actions == ()
    assert item.future and "future-actions" in item.risk
    assert item.witness.action.lower().startswith("oss:getobject")


def test_removing_a_deny_is_new_access_and_names_the_old_deny() -> None:
    allow = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}
    deny = {"Effect": "Deny", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/secret/*"}
    result = diff_policies([_p(allow, deny)], [_p(allow)])
    (item,) = result.new_access
    assert item.witness.resource.startswith("acs:oss:cn-hangzhou:1234567890123456:b/secret/")
    assert [d.index for d in item.denied_by] == [1]


def test_dropping_a_condition_is_new_access_outside_it() -> None:
    cond = {"IpAddress": {"acs:SourceIp": "203.0.113.0/24"}}
    old = _p(
        {
            "Effect": "Allow",
            "Action": "oss:GetObject",
            "Resource": "acs:oss:*:*:b/*",
            "Condition": cond,
        }
    )
    new = _p({"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"})
    result = diff_policies([old], [new])
    assert result.new_access
    for item in result.new_access:
        ip = item.witness.context.get("acs:SourceIp")
        assert ip is None or not ip.startswith("203.0.113.")


@pytest.mark.parametrize(
    ("old", "new"),
    [
        (  # reordered statements and lists, action case
            [
                {
                    "Effect": "Allow",
                    "Action": ["oss:GetObject", "oss:PutObject"],
                    "Resource": ["acs:oss:*:*:b/a/*", "acs:oss:*:*:c/*"],
                },
                {"Effect": "Deny", "Action": "oss:PutObject", "Resource": "acs:oss:*:*:c/x/*"},
            ],
            [
                {"Effect": "Deny", "Action": "OSS:putobject", "Resource": "acs:oss:*:*:c/x/*"},
                {
                    "Effect": "Allow",
                    "Action": ["oss:PutObject", "oss:GetObject"],
                    "Resource": ["acs:oss:*:*:c/*", "acs:oss:*:*:b/a/*"],
                },
            ],
        ),
        (  # split and merged statements
            [
                {
                    "Effect": "Allow",
                    "Action": ["oss:GetObject", "oss:PutObject"],
                    "Resource": "acs:oss:*:*:b/*",
                }
            ],
            [
                {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"},
                {"Effect": "Allow", "Action": "oss:PutObject", "Resource": "acs:oss:*:*:b/*"},
            ],
        ),
        (  # a redundant statement contained in another
            [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}],
            [
                {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"},
                {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/a/*"},
            ],
        ),
        (  # an Allow shadowed by a Deny grants nothing
            [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}],
            [
                {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"},
                {"Effect": "Allow", "Action": "oss:DeleteObject", "Resource": "acs:oss:*:*:b/*"},
                {"Effect": "Deny", "Action": "oss:DeleteObject", "Resource": "*"},
            ],
        ),
        (  # equivalent wildcards
            [{"Effect": "Allow", "Action": "oss:Get*", "Resource": "acs:oss:*:*:b/*"}],
            [
                {
                    "Effect": "Allow",
                    "Action": ["oss:Get*", "oss:GetObject"],
                    "Resource": ["acs:oss:*:*:b/*", "acs:oss:*:*:b/*/*"],
                }
            ],
        ),
    ],
    ids=["reorder", "split", "redundant", "shadowed", "wildcards"],
)
def test_equivalent_rewrites(old: list[dict[str, Any]], new: list[dict[str, Any]]) -> None:
    result = diff_policies([_p(*old)], [_p(*new)])
    assert result.equivalent, [i.to_json() for i in result.new_access + result.removed_access]
    assert result.exact


def test_diff_of_every_example_with_itself_is_equivalent() -> None:
    for path in sorted((EXAMPLES / "compiled").glob("*.json")):
        p = parse_policy(path.read_text())
        assert diff_policies([p], [p]).equivalent, path


# ------------------------------------------------------------------ properties and brute force

ACTIONS = [
    "oss:GetObject",
    "oss:PutObject",
    "oss:DeleteObject",
    "oss:ListObjects",
    "oss:GetObjectFuture",
]
RESOURCES = ["acs:oss:*:*:b/a/x", "acs:oss:*:*:b/y", "acs:oss:*:*:b", "acs:oss:*:*:c/x"]
ACTION_PATTERNS = [
    "oss:GetObject",
    "oss:PutObject",
    "oss:DeleteObject",
    "oss:ListObjects",
    "oss:Get*",
    "oss:*Object",
    "*",
    "oss:?etObject",
]
RESOURCE_PATTERNS = [
    "acs:oss:*:*:b/*",
    "acs:oss:*:*:b/a/*",
    "acs:oss:*:*:b",
    "acs:oss:*:*:c/*",
    "*",
    "acs:oss:*:*:?/y",
]
CONDITIONS = [
    Condition("StringLike", "oss:Prefix", ("a/*",)),
    Condition("StringNotEquals", "oss:Prefix", ("y",)),
    Condition("IpAddress", "acs:SourceIp", ("10.0.0.0/8",)),
    Condition("NotIpAddress", "acs:SourceIp", ("10.1.0.0/16",)),
    Condition("Bool", "acs:SecureTransport", ("true",)),
]
CONTEXTS = [
    {},
    {"oss:Prefix": "a/b", "acs:SourceIp": "10.2.3.4", "acs:SecureTransport": "true"},
    {"oss:Prefix": "y", "acs:SourceIp": "10.1.2.3", "acs:SecureTransport": "false"},
    {"oss:Prefix": "zz", "acs:SourceIp": "192.0.2.1"},
    {"acs:SourceIp": "10.1.0.0", "acs:SecureTransport": "true"},
]

_statement = st.builds(
    lambda effect, acts, ress, conds, na, nr: Statement(
        effect, tuple(acts), tuple(ress), tuple(conds), na, nr
    ),
    st.sampled_from(["Allow", "Allow", "Deny"]),
    st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(RESOURCE_PATTERNS), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(CONDITIONS), max_size=2, unique_by=lambda c: (c.operator, c.key)),
    st.sampled_from([False, False, False, True]),  # NotAction
    st.sampled_from([False, False, False, True]),
)
_policy = st.lists(_statement, min_size=1, max_size=4).map(lambda ss: Policy(tuple(ss)))

UNIVERSE = [Request(a, r, c) for a, r, c in itertools.product(ACTIONS, RESOURCES, CONTEXTS)]


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policy, _policy)
def test_the_diff_agrees_with_brute_force(old: Policy, new: Policy) -> None:
    result = diff_policies([old], [new])
    assert result.exact
    o, n = Evaluator([old]), Evaluator([new])
    differs_somewhere = False
    for req in UNIVERSE:
        differs = o.allows(req) != n.allows(req)
        differs_somewhere |= differs
        assert result.classify(req) is differs, (req, differs)
    if differs_somewhere:
        assert not result.equivalent
    for item in result.new_access:
        assert n.allows(item.witness) and not o.allows(item.witness)
    for item in result.removed_access:
        assert o.allows(item.witness) and not n.allows(item.witness)


@settings(max_examples=60, deadline=None)
@given(_policy)
def test_a_policy_is_equivalent_to_itself(p: Policy) -> None:
    assert diff_policies([p], [p]).equivalent


@settings(max_examples=60, deadline=None)
@given(_policy, _statement)
def test_adding_a_deny_never_adds_access(p: Policy, extra: Statement) -> None:
    deny = Statement(
        "Deny",
        extra.actions,
        extra.resources,
        extra.conditions,
        extra.not_action,
        extra.not_resource,
    )
    result = diff_policies([p], [Policy(p.statements + (deny,))])
    assert result.new_access == ()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_policy)
def test_a_statement_reported_redundant_can_be_removed(p: Policy) -> None:
    """PG201 says a statement grants nothing of its own: without it, nothing changes."""
    for issue in redundant_statements(p):
        rest = p.statements[: issue.statement_index] + p.statements[issue.statement_index + 1 :]
        result = diff_policies([p], [Policy(rest)])
        assert result.exact and result.equivalent, (issue, result.removed_access)


@settings(max_examples=80, deadline=None)
@given(_policy, st.integers(min_value=0))
def test_a_repeated_allow_is_reported_once(p: Policy, pick: int) -> None:
    allows = [s for s in p.statements if s.effect == "Allow"]  # NotAction, NotResource too
    if not allows:
        return
    copy = allows[pick % len(allows)]
    doubled = Policy((*p.statements, copy))
    reported = {i.statement_index for i in redundant_statements(doubled)}
    original = {i.statement_index for i in redundant_statements(p)}
    # the copy (the later of the two) is reported; what was reported before still is
    assert len(p.statements) in reported
    assert original <= reported


# ------------------------------------------------------------------ commands


def _write(tmp_path: Path, name: str, doc: dict[str, Any]) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(doc))
    return str(path)


def test_diff_command_formats_and_gate(tmp_path: Path) -> None:
    old = _write(
        tmp_path,
        "old.json",
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}
            ],
        },
    )
    new = _write(
        tmp_path,
        "new.json",
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["oss:GetObject", "oss:DeleteObject"],
                    "Resource": "acs:oss:*:*:b/*",
                }
            ],
        },
    )
    same = run_cli("diff", old, old, "--fail-on-new-access")
    assert same.exit_code == 0 and same.output.startswith("equivalent")
    gated = run_cli("diff", old, new, "--fail-on-new-access", "--format", "json")
    assert gated.exit_code == 3
    doc = json.loads(gated.output)
    assert doc["equivalent"] is False
    (item,) = doc["new_access"]
    assert set(item["witness"]) == {"action", "resource", "context"}
    assert item["witness"]["action"] == "oss:DeleteObject"
    assert item["statement"]["index"] == 0
    assert doc["removed_access"] == []
    assert run_cli("diff", new, old, "--fail-on-new-access").exit_code == 0
    md = run_cli("diff", old, new, "--format", "markdown")
    assert "**1 new access**, 0 removed (1 destructive)" in md.output
    assert "| destructive | `oss:DeleteObject` |" in md.output


def test_diff_markdown_golden(tmp_path: Path) -> None:
    old = str(EXAMPLES / "compiled" / "ingest-writer.json")
    doc = json.loads(Path(old).read_text())
    doc["Statement"][1]["Action"].append("oss:DeleteObject")
    new = _write(tmp_path, "ingest-writer.json", doc)
    result = run_cli("diff", old, new, "--format", "markdown")
    expected = (
        (ROOT / "tests" / "golden" / "diff-ingest-writer.md").read_text().replace("NEW_PATH", new)
    )
    assert result.output == expected


def test_diff_bad_input_exits_2(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text('{"Version": "1", "Statement": [{"Effect": "Allow"}]}')
    result = run_cli("diff", str(bad), str(bad))
    assert result.exit_code == 2
    assert "Statement[0]" in result.output
    assert run_cli("diff", str(bad)).exit_code == 2


def test_explain_command(tmp_path: Path) -> None:
    policy = str(EXAMPLES / "compiled" / "analytics-reader.json")
    base = [
        "explain",
        policy,
        "--resource",
        "acs:oss:*:1234567890123456:corp-data",
        "--action",
        "oss:ListObjects",
        "--context",
        "acs:SecureTransport=true",
        "--context",
        "acs:SourceVpc=vpc-bp1corpdata01",
    ]
    ok = run_cli(
        *base,
        "--context",
        "oss:Prefix=exports/analytics/2026/",
        "--expect",
        "allow",
        "--format",
        "json",
    )
    assert ok.exit_code == 0
    assert json.loads(ok.output)["decision"] == "allow"
    leak = run_cli(*base, "--context", "oss:Prefix=", "--expect", "deny")
    assert leak.exit_code == 0
    assert leak.output.startswith("implicit_deny")
    wrong = run_cli(*base, "--expect", "allow")
    assert wrong.exit_code == 3
    assert (
        run_cli(
            "explain", policy, "--action", "x", "--resource", "y", "--context", "novalue"
        ).exit_code
        == 2
    )


def test_diff_against_a_principal_needs_role_and_principal() -> None:
    assert (
        run_cli("diff", str(EXAMPLES / "platform.yaml"), "--principal", "user:bob").exit_code == 2
    )
    result = run_cli(
        "diff", str(EXAMPLES / "platform.yaml"), "--role", "ingest-writer", "--principal", "bob"
    )
    assert result.exit_code == 2
    assert "--principal" in result.output


# ------------------------------------------------------------------ condition values: exactness
#
# An independent reading of single conditions, written here from the documented rules (not
# from permgen's parser): numbers are built from their digits as Fractions, dates from a
# datetime plus exact fractions of a second and a zone offset.

NUMERIC_OPS = {
    "NumericEquals": lambda a, b: a == b,
    "NumericNotEquals": lambda a, b: a != b,
    "NumericLessThan": lambda a, b: a < b,
    "NumericLessThanEquals": lambda a, b: a <= b,
    "NumericGreaterThan": lambda a, b: a > b,
    "NumericGreaterThanEquals": lambda a, b: a >= b,
}
DATE_OPS = {op.replace("Numeric", "Date"): f for op, f in NUMERIC_OPS.items()}


def _written_number(
    sign: str, whole: int, frac: str, exp: int | None, style: int
) -> tuple[str, Fraction]:
    value = Fraction(int(str(whole) + frac), 10 ** len(frac))
    if exp is not None:
        value *= Fraction(10) ** exp
    if sign == "-":
        value = -value
    text = f"{sign}{'0' * (style % 3)}{whole}" + (f".{frac}" if frac or style == 4 else "")
    if exp is not None:
        text += ("e" if style % 2 else "E") + str(exp)
    return text, value


_number = st.builds(
    _written_number,
    st.sampled_from(["", "-", "+"]),
    st.sampled_from([0, 1, 5, 9, 10, 2**53, 2**53 + 1, 10**16, 10**16 + 1, 123456789]),
    st.sampled_from(["", "0", "5", "000001", "99999999999999999999"]),
    st.sampled_from([None, 0, 1, -1, 16, -20]),
    st.integers(0, 5),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(NUMERIC_OPS)), _number, _number)
def test_numeric_operators_agree_with_an_exact_reading(
    op: str, const: tuple[str, Fraction], value: tuple[str, Fraction]
) -> None:
    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "oss:GetObject",
                "Resource": "*",
                "Condition": {op: {"n": const[0]}},
            }
        ],
    }
    got = Evaluator(_policies([doc])).allows(Request("oss:GetObject", "x", {"n": value[0]}))
    assert got is NUMERIC_OPS[op](value[1], const[1]), (const, value)


EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def _written_date(
    when: datetime, frac: str, offset_minutes: int, style: int
) -> tuple[str, Fraction]:
    """A date-time written in one of the ISO 8601 forms the docs allow, and its exact
    seconds since the epoch."""
    zone = timezone(timedelta(minutes=offset_minutes))
    local = when.astimezone(zone)
    exact = Fraction(int((when - EPOCH).total_seconds())) + (
        Fraction(int(frac), 10 ** len(frac)) if frac else 0
    )
    sep = "." if style % 2 else ","
    sign = "+" if offset_minutes >= 0 else "-"
    hh, mm = divmod(abs(offset_minutes), 60)
    if style < 2:  # extended
        text = local.strftime("%Y-%m-%dT%H:%M:%S") + (sep + frac if frac else "")
        text += "Z" if offset_minutes == 0 and style == 0 else f"{sign}{hh:02d}:{mm:02d}"
    elif style < 4:  # basic
        text = local.strftime("%Y%m%dT%H%M%S") + (sep + frac if frac else "")
        text += "Z" if offset_minutes == 0 and style == 2 else f"{sign}{hh:02d}{mm:02d}"
    else:  # week date, extended
        year, week, day = local.isocalendar()
        text = f"{year:04d}-W{week:02d}-{day}T" + local.strftime("%H:%M:%S")
        text += (sep + frac if frac else "") + f"{sign}{hh:02d}:{mm:02d}"
    return text, exact


_instant = st.sampled_from(
    [
        datetime(2024, 1, 1, tzinfo=UTC),
        datetime(2023, 12, 31, 23, 59, 59, tzinfo=UTC),
        datetime(2024, 2, 29, 12, tzinfo=UTC),
        datetime(2026, 6, 30, 16, 0, 1, tzinfo=UTC),
    ]
) | st.datetimes(
    min_value=datetime(1990, 1, 1), max_value=datetime(2090, 1, 1), timezones=st.just(UTC)
).map(lambda d: d.replace(microsecond=0))
_date = st.builds(
    _written_date,
    _instant,
    st.sampled_from(["", "5", "500", "000001", "999999999"]),
    st.sampled_from([0, 0, 480, -330, 60]),
    st.integers(0, 4),
)


@settings(max_examples=200, deadline=None)
@given(st.sampled_from(sorted(DATE_OPS)), _date, _date)
def test_date_operators_agree_with_an_exact_reading(
    op: str, const: tuple[str, Fraction], value: tuple[str, Fraction]
) -> None:
    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "oss:GetObject",
                "Resource": "*",
                "Condition": {op: {"acs:CurrentTime": const[0]}},
            }
        ],
    }
    req = Request("oss:GetObject", "x", {"acs:CurrentTime": value[0]})
    assert Evaluator(_policies([doc])).allows(req) is DATE_OPS[op](value[1], const[1]), (
        const,
        value,
    )


def _cond_policy(*conditions: dict[str, Any], effect: str = "Allow") -> Policy:
    statements: list[dict[str, Any]] = [
        {"Effect": effect, "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}
    ]
    for c in conditions:
        statements[0].setdefault("Condition", {}).update(c)
    if effect == "Deny":
        statements.append(
            {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}
        )
    return _p(*statements)


def _brute_force(old: Policy, new: Policy, key: str, values: list[str]) -> list[Request]:
    o, n = Evaluator([old]), Evaluator([new])
    reqs = [Request("oss:GetObject", "acs:oss:*:*:b/k", {key: v}) for v in values]
    reqs.append(Request("oss:GetObject", "acs:oss:*:*:b/k", {}))
    return [r for r in reqs if o.allows(r) != n.allows(r)]


def _neighbours(const: Fraction) -> list[str]:
    """Values around a constant, computed here with Fractions (not by permgen)."""
    out = []
    for delta in (0, 1, -1, Fraction(1, 2), -Fraction(1, 2), Fraction(1, 10**25)):
        v = const + delta
        scaled = v.numerator * 10**30 // v.denominator  # floor, written exactly below
        out.append(str(Decimal(scaled).scaleb(-30)))
    return out


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(NUMERIC_OPS)), _number, _number, st.sampled_from(["Allow", "Deny"]))
def test_a_changed_numeric_constant_is_never_equivalent_when_a_request_tells(
    op: str, c1: tuple[str, Fraction], c2: tuple[str, Fraction], effect: str
) -> None:
    old = _cond_policy({op: {"n": c1[0]}}, effect=effect)
    new = _cond_policy({op: {"n": c2[0]}}, effect=effect)
    result = diff_policies([old], [new])
    sample = [c1[0], c2[0], "x", *_neighbours(c1[1]), *_neighbours(c2[1])]
    differing = _brute_force(old, new, "n", sample)
    if differing:
        assert not result.equivalent, differing
    assert result.exact
    for req in differing:
        assert result.classify(req) is True


@settings(max_examples=120, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.sampled_from(sorted(DATE_OPS)), _date, _date, st.sampled_from(["Allow", "Deny"]))
def test_a_changed_date_constant_is_never_equivalent_when_a_request_tells(
    op: str, c1: tuple[str, Fraction], c2: tuple[str, Fraction], effect: str
) -> None:
    old = _cond_policy({op: {"acs:CurrentTime": c1[0]}}, effect=effect)
    new = _cond_policy({op: {"acs:CurrentTime": c2[0]}}, effect=effect)
    result = diff_policies([old], [new])
    sample = [c1[0], c2[0]]
    for c in (c1[1], c2[1]):
        for delta in (Fraction(1, 2), -Fraction(1, 2), Fraction(1, 10**9), -Fraction(1, 10**9)):
            v = c + delta
            seconds = v.numerator // v.denominator
            frac = v - seconds
            text = (EPOCH + timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%S")
            digits = str(frac.numerator * 10**9 // frac.denominator).rjust(9, "0")
            sample.append(f"{text}.{digits}Z")
    differing = _brute_force(old, new, "acs:CurrentTime", sample)
    if differing:
        assert not result.equivalent, differing
    assert result.exact
    for item in result.new_access + result.removed_access:
        assert "T" in item.witness.context.get("acs:CurrentTime", "T")  # a date, when set


@pytest.mark.parametrize(
    ("old", "key", "value"),
    [
        ([{"DateEquals": {"acs:CurrentTime": "2024-01-01T00:00:00.5Z"}}], "acs:CurrentTime", None),
        ([{"NumericGreaterThan": {"n": "1e16"}}], "n", "10000000000000001"),
        (  # one key under two families: a value must satisfy both
            [{"NumericGreaterThan": {"n": "5"}, "StringLike": {"n": "1*"}}],
            "n",
            "10",
        ),
        (
            [{"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}, "StringLike": {"acs:SourceIp": "*.7"}}],
            "acs:SourceIp",
            "10.0.0.7",
        ),
    ],
    ids=["fraction-of-a-second", "1e16", "number-and-string", "ip-and-string"],
)
def test_a_condition_granting_something_is_not_equivalent_to_a_deny_of_all(
    old: list[dict[str, Any]], key: str, value: str | None
) -> None:
    """Fuzz findings: each old policy grants some request; the diff must find it."""
    allow = _cond_policy(*old)
    nothing = _p({"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:c/*"})
    result = diff_policies([allow], [nothing])
    assert not result.equivalent
    (item,) = result.removed_access
    assert Evaluator([allow]).allows(item.witness)
    if value is not None:
        req = Request("oss:GetObject", "acs:oss:*:*:b/k", {key: value})
        assert Evaluator([allow]).allows(req) and result.classify(req) is True


def test_mixed_families_on_one_key_say_the_diff_is_not_proven() -> None:
    mixed = _cond_policy({"NumericGreaterThan": {"n": "5"}, "StringLike": {"n": "1*"}})
    result = diff_policies([mixed], [_cond_policy({"NumericGreaterThan": {"n": "5"}})])
    assert not result.equivalent and not result.exact


def test_witnesses_are_realistic_requests() -> None:
    old = _p({"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:*:*:*:example"})
    new = _p(
        {
            "Effect": "Allow",
            "Action": "oss:GetObject",
            "Resource": "acs:oss:*:*:b/*",
            "Condition": {"StringLike": {"acs:SourceIp": "10.*"}},
        }
    )
    result = diff_policies([old], [new])
    items = result.new_access + result.removed_access
    assert items
    for item in items:
        head = item.witness.resource.split(":")[:4]
        assert not any("*" in seg or "?" in seg for seg in head), item.witness
        ip = item.witness.context.get("acs:SourceIp")
        if ip is not None:
            ipaddress.ip_address(ip)  # an IP key gets an IP address


def test_key_name_case_is_read_per_effect_in_the_diff() -> None:
    """A negated Deny guard spelled in another case: the tool must not claim it protects
    requests RAM may let through (it may compare key names without case)."""
    guard = {"NotIpAddress": {"acs:sourceip": "10.0.0.0/8"}}
    allow = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}
    deny = {"Effect": "Deny", "Action": "oss:GetObject", "Resource": "*", "Condition": guard}
    correct = dict(deny, Condition={"NotIpAddress": {"acs:SourceIp": "10.0.0.0/8"}})
    result = diff_policies([_p(allow, correct)], [_p(allow, deny)])
    assert result.exact and result.equivalent  # both let 10/8 through, deny the rest
    # a positive Deny spelled in another case may not apply: removing it changes nothing sure
    pos = {"Effect": "Deny", "Action": "oss:GetObject", "Resource": "*"}
    spelled = dict(pos, Condition={"IpAddress": {"acs:sourceip": "192.0.2.0/24"}})
    documented = dict(pos, Condition={"IpAddress": {"acs:SourceIp": "192.0.2.0/24"}})
    assert diff_policies([_p(allow, spelled)], [_p(allow)]).equivalent
    (item,) = diff_policies([_p(allow, documented)], [_p(allow)]).new_access
    assert item.witness.context["acs:SourceIp"].startswith("192.0.2.")


def test_diff_refuses_a_constant_it_cannot_compare(tmp_path: Path) -> None:
    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Deny",
                "Action": "oss:*",
                "Resource": "*",
                "Condition": {"DateLessThan": {"acs:CurrentTime": "2024-W01"}},
            }
        ],
    }
    path = _write(tmp_path, "p.json", doc)
    result = run_cli("diff", path, path)
    assert result.exit_code == 2
    assert "Statement[0].Condition.DateLessThan.acs:CurrentTime[0]" in result.output
    assert "'2024-W01'" in result.output
    assert "Traceback" not in result.output


def test_a_deny_on_a_key_spelled_otherwise_does_not_make_an_allow_redundant() -> None:
    cond = {"IpAddress": {"acs:sourceip": "10.0.0.0/8"}}
    allow = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}
    deny = {"Effect": "Deny", "Action": "oss:GetObject", "Resource": "*", "Condition": cond}
    p = _p(dict(allow, Condition=cond), deny)
    assert list(redundant_statements(p)) == []
    # the Allow does grant something: without it, a request is lost
    assert not diff_policies([p], [_p(deny)]).equivalent
    documented = {"IpAddress": {"acs:SourceIp": "10.0.0.0/8"}}
    q = _p(dict(allow, Condition=documented), dict(deny, Condition=documented))
    assert [i.statement_index for i in redundant_statements(q)] == [0]
    assert diff_policies([q], [_p(dict(deny, Condition=documented))]).equivalent


def test_negative_constants_of_many_digits_are_told_apart_exactly() -> None:
    """A value between two negative constants of 37 and 17 digits: negating a Decimal with
    unary minus rounds it to 28 digits, which once left that region without a candidate."""
    from permgen.policy.model import parse_policy as parse

    def policy(c: str) -> Policy:
        return parse(
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "oss:GetObject",
                        "Resource": "acs:oss:*:*:b/*",
                        "Condition": {"NumericEquals": {"oss:x": c}},
                    }
                ],
            }
        )

    result = diff_policies(
        [policy("-10000000000000000.99999999999999999999")], [policy("-10000000000000001")]
    )
    assert result.exact and not result.equivalent
    assert [i.witness.context for i in result.new_access] == [{"oss:x": "-10000000000000001"}]
