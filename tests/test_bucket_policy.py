"""Bucket policies and the combined decision (identity policies + bucket policy), checked
against a brute-force reading written here from the documented rules."""

from __future__ import annotations

import fnmatch
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.errors import PolicyParseError
from permgen.policy.model import parse_policy
from permgen.semantics.bucket_policy import (
    Caller,
    CombinedEvaluator,
    bucket_policy_problems,
    parse_bucket_policy,
)
from permgen.semantics.evaluate import Request

OWNER = "1234567890123456"
ALICE = "200000000000000001"
BOB = "200000000000000002"
SESSION = f"arn:sts::{OWNER}:assumed-role/ops/alice"
BUCKET_ARN = f"acs:oss:*:{OWNER}:data"
CALLERS = {
    "owner": Caller((OWNER,), owner=True),
    "alice": Caller((ALICE,)),
    "bob": Caller((BOB,)),
    "session": Caller((SESSION,)),
    "anonymous": Caller.anonymous_caller(),
}
ACTIONS = ["oss:GetBucketInfo", "oss:PutBucketAcl", "oss:DeleteBucket"]
ACTION_PATTERNS = [*ACTIONS, "oss:*", "oss:Put*", "oss:Get*"]
RESOURCES = [BUCKET_ARN, "acs:oss:*:*:data", "acs:oss:*:*:other", "*", "acs:oss:*:*:data/*"]
PRINCIPALS = ["*", OWNER, ALICE, BOB, f"arn:sts::{OWNER}:assumed-role/ops/*"]
CONDITIONS = [
    None,
    ("Bool", "acs:SecureTransport", "true"),
    ("Bool", "acs:SecureTransport", "false"),
]


def statement_json(effect: str, actions: list[str], resource: str, cond: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"Effect": effect, "Action": actions, "Resource": resource}
    if cond is not None:
        out["Condition"] = {cond[0]: {cond[1]: [cond[2]]}}
    return out


statement = st.tuples(
    st.sampled_from(["Allow", "Deny"]),
    st.lists(st.sampled_from(ACTION_PATTERNS), min_size=1, max_size=2),
    st.sampled_from(RESOURCES),
    st.sampled_from(CONDITIONS),
)
bucket_statement = st.tuples(statement, st.lists(st.sampled_from(PRINCIPALS), max_size=2))


# ---------------------------------------------------------------------- the brute force


def brute_matches(s: Any, action: str, resource: str, context: dict[str, str]) -> bool:
    _effect, actions, pattern, cond = s
    if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
        return False
    if not fnmatch.fnmatchcase(resource, pattern):
        return False
    if cond is not None:
        return context.get(cond[1]) == cond[2]
    return True


def brute_side(statements: list[Any], action: str, context: dict[str, str]) -> str:
    hits = [s[0] for s in statements if brute_matches(s, action, BUCKET_ARN, context)]
    if "Deny" in hits:
        return "explicit_deny"
    return "allow" if "Allow" in hits else "implicit_deny"


def brute_applies(principals: list[str], has_condition: bool, who: str) -> bool:
    principals = principals or ["*"]  # an empty list means everyone
    ids = {"owner": OWNER, "alice": ALICE, "bob": BOB, "session": SESSION}.get(who)
    named = ids is not None and any(p != "*" and fnmatch.fnmatchcase(ids, p) for p in principals)
    if named:
        return True
    if "*" in principals:
        # "*" without a condition: everyone but the owner; with one: everyone
        return has_condition or who != "owner"
    return False


def brute_decision(
    identity: list[Any], bucket: list[Any], who: str, action: str, context: dict[str, str]
) -> str:
    if who == "owner":
        ident = "allow"
    elif who == "anonymous":
        ident = "implicit_deny"
    else:
        ident = brute_side(identity, action, context)
    applicable = [s for s, p in bucket if brute_applies(p, s[3] is not None, who)]
    side = brute_side(applicable, action, context)
    if "explicit_deny" in (ident, side):
        return "explicit_deny"
    if "allow" in (ident, side):
        return "allow"
    return "implicit_deny"


