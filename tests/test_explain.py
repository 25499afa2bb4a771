"""``permgen explain``: checking its own question, absent condition keys, session policies."""

from __future__ import annotations

import json

from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.policy.model import Condition, Policy, Statement
from permgen.semantics import Evaluator, Request, explain
from permgen.semantics.evaluate import explain_request
from tests.conftest import EXAMPLES, run_cli

READER = str(EXAMPLES / "compiled" / "analytics-reader.json")
WRITER = str(EXAMPLES / "compiled" / "ingest-writer.json")
BUCKET = "acs:oss:*:1234567890123456:corp-data"
IN_VPC = ["--context", "acs:SecureTransport=true", "--context", "acs:SourceVpc=vpc-bp1corpdata01"]


def test_an_unknown_action_of_a_known_service_is_bad_input_with_a_did_you_mean() -> None:
    result = run_cli("explain", READER, "--action", "oss:ListObject", "--resource", BUCKET)
    assert result.exit_code == 2
    assert "unknown oss action; did you mean oss:ListObjects?" in result.output
    assert run_cli("explain", READER, "--action", "oss:Get*", "--resource", BUCKET).exit_code == 2
    assert run_cli("explain", READER, "--action", "GetObject", "--resource", BUCKET).exit_code == 2
    # a service the catalog does not know is decided as given (implicit deny here)
    other = run_cli("explain", READER, "--action", "ecs:DescribeInstances", "--resource", BUCKET)
    assert other.exit_code == 0 and other.output.startswith("implicit_deny")
    # the catalog's own names in any case are known
    lower = run_cli("explain", READER, "--action", "oss:listobjects", "--resource", BUCKET)
    assert lower.exit_code == 0


def test_a_resource_that_is_not_an_arn_is_bad_input_with_the_arn_form() -> None:
    for given_resource in ("corp-data/exports/analytics/a", "oss://corp-data/exports/analytics/a"):
        result = run_cli(
            "explain", READER, "--action", "oss:GetObject", "--resource", given_resource
        )
        assert result.exit_code == 2
        assert "acs:oss:*:1234567890123456:corp-data/exports/analytics/a" in result.output
        assert "Traceback" not in result.output
    for bad in ("acs:oss:corp-data", "arn:aws:s3:::b/k", ""):
        result = run_cli("explain", READER, "--action", "oss:GetObject", "--resource", bad)
        assert result.exit_code == 2
        assert "acs:SERVICE:REGION:ACCOUNT:RESOURCE" in result.output


def test_expect_fails_when_the_answer_holds_only_because_keys_are_absent() -> None:
    obj = f"{BUCKET}/exports/analytics/2026.csv"
    base = ["explain", READER, "--action", "oss:GetObject", "--resource", obj]
    absent = run_cli(*base, "--expect", "deny")
    assert absent.exit_code == 3
    assert "depends on condition keys the request does not give" in absent.output
    assert (
        "with acs:SecureTransport=true, acs:SourceVpc=vpc-bp1corpdata01 the answer could be allow"
        in absent.output
    )
    assert "deny holds only because the request does not give" in absent.output
    # the request really has no such keys: the answer stands
    complete = run_cli(*base, "--expect", "deny", "--context-complete")
    assert complete.exit_code == 0
    assert "the request has no such keys" in complete.output
    # given the keys, the answer is allow, for the right reason
    assert run_cli(*base, *IN_VPC, "--expect", "allow").exit_code == 0


