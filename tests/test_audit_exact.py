"""The audit decides over every key and context, not over sample requests.

The engine reads each bucket's statements as cells (``permgen.semantics.bucket_cells``) and
confirms each witness with the evaluator. Here an independent reading checks it: the
evaluator alone (identity policies and bucket policy together, whole policies, no cells),
run over every key up to three characters of an alphabet the patterns are drawn from, in
every context the conditions tell apart. Whatever that brute force finds allowed, the audit
must report; whatever the audit reports, the evaluator must allow.
"""

from __future__ import annotations

import itertools
import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.account.audit import BucketSnap, Snapshot, UserSnap, audit
from permgen.policy.model import parse_policy
from permgen.semantics.bucket_policy import Caller, CombinedEvaluator, parse_bucket_policy
from permgen.semantics.evaluate import Request

ACCOUNT = "1234567890123456"
REGION = "cn-hangzhou"
ALPHABET = "ae/x"
#: Every key of one to four characters. The patterns below have at most two literal
#: characters each, so every set of them that some key matches together (and the others
#: not) is met by a key of at most four characters (``x/a`` for ``*/a*`` and not ``x``, say);
#: longer patterns (``e/*a`` beside a star that crosses ``/``) would need longer keys.
KEYS = ["".join(t) for n in (1, 2, 3, 4) for t in itertools.product(ALPHABET, repeat=n)]
CONTEXTS: list[dict[str, str]] = [
    {},
    {"acs:SourceIp": "10.1.2.3"},
    {"acs:SourceIp": "192.168.0.1"},
]
KEY_PATTERNS = ["*", "a*", "a/*", "*e", "a?", "x"]
BUCKETS = ("b1", "b2")
USERS = (("u0", "200000000000000"), ("u1", "200000000000001"))
ACTIONS = ["oss:DeleteObject", "oss:PutObject", "oss:*", "oss:Delete*"]


@st.composite
def resource(draw: Any) -> str:
    bucket = draw(st.sampled_from(["b1", "b2", "*"]))
    return f"acs:oss:*:*:{bucket}/{draw(st.sampled_from(KEY_PATTERNS))}"


@st.composite
def statement(draw: Any) -> dict[str, Any]:
    out: dict[str, Any] = {
        "Effect": draw(st.sampled_from(["Allow", "Allow", "Deny"])),
        "Action": draw(st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2, unique=True)),
        draw(st.sampled_from(["Resource", "Resource", "Resource", "NotResource"])): draw(
            st.lists(resource(), min_size=1, max_size=2, unique=True)
        ),
    }
    if draw(st.booleans()) and draw(st.booleans()):
        op = draw(st.sampled_from(["IpAddress", "NotIpAddress"]))
        out["Condition"] = {op: {"acs:SourceIp": ["10.0.0.0/8"]}}
    return out


@st.composite
def bucket_policy(draw: Any, bucket: str) -> str | None:
    if not draw(st.booleans()):
        return None
    statements = []
    for _ in range(draw(st.integers(1, 2))):
        s = draw(statement())
        s.pop("NotResource", None)
        s["Resource"] = [f"acs:oss:*:{ACCOUNT}:{bucket}/{draw(st.sampled_from(KEY_PATTERNS))}"]
        s["Principal"] = [draw(st.sampled_from(["*", USERS[0][1], USERS[1][1]]))]
        statements.append(s)
    return json.dumps({"Version": "1", "Statement": statements})


@st.composite
def snapshots(draw: Any) -> Snapshot:
    policies = {
        f"Custom:p{i}": json.dumps(
            {"Version": "1", "Statement": draw(st.lists(statement(), min_size=1, max_size=3))}
        )
        for i in range(3)
    }
    users = tuple(
        UserSnap(
            name,
            uid,
            (),
            tuple(draw(st.lists(st.sampled_from(sorted(policies)), max_size=2, unique=True))),
        )
        for name, uid in USERS
    )
    buckets = tuple(
        BucketSnap(name=b, region=REGION, policy=draw(bucket_policy(b))) for b in BUCKETS
    )
    return Snapshot(ACCOUNT, users, (), (), policies, buckets)


def _brute(snap: Snapshot, user: UserSnap, bucket: BucketSnap, action: str) -> bool:
    policies = [parse_policy(snap.policies[k]) for k in user.policies]
    bp = parse_bucket_policy(bucket.policy) if bucket.policy else None
    ev = CombinedEvaluator(Caller((user.user_id,)), policies, bp)
    arn = f"acs:oss:{REGION}:{ACCOUNT}:{bucket.name}"
    return any(
        ev.decide(Request(action, f"{arn}/{key}", ctx)).allowed for key in KEYS for ctx in CONTEXTS
    )


KIND_OF = {"irrecoverable-delete": "oss:DeleteObject", "irrecoverable-overwrite": "oss:PutObject"}


