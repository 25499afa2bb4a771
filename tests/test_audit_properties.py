"""Properties of the audit engine over generated snapshots (pure: no account): a Deny never
adds a finding, and enabling versioning never adds an irrecoverable-* finding."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.account.audit import BucketSnap, RoleSnap, Snapshot, UserSnap, audit

ACCOUNT = "1234567890123456"
ACTIONS = [
    "oss:DeleteObject",
    "oss:PutObject",
    "oss:DeleteObjectVersion",
    "oss:PutBucketLifecycle",
    "oss:*",
    "ram:AttachPolicyToUser",
    "ram:CreatePolicyVersion",
    "ram:CreateAccessKey",
    "sts:AssumeRole",
]
RESOURCES = [
    "*",
    "acs:oss:*:*:b1/*",
    "acs:oss:*:*:b2/logs/*",
    "acs:oss:*:*:b1",
    "acs:oss:*:*:b*",
    f"acs:ram:*:{ACCOUNT}:user/u0",
    f"acs:ram:*:{ACCOUNT}:role/r0",
]
statement = st.fixed_dictionaries(
    {
        "Effect": st.just("Allow"),
        "Action": st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=3, unique=True),
        "Resource": st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2, unique=True),
    }
)
deny = statement.map(lambda s: {**s, "Effect": "Deny"})
versioning = st.sampled_from([None, "Enabled", "Suspended"])


@st.composite
def snapshots(draw: Any) -> Snapshot:
    policies = {
        f"Custom:p{i}": json.dumps(
            {"Version": "1", "Statement": draw(st.lists(statement, min_size=1, max_size=3))}
        )
        for i in range(3)
    }
    names = list(policies)
    users = tuple(
        UserSnap(
            f"u{i}",
            f"20000000000000{i}",
            (),
            tuple(draw(st.lists(st.sampled_from(names), max_size=2, unique=True))),
        )
        for i in range(2)
    )
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:user/u0"]},
            }
        ]
    }
    roles = (
        RoleSnap(
            "r0", json.dumps(trust), tuple(draw(st.lists(st.sampled_from(names), max_size=1)))
        ),
    )
    buckets = tuple(
        BucketSnap(
            name=b,
            acl=draw(st.sampled_from(["private", "public-read-write"])),
            versioning=draw(versioning),
        )
        for b in ("b1", "b2")
    )
    return Snapshot(ACCOUNT, users, (), roles, policies, buckets)


def _keys(snap: Snapshot) -> set[tuple[str, str, str | None]]:
    return {(f.kind, f.principal, f.bucket) for f in audit(snap).findings}


@settings(max_examples=60, deadline=None)
@given(snapshots(), deny, st.integers(0, 2))
def test_adding_a_deny_never_adds_a_finding(
    snap: Snapshot, extra: dict[str, Any], which: int
) -> None:
    key = f"Custom:p{which}"
    doc = json.loads(snap.policies[key])
    doc["Statement"].append(extra)
    denied = dataclasses.replace(snap, policies={**snap.policies, key: json.dumps(doc)})
    assert _keys(denied) <= _keys(snap)


@settings(max_examples=60, deadline=None)
@given(snapshots(), st.sampled_from(["b1", "b2"]))
def test_enabling_versioning_never_adds_an_irrecoverable_finding(
    snap: Snapshot, bucket: str
) -> None:
    versioned = dataclasses.replace(
        snap,
        buckets=tuple(
            dataclasses.replace(b, versioning="Enabled") if b.name == bucket else b
            for b in snap.buckets
        ),
    )
    after = {k for k in _keys(versioned) if k[0].startswith("irrecoverable")}
    before = {k for k in _keys(snap) if k[0].startswith("irrecoverable")}
    assert after <= before
    assert not {k for k in after if k[2] == bucket}


@settings(max_examples=30, deadline=None)
@given(snapshots())
def test_the_snapshot_survives_its_json(snap: Snapshot) -> None:
    again = Snapshot.from_json(json.loads(json.dumps(snap.to_json())))
    assert again == snap
    assert audit(again) == audit(snap)


@settings(max_examples=40, deadline=None)
@given(snapshots())
def test_stopping_at_a_state_that_may_do_anything_changes_no_finding(snap: Snapshot) -> None:
    """The escalation walk stops once a principal reaches a state with every permission
    (and no Deny): the report is the same as the full walk's, paths included."""
    import permgen.account.audit as engine

    fast = audit(snap).to_json()
    original = engine._principals_alike
    engine._principals_alike = lambda acct: False  # the full walk
    try:
        full = audit(snap).to_json()
    finally:
        engine._principals_alike = original
    assert fast == full