def test_expect_allow_fails_when_a_deny_key_is_absent() -> None:
    obj = f"{BUCKET}/ingest/batch.csv"
    base = ["explain", WRITER, "--action", "oss:PutObject", "--resource", obj, *IN_VPC]
    result = run_cli(*base, "--expect", "allow", "--format", "json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["decision"] == "allow"
    assert doc["missing_keys"] == ["oss:x-oss-object-acl"]
    assert doc["alternatives"] == [
        {"decision": "explicit_deny", "context": {"oss:x-oss-object-acl": "public-read"}}
    ]
    private = run_cli(*base, "--context", "oss:x-oss-object-acl=private", "--expect", "allow")
    assert private.exit_code == 0
    assert "does not give" not in private.output


def test_keys_that_cannot_change_the_answer_do_not_fail_expect() -> None:
    """The README's CI example: listing the whole bucket is denied because of oss:Prefix,
    whatever the network keys say."""
    result = run_cli(
        "explain", READER, "--action", "oss:ListObjects", "--resource", BUCKET,
        "--context", "oss:Prefix=", "--expect", "deny", "--format", "json",
    )  # fmt: skip
    assert result.exit_code == 0
    doc = json.loads(result.output)
    assert doc["decision"] == "implicit_deny"
    assert doc["missing_keys"] == ["acs:SecureTransport", "acs:SourceVpc"]
    assert doc["alternatives"] == [] and doc["alternatives_exhaustive"] is True
    assert doc["context_complete"] is False
    assert set(doc) >= {"decision", "statements", "request"}  # the fields it always had


def test_session_policy_shows_both_decisions_and_which_denied() -> None:
    obj = f"{BUCKET}/exports/analytics/a"
    base = ["explain", READER, "--action", "oss:GetObject", "--resource", obj, *IN_VPC]
    text = run_cli(*base, "--session-policy", WRITER)
    assert text.exit_code == 0
    assert text.output.startswith("implicit_deny")
    assert "  ceiling (POLICY files): allow\n" in text.output
    assert "  session policy: implicit_deny\n" in text.output
    assert "  denied by: the session policy\n" in text.output
    doc = json.loads(run_cli(*base, "--session-policy", WRITER, "--format", "json").output)
    assert doc["ceiling"]["decision"] == "allow"
    assert doc["session"]["decision"] == "implicit_deny"
    assert doc["denied_by"] == ["session"]
    both = json.loads(run_cli(*base, "--session-policy", READER, "--format", "json").output)
    assert both["decision"] == "allow" and both["denied_by"] == []
    flipped = run_cli(
        "explain", WRITER, "--action", "oss:GetObject", "--resource", obj, *IN_VPC,
        "--session-policy", READER, "--format", "json",
    )  # fmt: skip
    assert json.loads(flipped.output)["denied_by"] == ["ceiling"]


KEYS = ["acs:SourceIp", "acs:SecureTransport", "oss:Prefix", "acs:CurrentTime", "oss:MaxKeys"]
CONDITIONS = st.sampled_from(
    [
        Condition("IpAddress", "acs:SourceIp", ("10.0.0.0/8",)),
        Condition("NotIpAddress", "acs:SourceIp", ("192.168.0.0/16", "10.1.0.0/16")),
        Condition("Bool", "acs:SecureTransport", ("true",)),
        Condition("StringLike", "oss:Prefix", ("a/*", "b/?/*")),
        Condition("StringNotLike", "oss:Prefix", ("a/secret/*",)),
        Condition("StringEquals", "oss:Prefix", ("",)),
        Condition("DateLessThan", "acs:CurrentTime", ("2027-01-01T00:00:00Z",)),
        Condition("NumericGreaterThan", "oss:MaxKeys", ("100",)),
        Condition("NumericNotEquals", "oss:MaxKeys", ("5",)),
    ]
)
STATEMENTS = st.builds(
    lambda effect, conds: Statement(effect, ("oss:ListObjects",), ("acs:oss:*:*:b",), conds),
    st.sampled_from(["Allow", "Deny"]),
    st.lists(CONDITIONS, max_size=3, unique=True).map(tuple),
)


@settings(max_examples=150, deadline=None)
@given(
    st.lists(STATEMENTS, min_size=1, max_size=4),
    st.dictionaries(st.sampled_from(KEYS), st.sampled_from(["", "a/x", "10.0.0.1", "true", "7"])),
)
def test_every_alternative_is_what_the_request_gets_with_those_values(
    statements: list[Statement], context: dict[str, str]
) -> None:
    policies = [Policy(tuple(statements))]
    request = Request("oss:ListObjects", "acs:oss:*:*:b", context)
    result = explain_request(policies, request)
    assert result.decision == explain(policies, request)
    given_keys = {k.lower() for k in context}
    tested = {c.key.lower() for s in statements for c in s.conditions}
    assert {k.lower() for k in result.missing_keys} == tested - given_keys
    evaluator = Evaluator(policies)
    for alt in result.alternatives:
        assert alt.decision != result.decision.kind
        assert set(alt.context) <= set(result.missing_keys)
        assert (
            evaluator.decide(
                Request(request.action, request.resource, {**context, **alt.context})
            ).kind
            == alt.decision
        )


def test_the_search_is_bounded_and_says_so() -> None:
    """Eight keys, every one needed: too many combinations to try them all, so the search
    stops at its budget, says so, and still tries the values that make the statement match."""
    conds = tuple(Condition("StringEquals", f"k:{i}", ("a", "b", "c")) for i in range(8))
    policies = [Policy((Statement("Allow", ("oss:GetObject",), ("*",), conds),))]
    request = Request("oss:GetObject", "acs:oss:*:*:b/k")
    result = explain_request(policies, request, budget=50)
    assert result.exhaustive is False
    assert [a.decision for a in result.alternatives] == ["allow"]
    assert result.alternatives[0].context == {f"k:{i}": "a" for i in range(8)}
    one_key = explain_request([Policy((Statement("Allow", ("*",), ("*",), conds[:1]),))], request)
    assert one_key.exhaustive is True
