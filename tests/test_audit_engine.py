"""The audit engine over hand-made snapshots (pure, no account): what keeps a copy, each
escalation edge, regions, and the bounds. The account path is tested over the emulator in
tests/emulator/test_audit.py."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from permgen.account.audit import (
    AuditReport,
    BucketSnap,
    Finding,
    GroupSnap,
    RoleSnap,
    Snapshot,
    UserSnap,
    audit,
    load_snapshot,
    save_snapshot,
)
from permgen.account.audit_output import to_json, to_json_bytes
from permgen.account.oss import OverwriteRule, ReplicationRule, WormConfig
from permgen.errors import InputError
from permgen.semantics.evaluate import Request

ACCOUNT = "1234567890123456"


def _doc(*statements: dict[str, Any]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


def _allow(action: str | list[str], resource: str | list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": action, "Resource": resource, **extra}


def _snap(
    policies: dict[str, str],
    users: list[UserSnap],
    buckets: list[BucketSnap],
    roles: list[RoleSnap] | None = None,
    groups: list[GroupSnap] | None = None,
) -> Snapshot:
    return Snapshot(
        ACCOUNT, tuple(users), tuple(groups or ()), tuple(roles or ()), policies, tuple(buckets)
    )


def _kinds(snap: Snapshot, principal: str, bucket: str | None) -> set[str]:
    return {f.kind for f in audit(snap).findings if (f.principal, f.bucket) == (principal, bucket)}


DELETER = {"Custom:del": _doc(_allow("oss:DeleteObject", "acs:oss:*:*:data/*"))}
ETL = UserSnap("etl", "201", (), ("Custom:del",))


def test_what_keeps_a_copy_removes_irrecoverable_delete() -> None:
    plain = BucketSnap("data", region="cn-hangzhou")
    assert "irrecoverable-delete" in _kinds(_snap(DELETER, [ETL], [plain]), "user:etl", "data")
    keeps = [
        BucketSnap("data", versioning="Enabled"),
        BucketSnap("data", worm=WormConfig("w1", "Locked", 30)),
    ]
    for b in keeps:
        assert "irrecoverable-delete" not in _kinds(_snap(DELETER, [ETL], [b]), "user:etl", "data")
    # suspended versioning and an unlocked retention policy keep nothing for sure
    for b in (
        BucketSnap("data", versioning="Suspended"),
        BucketSnap("data", worm=WormConfig("w1", "InProgress", 30)),
    ):
        assert "irrecoverable-delete" in _kinds(_snap(DELETER, [ETL], [b]), "user:etl", "data")


def test_replication_keeps_a_copy_only_where_the_principal_cannot_delete() -> None:
    put_only = ReplicationRule("backup", "oss-cn-beijing", "r1", "PUT")
    src = BucketSnap("data", replication=(put_only,))
    safe = _snap(DELETER, [ETL], [src, BucketSnap("backup")])
    assert "irrecoverable-delete" not in _kinds(safe, "user:etl", "data")
    both = {"Custom:del": _doc(_allow("oss:DeleteObject", "acs:oss:*:*:*"))}
    reach = _snap(both, [ETL], [src, BucketSnap("backup")])
    assert "irrecoverable-delete" in _kinds(reach, "user:etl", "data")
    # a rule that replicates deletes too ("ALL") keeps nothing
    all_rule = BucketSnap("data", replication=(ReplicationRule("backup", "x", "r1", "ALL"),))
    assert "irrecoverable-delete" in _kinds(
        _snap(DELETER, [ETL], [all_rule, BucketSnap("backup")]), "user:etl", "data"
    )


def test_overwrite_protection_matches_the_principal_and_the_key() -> None:
    writer = {"Custom:w": _doc(_allow("oss:PutObject", "acs:oss:*:*:data/logs/*"))}
    user = UserSnap("w", "202", (), ("Custom:w",))
    cases = {
        OverwriteRule(prefix="logs/"): False,
        OverwriteRule(prefix="logs/", principals=("202",)): False,
        OverwriteRule(prefix="logs/", principals=("999",)): True,
        OverwriteRule(prefix="other/"): True,
    }
    for rule, found in cases.items():
        snap = _snap(writer, [user], [BucketSnap("data", overwrite=(rule,))])
        assert ("irrecoverable-overwrite" in _kinds(snap, "user:w", "data")) is found, rule


def test_a_deny_for_the_bucket_region_removes_the_finding_and_another_region_does_not() -> None:
    for region, found in (("cn-hangzhou", False), ("cn-beijing", True)):
        policies = {
            "Custom:del": _doc(
                _allow("oss:DeleteObject", "acs:oss:*:*:data/*"),
                {
                    "Effect": "Deny",
                    "Action": "oss:DeleteObject",
                    "Resource": f"acs:oss:{region}:*:data/*",
                },
            )
        }
        snap = _snap(policies, [ETL], [BucketSnap("data", region="cn-hangzhou")])
        assert ("irrecoverable-delete" in _kinds(snap, "user:etl", "data")) is found


def test_version_purge_needs_a_versioned_bucket_and_no_locked_retention() -> None:
    purge = {"Custom:p": _doc(_allow("oss:DeleteObjectVersion", "acs:oss:*:*:data/*"))}
    user = UserSnap("p", "203", (), ("Custom:p",))
    cases = [
        (BucketSnap("data", versioning="Enabled"), True),
        (BucketSnap("data"), False),
        (BucketSnap("data", versioning="Enabled", worm=WormConfig("w", "Locked", 1)), False),
    ]
    for b, found in cases:
        assert ("version-purge" in _kinds(_snap(purge, [user], [b]), "user:p", "data")) is found


def _escalator(action: str, resource: str) -> dict[str, str]:
    return {
        "Custom:esc": _doc(_allow(action, resource)),
        "Custom:del": _doc(_allow("oss:DeleteObject", "acs:oss:*:*:data/*")),
        "System:AliyunOSSReadOnlyAccess": _doc(_allow(["oss:Get*"], "*")),
    }


@pytest.mark.parametrize(
    ("action", "resource", "step"),
    [
        ("ram:AttachPolicyToUser", f"acs:ram:*:{ACCOUNT}:user/climber", "ram:AttachPolicyToUser"),
        ("ram:CreatePolicyVersion", f"acs:ram:*:{ACCOUNT}:policy/esc", "ram:CreatePolicyVersion"),
        ("ram:AddUserToGroup", f"acs:ram:*:{ACCOUNT}:group/deleters", "ram:AddUserToGroup"),
        ("ram:CreateAccessKey", f"acs:ram:*:{ACCOUNT}:user/etl", "ram:CreateAccessKey"),
        ("ram:CreateLoginProfile", f"acs:ram:*:{ACCOUNT}:user/etl", "ram:CreateLoginProfile"),
    ],
)
def test_each_escalation_edge_reaches_the_destructive_path(
    action: str, resource: str, step: str
) -> None:
    climber = UserSnap("climber", "204", (), ("Custom:esc",))
    etl = UserSnap("etl", "205", (), ("Custom:del",))
    group = GroupSnap("deleters", ("Custom:del",))
    snap = _snap(_escalator(action, resource), [climber, etl], [BucketSnap("data")], groups=[group])
    report = audit(snap)
    esc = [f for f in report.findings if (f.kind, f.principal) == ("escalation", "user:climber")]
    assert esc and esc[0].witness.action == step and esc[0].bucket is None
    assert esc[0].witness.resource == resource
    reached = [
        f
        for f in report.findings
        if (f.kind, f.principal, f.bucket) == ("irrecoverable-delete", "user:climber", "data")
    ]
    assert reached and reached[0].path[1].startswith(step)
    assert "take away the first step" in reached[0].fix


def test_a_takeover_granted_on_every_resource_is_decided_per_user_when_a_deny_names_one() -> None:
    """Statements that all name every resource decide alike for every user (decided once);
    a Deny on one user makes them differ, and that user is not taken over."""
    policies = {
        "Custom:esc": _doc(_allow("ram:CreateAccessKey", "*")),
        "Custom:guard": _doc(
            {
                "Effect": "Deny",
                "Action": "ram:CreateAccessKey",
                "Resource": f"acs:ram:*:{ACCOUNT}:user/etl",
            }
        ),
        "Custom:del": _doc(_allow("oss:DeleteObject", "acs:oss:*:*:data/*")),
    }
    etl = UserSnap("etl", "1", (), ("Custom:del",))
    ops = UserSnap("ops", "2", (), ("Custom:del",))
    free = UserSnap("free", "3", (), ("Custom:esc",))
    guarded = UserSnap("guarded", "4", (), ("Custom:esc", "Custom:guard"))
    snap = _snap(policies, [etl, ops, free, guarded], [BucketSnap("data")])
    paths = {f.principal: f.path for f in audit(snap).findings if f.kind == "irrecoverable-delete"}
    # the first user in name order it can take over
    assert paths["user:free"][1] == "ram:CreateAccessKey for user:etl"
    assert paths["user:guarded"][1] == "ram:CreateAccessKey for user:ops"


def test_a_principal_that_may_attach_any_policy_assumes_the_roles_some_policy_allows() -> None:
    """Attaching any one policy of the account reaches the roles that some policy allows it
    to assume (and whose trust names it); a role no policy allows stays out of reach. Here
    only the role's sessions may delete (the bucket policy names them), so the finding's
    path must go through the role."""
    trust = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:root"]},
                }
            ]
        }
    )
    bucket_policy = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "oss:DeleteObject",
                    "Principal": [f"arn:sts::{ACCOUNT}:assumed-role/cleaner/*"],
                    "Resource": "acs:oss:*:*:data/*",
                }
            ],
        }
    )
    policies = {
        "Custom:attach": _doc(_allow("ram:AttachPolicyToUser", f"acs:ram:*:{ACCOUNT}:user/*")),
        "Custom:assume": _doc(_allow("sts:AssumeRole", f"acs:ram:*:{ACCOUNT}:role/cleaner")),
    }
    roles = [RoleSnap("cleaner", trust, ()), RoleSnap("other", trust, ())]
    users = [UserSnap("climber", "1", (), ("Custom:attach",))]
    buckets = [BucketSnap("data", policy=bucket_policy)]

    def deletes(policies: dict[str, str]) -> list[tuple[str, ...]]:
        return [
            f.path
            for f in audit(_snap(policies, users, buckets, roles=roles)).findings
            if (f.kind, f.principal, f.bucket) == ("irrecoverable-delete", "user:climber", "data")
        ]

    [path] = deletes(policies)
    assert path[1] == "ram:AttachPolicyToUser on user:climber (any policy in the account)"
    assert path[2] == "sts:AssumeRole role:cleaner (its trust names user:climber)"
    assert deletes({"Custom:attach": policies["Custom:attach"]}) == []


def test_no_new_version_of_a_system_policy() -> None:
    policies = _escalator("ram:CreatePolicyVersion", "*")
    user = UserSnap("u", "206", (), ("System:AliyunOSSReadOnlyAccess",))
    # only a system policy attached: CreatePolicyVersion cannot rewrite it
    policies["System:AliyunOSSReadOnlyAccess"] = _doc(
        _allow(["oss:Get*", "ram:CreatePolicyVersion"], "*")
    )
    assert audit(_snap(policies, [user], [BucketSnap("data")])).findings == ()


def test_role_assumption_needs_trust_and_permission_and_update_role_rewrites_trust() -> None:
    def trust(*names: str) -> str:
        return json.dumps(
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"RAM": list(names)},
                    }
                ]
            }
        )

    role_arn = f"acs:ram:*:{ACCOUNT}:role/cleaner"
    policies = {
        "Custom:assume": _doc(_allow("sts:AssumeRole", role_arn)),
        "Custom:assume-update": _doc(_allow(["sts:AssumeRole", "ram:UpdateRole"], role_arn)),
        "Custom:del": _doc(_allow("oss:DeleteObject", "acs:oss:*:*:data/*")),
    }
    users = [
        UserSnap("dev", "1", (), ("Custom:assume",)),
        UserSnap("ops", "2", (), ("Custom:assume",)),
        UserSnap("admin", "3", (), ("Custom:assume-update",)),
        UserSnap("nobody", "4"),
    ]
    role = RoleSnap(
        "cleaner",
        trust(f"acs:ram::{ACCOUNT}:user/dev", f"acs:ram::{ACCOUNT}:user/nobody"),
        ("Custom:del",),
    )
    snap = _snap(policies, users, [BucketSnap("data")], roles=[role])
    assert "irrecoverable-delete" in _kinds(snap, "user:dev", "data")
    assert "irrecoverable-delete" not in _kinds(snap, "user:ops", "data")  # not trusted
    assert "irrecoverable-delete" not in _kinds(snap, "user:nobody", "data")  # no permission
    assert "irrecoverable-delete" in _kinds(snap, "user:admin", "data")  # rewrites the trust
    # the account's root in the trust policy lets any principal with permission assume it
    rooted = RoleSnap("cleaner", trust(f"acs:ram::{ACCOUNT}:root"), ("Custom:del",))
    snap = _snap(policies, users, [BucketSnap("data")], roles=[rooted])
    assert "irrecoverable-delete" in _kinds(snap, "user:ops", "data")


def test_assume_role_paths_name_each_principal_whose_trust_names_it() -> None:
    """Principals with the same moves share one table of their children's findings; the
    step that names the principal ("its trust names user:u1") is filled in per principal,
    also when one name begins another (user:u1, user:u10) or holds the step's own words."""
    names = ["u1", "u10", "u1)x", "x (its trust names u1)"]
    role_arn = f"acs:ram:*:{ACCOUNT}:role/cleaner"
    trust = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "sts:AssumeRole",
                    "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:user/{n}" for n in names]},
                }
            ]
        }
    )
    policies = {
        "Custom:assume": _doc(_allow("sts:AssumeRole", role_arn)),
        "Custom:del": _doc(_allow("oss:DeleteObject", "acs:oss:*:*:data/*")),
    }
    users = [UserSnap(n, str(i), (), ("Custom:assume",)) for i, n in enumerate(names)]
    snap = _snap(
        policies, users, [BucketSnap("data")], roles=[RoleSnap("cleaner", trust, ("Custom:del",))]
    )
    paths = {f.principal: f.path for f in audit(snap).findings if f.kind == "irrecoverable-delete"}
    for n in names:
        assert paths[f"user:{n}"][:2] == (
            f"user:{n}",
            f"sts:AssumeRole role:cleaner (its trust names user:{n})",
        )