def test_the_walk_stops_at_a_state_that_may_do_anything() -> None:
    """u0 rewrites its policy (any permission, no Deny) and could then take over u1, who
    can assume r0: the walk stops at the rewrite, and the report is the full walk's."""
    import permgen.account.audit as engine

    anything = {"Effect": "Allow", "Action": ["ram:CreatePolicyVersion"], "Resource": ["*"]}
    takeover = {"Effect": "Allow", "Action": ["ram:CreateAccessKey"], "Resource": ["*"]}
    assume = {"Effect": "Allow", "Action": ["sts:AssumeRole"], "Resource": ["*"]}
    policies = {
        "Custom:p0": json.dumps({"Version": "1", "Statement": [anything, takeover]}),
        "Custom:p1": json.dumps({"Version": "1", "Statement": [assume]}),
    }
    users = (
        UserSnap("u0", "200000000000000", (), ("Custom:p0",)),
        UserSnap("u1", "200000000000001", (), ("Custom:p1",)),
    )
    trust = {
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:root"]},
            }
        ]
    }
    snap = Snapshot(
        ACCOUNT,
        users,
        (),
        (RoleSnap("r0", json.dumps(trust), ()),),
        policies,
        (BucketSnap(name="b1"),),
    )
    walked: list[str] = []
    original_tables = engine._Auditor._tables

    def tables(self: Any, s: Any) -> Any:
        walked.append(s.name)
        return original_tables(self, s)

    engine._Auditor._tables = tables  # type: ignore[method-assign]
    try:
        fast = audit(snap).to_json()
        stopped = list(walked)
        walked.clear()
        original = engine._principals_alike
        engine._principals_alike = lambda acct: False
        try:
            full = audit(snap).to_json()
        finally:
            engine._principals_alike = original
    finally:
        engine._Auditor._tables = original_tables  # type: ignore[method-assign]
    assert fast == full
    assert len(stopped) < len(walked)  # the cut walk expanded fewer states
    found = {(f["kind"], f["principal"]) for f in fast["findings"]}
    assert ("irrecoverable-delete", "user:u0") in found


PRINCIPALS = ["*", "200000000000000", "20000000000000*", f"acs:ram::{ACCOUNT}:root", "1?", "9"]


@settings(max_examples=100, deadline=None)
@given(
    st.lists(
        st.tuples(
            st.lists(st.sampled_from(PRINCIPALS), max_size=3, unique=True),
            st.booleans(),
        ),
        min_size=1,
        max_size=4,
    ),
    st.lists(st.sampled_from(["200000000000000", "201", "12", "9", ACCOUNT]), max_size=2),
    st.sampled_from(["plain", "owner", "anonymous"]),
)
def test_a_buckets_caller_mask_is_applies_to_statement_by_statement(
    statements: list[tuple[list[str], bool]], ids: list[str], kind: str
) -> None:
    """The engine's per-bucket index of who each bucket-policy statement names gives the
    statements :func:`applies_to` reads one by one, for any caller."""
    from permgen.account.audit import _Account, _Judge
    from permgen.semantics.bucket_policy import Caller, applies_to

    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "oss:GetObject",
                "Resource": "acs:oss:*:*:b1/*",
                **({"Principal": principals} if principals else {"Principal": []}),
                **({"Condition": {"Bool": {"acs:SecureTransport": "true"}}} if cond else {}),
            }
            for principals, cond in statements
        ],
    }
    snap = Snapshot(ACCOUNT, (), (), (), {}, (BucketSnap("b1", policy=json.dumps(doc)),))
    model = _Judge(_Account(snap)).model("b1")
    if kind == "anonymous":
        caller = Caller.anonymous_caller()
    else:
        caller = Caller(tuple(ids), owner=kind == "owner")
    expected = sum(bit for bit, bs in model.bucket_bits if applies_to(bs, caller))
    assert model.caller_mask(caller) == expected
    assert model.bucket_bits  # the policy parsed: the comparison is about something


@settings(max_examples=15, deadline=None)
@given(snapshots())
def test_workers_sharing_out_the_buckets_give_the_one_process_report(snap: Snapshot) -> None:
    """audit(jobs=2) forks workers that each decide every principal on a share of the
    buckets; the report (findings, paths, notes, exact) is the one-process report."""
    import permgen.account.audit as engine

    original = engine.PARALLEL_MIN_PAIRS
    engine.PARALLEL_MIN_PAIRS = 0  # fork whatever the size
    try:
        shared = audit(snap, jobs=2)
    finally:
        engine.PARALLEL_MIN_PAIRS = original
    assert shared == audit(snap)


def test_a_share_whose_worker_failed_is_audited_in_process(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import permgen._internal.parallel as parallel
    import permgen.account.audit as engine

    policy = json.dumps(
        {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}
    )
    snap = Snapshot(
        ACCOUNT,
        (UserSnap("u0", "200000000000000", (), ("Custom:p0",)),),
        (),
        (),
        {"Custom:p0": policy},
        (BucketSnap("b1"), BucketSnap("b2", versioning="Enabled"), BucketSnap("b3")),
    )
    shares: list[object] = []

    def failing(fn: object, items: list[object], *, first_here: bool = False) -> list[None]:
        shares.extend(items)
        return [None for _ in items]  # every worker failed (the first share's too)

    monkeypatch.setattr(engine, "PARALLEL_MIN_PAIRS", 0)
    monkeypatch.setattr(parallel, "fork_map", failing)
    report = audit(snap, jobs=2)
    assert len(shares) == 2  # it did share the buckets out
    assert report == audit(snap)
    assert {f.bucket for f in report.findings} == {"b1", "b2", "b3"}