@settings(max_examples=40, deadline=None)
@given(snapshots())
def test_the_audit_reports_exactly_what_brute_force_finds(snap: Snapshot) -> None:
    report = audit(snap)
    assert report.exact
    found = {(f.kind, f.principal, f.bucket): f for f in report.findings}
    for user in snap.users:
        for bucket in snap.buckets:
            for kind, action in KIND_OF.items():
                expected = _brute(snap, user, bucket, action)
                got = found.get((kind, f"user:{user.name}", bucket.name))
                assert (got is not None) == expected, (kind, user.name, bucket.name)
                if got is not None:  # the witness itself, read again by the evaluator
                    policies = [parse_policy(snap.policies[k]) for k in user.policies]
                    bp = parse_bucket_policy(bucket.policy) if bucket.policy else None
                    ev = CombinedEvaluator(Caller((user.user_id,)), policies, bp)
                    w = got.witness
                    assert w.action == action
                    assert w.resource.startswith(f"acs:oss:{REGION}:{ACCOUNT}:{bucket.name}/")
                    assert w.resource.split("/", 1)[1]  # an object key is never empty
                    assert ev.decide(Request(w.action, w.resource, dict(w.context))).allowed


def _snap(policies: dict[str, list[dict[str, Any]]], users: dict[str, list[str]]) -> Snapshot:
    return Snapshot(
        ACCOUNT,
        tuple(
            UserSnap(name, f"20000000000000{n}", (), tuple(f"Custom:{p}" for p in held))
            for n, (name, held) in enumerate(users.items())
        ),
        (),
        (),
        {
            f"Custom:{name}": json.dumps({"Version": "1", "Statement": stmts})
            for name, stmts in policies.items()
        },
        (BucketSnap(name="logs", region=REGION),),
    )


def _delete(resource: str, effect: str = "Allow") -> dict[str, Any]:
    return {"Effect": effect, "Action": "oss:DeleteObject", "Resource": resource}


def test_a_deny_on_the_sample_key_does_not_hide_the_rest_of_the_grant() -> None:
    """Allow on logs/app/*, Deny on logs/app/e*: keys outside the Deny are still deletable
    (a witness drawn from the Allow's pattern alone, logs/app/example, is denied)."""
    snap = _snap(
        {
            "p": [
                _delete("acs:oss:*:*:logs/app/*"),
                _delete("acs:oss:*:*:logs/app/e*", "Deny"),
            ]
        },
        {"etl": ["p"]},
    )
    (f,) = [x for x in audit(snap).findings if x.kind == "irrecoverable-delete"]
    key = f.witness.resource.split("/", 1)[1]
    assert key.startswith("app/") and not key.startswith("app/e")


def test_a_condition_only_a_sample_value_can_meet_is_still_found() -> None:
    """A Deny unless the caller is inside 10.0.0.0/8: allowed from inside, and the witness
    carries such an address."""
    snap = _snap(
        {
            "p": [
                _delete("acs:oss:*:*:logs/*"),
                {
                    **_delete("acs:oss:*:*:logs/*", "Deny"),
                    "Condition": {"NotIpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}},
                },
            ]
        },
        {"etl": ["p"]},
    )
    (f,) = [x for x in audit(snap).findings if x.kind == "irrecoverable-delete"]
    ip = f.witness.context["acs:SourceIp"]
    assert ip.startswith("10.")


def test_attaching_any_policy_brings_that_policy_alone() -> None:
    """The account holds one policy that grants the delete and another that denies it;
    a principal that may attach any policy attaches the first alone."""
    snap = _snap(
        {
            "attach": [{"Effect": "Allow", "Action": "ram:AttachPolicyToUser", "Resource": "*"}],
            "grant": [_delete("acs:oss:*:*:logs/*")],
            "guard": [_delete("acs:oss:*:*:logs/*", "Deny")],
        },
        {"dev": ["attach"], "other": ["guard"]},
    )
    found = {(f.kind, f.principal): f for f in audit(snap).findings}
    f = found[("irrecoverable-delete", "user:dev")]
    assert "(any policy in the account)" in f.path[1]
    assert f.path[-1] == "policy grant Statement[0]"


def test_a_new_policy_version_takes_the_old_versions_deny_with_it() -> None:
    """A principal that may write its own policy's versions is not held back by that
    policy's Deny: the new version replaces it."""
    snap = _snap(
        {
            "mine": [
                {"Effect": "Allow", "Action": "ram:CreatePolicyVersion", "Resource": "*"},
                _delete("acs:oss:*:*:logs/*", "Deny"),
            ]
        },
        {"dev": ["mine"]},
    )
    found = {(f.kind, f.principal): f for f in audit(snap).findings}
    f = found[("irrecoverable-delete", "user:dev")]
    assert f.path[1].startswith("ram:CreatePolicyVersion on mine")