def test_a_trust_deny_naming_the_principal_wins_and_a_trust_that_is_not_json_trusts_nobody() -> (
    None
):
    role_arn = f"acs:ram:*:{ACCOUNT}:role/cleaner"
    policies = {
        "Custom:assume": _doc(_allow("sts:AssumeRole", role_arn)),
        "Custom:del": _doc(_allow("oss:DeleteObject", "acs:oss:*:*:data/*")),
    }
    users = [
        UserSnap("dev", "1", (), ("Custom:assume",)),
        UserSnap("ops", "2", (), ("Custom:assume",)),
    ]
    trust = json.dumps(
        {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": ["sts:AssumeRole"],
                    "Principal": {"RAM": f"acs:ram::{ACCOUNT}:root"},
                },
                {
                    "Effect": "Deny",
                    "Action": "sts:*",
                    "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:user/dev"]},
                },
            ]
        }
    )
    snap = _snap(
        policies, users, [BucketSnap("data")], roles=[RoleSnap("cleaner", trust, ("Custom:del",))]
    )
    assert "irrecoverable-delete" in _kinds(snap, "user:ops", "data")
    assert "irrecoverable-delete" not in _kinds(snap, "user:dev", "data")
    broken = _snap(
        policies,
        users,
        [BucketSnap("data")],
        roles=[RoleSnap("cleaner", "{not json", ("Custom:del",))],
    )
    assert "irrecoverable-delete" not in _kinds(broken, "user:ops", "data")