@settings(max_examples=150, deadline=None)
@given(
    identity=st.lists(statement, max_size=3),
    bucket=st.lists(bucket_statement, max_size=3),
    who=st.sampled_from(sorted(CALLERS)),
    action=st.sampled_from(ACTIONS),
    secure=st.sampled_from(["true", "false"]),
)
def test_combined_decision_matches_brute_force(
    identity: list[Any], bucket: list[Any], who: str, action: str, secure: str
) -> None:
    ident_doc = {"Version": "1", "Statement": [statement_json(*s) for s in identity]}
    bucket_doc = {
        "Version": "1",
        "Statement": [{"Principal": p, **statement_json(*s)} for s, p in bucket],
    }
    evaluator = CombinedEvaluator(
        CALLERS[who],
        [parse_policy(ident_doc)] if identity else [],
        parse_bucket_policy(json.dumps(bucket_doc)) if bucket else None,
    )
    context = {"acs:SecureTransport": secure}
    got = evaluator.decide(Request(action, BUCKET_ARN, context))
    assert got.kind == brute_decision(identity, bucket, who, action, context)
    assert got.allowed == evaluator.allows(Request(action, BUCKET_ARN, context))


# ---------------------------------------------------------------------- parsing


def test_principal_forms_and_errors() -> None:
    doc = {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "oss:GetBucketInfo", "Resource": "*"},
            {"Effect": "Allow", "Principal": [], "Action": "oss:GetBucketInfo", "Resource": "*"},
        ],
    }
    policy = parse_bucket_policy(json.dumps(doc))
    assert [bs.principals for bs in policy.statements] == [("*",), ("*",)]
    for bad, where in (
        ({"Effect": "Allow", "Action": "oss:*", "Resource": "*"}, "Statement[0]"),
        (
            {"Effect": "Allow", "Principal": {"RAM": "x"}, "Action": "oss:*", "Resource": "*"},
            "Principal",
        ),
        (
            {
                "Effect": "Allow",
                "NotPrincipal": ["1"],
                "Principal": "*",
                "Action": "oss:*",
                "Resource": "*",
            },
            "NotPrincipal",
        ),
        (
            {"Effect": "Allow", "Principal": "*", "Action": "GetBucketInfo", "Resource": "*"},
            "Action",
        ),
    ):
        with pytest.raises(PolicyParseError) as info:
            parse_bucket_policy(json.dumps({"Version": "1", "Statement": [bad]}))
        assert where in str(info.value)
    with pytest.raises(PolicyParseError):
        parse_bucket_policy("x" * (16 * 1024 + 1))


def test_source_ip_needs_source_vpc_in_the_same_statement() -> None:
    def doc(cond: dict[str, Any]) -> str:
        return json.dumps(
            {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Deny",
                        "Principal": ["*"],
                        "Action": "oss:*",
                        "Resource": "*",
                        "Condition": cond,
                    }
                ],
            }
        )

    ip = {"NotIpAddress": {"acs:SourceIp": ["192.0.2.0/24"]}}
    assert bucket_policy_problems(parse_bucket_policy(doc(ip))) == [
        "Statement[0]: acs:SourceVpc should be set if acs:SourceIp is set"
    ]
    both = {**ip, "StringNotLike": {"acs:SourceVpc": ["vpc-*"]}}
    assert bucket_policy_problems(parse_bucket_policy(doc(both))) == []


def test_a_statement_naming_the_owner_binds_it_without_a_condition() -> None:
    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": ["*", OWNER],
                "Action": "oss:DeleteBucket",
                "Resource": "*",
            }
        ],
    }
    ev = CombinedEvaluator(CALLERS["owner"], None, parse_bucket_policy(json.dumps(doc)))
    decision = ev.decide(Request("oss:DeleteBucket", BUCKET_ARN))
    assert decision.kind == "explicit_deny"
    assert decision.identity.kind == "allow" and decision.bucket.kind == "explicit_deny"
    assert decision.to_json()["bucket_policy"]["decision"] == "explicit_deny"
