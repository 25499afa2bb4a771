"""The semantic core: evaluation cases, the exact diff against brute force, properties."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permgen.errors import PolicyParseError
from permgen.model import Condition, Policy, Statement, parse_policy
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
    from permgen.model import OPERATORS

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
    st.booleans().map(lambda b: b and False),
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
    allows = [s for s in p.statements if s.effect == "Allow" and not s.not_resource]
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