def test_a_policy_that_does_not_parse_is_a_note_not_a_crash() -> None:
    snap = _snap({"Custom:bad": "{not json"}, [UserSnap("u", "1", (), ("Custom:bad",))], [])
    report = audit(snap)
    assert report.findings == ()
    assert report.notes and "Custom:bad does not parse" in report.notes[0]
    assert report.exact is False  # what it would have granted is not known


def test_a_condition_constant_its_operator_cannot_compare_is_a_note_not_a_crash() -> None:
    """RAM refuses such a policy; a snapshot may still hold one (edited by hand, or hostile).
    The policy (or bucket policy) is left out with a note naming where, and exact is false."""
    bad = {"DateLessThan": {"acs:CurrentTime": "garbage"}}
    policies = {
        "Custom:bad": _doc(_allow("oss:DeleteObject", "acs:oss:*:*:data/*", Condition=bad)),
        **DELETER,
    }
    bucket_policy = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Deny",
                    "Action": "oss:DeleteObject",
                    "Principal": ["*"],
                    "Resource": "acs:oss:*:*:data/*",
                    "Condition": {"IpAddress": {"acs:SourceIp": "not-an-ip"}},
                }
            ],
        }
    )
    users = [UserSnap("u", "1", (), ("Custom:bad",)), ETL]
    report = audit(_snap(policies, users, [BucketSnap("data", policy=bucket_policy)]))
    assert report.exact is False
    assert any("Custom:bad does not parse" in n and "garbage" in n for n in report.notes)
    assert any("bucket policy of data does not parse" in n for n in report.notes)
    # the rest is audited: the good policy's delete is found, the bad one's is not claimed
    kinds = {(f.kind, f.principal) for f in report.findings}
    assert ("irrecoverable-delete", "user:etl") in kinds
    assert ("irrecoverable-delete", "user:u") not in kinds


def test_save_and_load(tmp_path: Path) -> None:
    snap = _snap(DELETER, [ETL], [BucketSnap("data", region="cn-hangzhou")])
    path = tmp_path / "snap.json"
    save_snapshot(snap, str(path))
    assert load_snapshot(str(path)) == snap
    with pytest.raises(InputError, match="cannot read the snapshot"):
        load_snapshot(str(tmp_path / "missing.json"))
    path.write_bytes(b"\xff\xfe")
    with pytest.raises(InputError, match="not UTF-8"):
        load_snapshot(str(path))


def _session_policy(principal: str) -> str:
    return json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": [principal],
                    "Action": ["oss:DeleteObject"],
                    "Resource": [f"acs:oss:*:{ACCOUNT}:data/*"],
                }
            ],
        }
    )


def test_a_bucket_policy_for_one_session_of_a_role_is_any_session_of_it() -> None:
    """Whoever assumes the role picks the session name: a grant to etl's session "app" is
    a grant to role:etl (and reported through the bucket policy)."""
    bucket = BucketSnap(
        name="data", policy=_session_policy(f"arn:sts::{ACCOUNT}:assumed-role/etl/app")
    )
    snap = _snap({}, [], [bucket], roles=[RoleSnap("etl", "{}", ())])
    (f,) = [
        f
        for f in audit(snap).findings
        if (f.kind, f.principal) == ("irrecoverable-delete", "role:etl")
    ]
    assert f.path == ("role:etl", "bucket-policy data Statement[0]")


def test_another_accounts_role_session_in_a_bucket_policy_is_cross_account() -> None:
    other = "9999999999999999"
    bucket = BucketSnap(
        name="data", policy=_session_policy(f"arn:sts::{other}:assumed-role/ext/app")
    )
    found = {(f.kind, f.principal) for f in audit(_snap({}, [], [bucket])).findings}
    assert ("cross-account", f"account:{other}") in found


@pytest.mark.parametrize("name", ["etl", "étl", "\ud800"], ids=["ascii", "accent", "surrogate"])
def test_the_json_report_is_the_standard_librarys_bytes(name: str) -> None:
    """--format json is written by orjson when that gives json.dumps(indent=2)'s bytes, and
    by json otherwise (non-ASCII, which json escapes; a lone surrogate, which orjson refuses)."""
    witness = Request("ram:AttachPolicyToUser", f"acs:ram:*:{ACCOUNT}:user/{name}")
    finding = Finding(
        "escalation", f"user:{name}", None, (), (f"user:{name}", "step"), witness, "why", "fix"
    )
    report = AuditReport(ACCOUNT, (finding,), (f"a note on {name}",), exact=False)
    expected = json.dumps(report.to_json(), indent=2) + "\n"
    assert to_json_bytes(report) == expected.encode()
    assert to_json(report) == expected
