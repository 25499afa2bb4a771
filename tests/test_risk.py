"""Risk classes match what changed: a removed public-ACL guard is exposure (naming the header
value), a dropped or widened network/transport condition is condition-removed, metadata reads
are not bucket-wide-read, and catalog risks count only for requests the resources can name."""

from __future__ import annotations

import itertools
import json
import subprocess
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permgen.policy.model import Condition, Policy, Statement
from permgen.semantics import diff_policies
from permgen.semantics.diff import AccessItem
from tests.conftest import run_cli

OBJ = "acs:oss:*:*:b/up/*"
GUARD = Statement(
    "Deny",
    ("oss:PutObject",),
    (OBJ,),
    (Condition("StringEquals", "oss:x-oss-object-acl", ("public-read", "public-read-write")),),
)
HTTPS = Condition("Bool", "acs:SecureTransport", ("true",))
OFFICE = Condition("IpAddress", "acs:SourceIp", ("203.0.113.0/24",))
VPC = Condition("StringEquals", "acs:SourceVpc", ("vpc-corp1",))


def _allow(actions: tuple[str, ...], resources: tuple[str, ...], *conds: Condition) -> Statement:
    return Statement("Allow", actions, resources, tuple(conds))


def _policy(*statements: Statement) -> Policy:
    return Policy(tuple(statements))


def _only(items: tuple[AccessItem, ...]) -> AccessItem:
    assert len(items) == 1, items
    return items[0]


def _write(tmp_path: Path, name: str, policy: Policy) -> str:
    path = tmp_path / name
    path.write_text(json.dumps(policy.to_json()))
    return str(path)


# --------------------------------------------------------------------------- exposure


def test_removing_the_public_acl_guard_is_exposure_naming_the_values(tmp_path: Path) -> None:
    writer = _allow(("oss:PutObject",), (OBJ,))
    old, new = _policy(writer, GUARD), _policy(writer)
    item = _only(diff_policies([old], [new]).new_access)
    assert "exposure" in item.risk
    (note,) = item.risk_notes
    assert note.risk == "exposure"
    assert note.text == "uploads may now set x-oss-object-acl: public-read or public-read-write"
    assert note.request.context["oss:x-oss-object-acl"] in ("public-read", "public-read-write")

    o, n = _write(tmp_path, "old.json", old), _write(tmp_path, "new.json", new)
    text = run_cli("diff", o, n).output
    assert "exposure: uploads may now set x-oss-object-acl: public-read" in text
    doc = json.loads(run_cli("diff", o, n, "--format", "json").output)
    (entry,) = doc["new_access"]
    assert "exposure" in entry["risk"]
    assert entry["risk_notes"][0]["risk"] == "exposure"
    assert "x-oss-object-acl: public-read" in entry["risk_notes"][0]["text"]
    assert entry["risk_notes"][0]["request"]["action"] == "oss:PutObject"


def test_narrowing_the_guard_names_the_value_that_became_possible() -> None:
    writer = _allow(("oss:PutObject",), (OBJ,))
    narrow = Statement(
        "Deny",
        ("oss:PutObject",),
        (OBJ,),
        (Condition("StringEquals", "oss:x-oss-object-acl", ("public-read",)),),
    )
    item = _only(diff_policies([_policy(writer, GUARD)], [_policy(writer, narrow)]).new_access)
    assert "exposure" in item.risk
    assert item.risk_notes[0].text == "uploads may now set x-oss-object-acl: public-read-write"


def test_a_guarded_upload_grant_is_not_exposure_and_an_unguarded_one_is() -> None:
    empty = _policy()
    writer = _allow(("oss:PutObject",), (OBJ,))
    guarded = _only(diff_policies([empty], [_policy(writer, GUARD)]).new_access)
    assert guarded.risk == ("destructive",) and guarded.risk_notes == ()
    bare = _only(diff_policies([empty], [_policy(writer)]).new_access)
    assert bare.risk == ("destructive", "exposure")


def test_a_bucket_acl_guard_removal_names_x_oss_acl() -> None:
    creator = _allow(("oss:PutBucket",), ("acs:oss:*:*:b",))
    guard = Statement(
        "Deny",
        ("oss:PutBucket",),
        ("acs:oss:*:*:b",),
        (Condition("StringLike", "oss:x-oss-acl", ("public*",)),),
    )
    item = _only(diff_policies([_policy(creator, guard)], [_policy(creator)]).new_access)
    assert "exposure" in item.risk
    assert (
        item.risk_notes[0].text
        == "new buckets may now set x-oss-acl: public-read or public-read-write"
    )


# --------------------------------------------------------------------------- condition-removed


def test_dropping_https_is_condition_removed(tmp_path: Path) -> None:
    old = _policy(_allow(("oss:GetObject",), (OBJ,), HTTPS, OFFICE))
    new = _policy(_allow(("oss:GetObject",), (OBJ,), OFFICE))
    item = _only(diff_policies([old], [new]).new_access)
    assert item.risk == ("condition-removed",)
    assert item.risk_notes[0].text == "now allowed without acs:SecureTransport=true"
    assert item.risk_notes[0].request == item.witness

    o, n = _write(tmp_path, "old.json", old), _write(tmp_path, "new.json", new)
    assert "condition-removed: now allowed without acs:SecureTransport=true" in (
        run_cli("diff", o, n).output
    )
    doc = json.loads(run_cli("diff", o, n, "--format", "json").output)
    assert doc["new_access"][0]["risk"] == ["condition-removed"]
    assert doc["new_access"][0]["risk_notes"][0]["risk"] == "condition-removed"
    md = run_cli("diff", o, n, "--format", "markdown").output
    assert (
        "| condition-removed<br>condition-removed: now allowed without acs:SecureTransport=true |"
        in md
    )


def test_dropping_two_conditions_names_both() -> None:
    old = _policy(_allow(("oss:GetObject",), (OBJ,), HTTPS, OFFICE))
    new = _policy(_allow(("oss:GetObject",), (OBJ,)))
    item = _only(diff_policies([old], [new]).new_access)
    assert item.risk_notes[0].text == (
        "now allowed without acs:SecureTransport=true and without acs:SourceIp"
        " (old required: IpAddress acs:SourceIp [203.0.113.0/24])"
    )


def test_widening_a_source_ip_range_is_condition_removed() -> None:
    wide = Condition("IpAddress", "acs:SourceIp", ("203.0.0.0/16",))
    old = _policy(_allow(("oss:GetObject",), (OBJ,), OFFICE))
    new = _policy(_allow(("oss:GetObject",), (OBJ,), wide))
    item = _only(diff_policies([old], [new]).new_access)
    assert item.risk == ("condition-removed",)
    ip = item.witness.context["acs:SourceIp"]
    assert item.risk_notes[0].text == (
        f"now allowed with acs:SourceIp={ip} (old required: IpAddress acs:SourceIp [203.0.113.0/24])"
    )


def test_removing_a_network_deny_is_condition_removed() -> None:
    reader = _allow(("oss:GetObject",), (OBJ,))
    outside = Statement(
        "Deny", ("oss:*",), ("*",), (Condition("NotIpAddress", "acs:SourceIp", ("10.0.0.0/8",)),)
    )
    item = _only(diff_policies([_policy(reader, outside)], [_policy(reader)]).new_access)
    assert item.risk == ("condition-removed",)
    assert "old denied it: NotIpAddress acs:SourceIp [10.0.0.0/8]" in item.risk_notes[0].text


def test_a_dropped_condition_is_found_beside_a_widened_resource() -> None:
    old = _policy(_allow(("oss:GetObject",), ("acs:oss:*:*:b/a/*",), HTTPS))
    new = _policy(_allow(("oss:GetObject",), ("acs:oss:*:*:b/*",)))
    item = _only(diff_policies([old], [new]).new_access)
    assert "condition-removed" in item.risk and "bucket-wide-read" in item.risk
    (note,) = item.risk_notes
    assert note.text == "now allowed without acs:SecureTransport=true"
    assert note.request.resource.endswith(":b/a/example")
    assert "acs:SecureTransport" not in note.request.context


def test_new_resources_under_the_same_condition_are_not_condition_removed() -> None:
    old = _policy(_allow(("oss:GetObject",), ("acs:oss:*:*:b/a/*",), HTTPS))
    new = _policy(_allow(("oss:GetObject",), ("acs:oss:*:*:b/a/*", "acs:oss:*:*:b/c/*"), HTTPS))
    item = _only(diff_policies([old], [new]).new_access)
    assert "condition-removed" not in item.risk and item.risk_notes == ()


# --------------------------------------------------------------------------- catalog risks


def test_bucket_metadata_reads_are_not_bucket_wide_read() -> None:
    meta = _allow(
        ("oss:GetBucketInfo", "oss:GetBucketAcl", "oss:GetBucketLocation"), ("acs:oss:*:*:b",)
    )
    item = _only(diff_policies([_policy()], [_policy(meta)]).new_access)
    assert item.risk == ()
    objmeta = _allow(("oss:GetObjectAcl", "oss:GetObjectTagging"), ("acs:oss:*:*:b/*",))
    assert _only(diff_policies([_policy()], [_policy(objmeta)]).new_access).risk == ()


def test_data_reads_of_a_whole_bucket_are_bucket_wide_read() -> None:
    cases = {
        ("oss:GetObject", "acs:oss:*:*:b/*"): True,
        ("oss:GetObject", "acs:oss:*:*:*"): True,
        ("oss:GetObject", "acs:oss:*:*:b/a/*"): False,
        ("oss:ListObjects", "acs:oss:*:*:b"): True,
        ("oss:GetObject", "acs:oss:*:*:b"): False,  # no object is named by a bucket ARN
    }
    for (action, resource), wide in cases.items():
        item = _only(
            diff_policies([_policy()], [_policy(_allow((action,), (resource,)))]).new_access
        )
        assert ("bucket-wide-read" in item.risk) is wide, (action, resource, item.risk)
    limited = _allow(
        ("oss:ListObjects",), ("acs:oss:*:*:b",), Condition("StringLike", "oss:Prefix", ("a/*",))
    )
    assert (
        "bucket-wide-read"
        not in _only(diff_policies([_policy()], [_policy(limited)]).new_access).risk
    )


def test_adding_one_object_next_to_a_whole_bucket_grant_is_not_bucket_wide_read() -> None:
    old = _policy(_allow(("oss:GetObject",), ("acs:oss:*:*:b/*",)))
    new = _policy(_allow(("oss:GetObject",), ("acs:oss:*:*:b/*", "acs:oss:*:*:c/x")))
    assert _only(diff_policies([old], [new]).new_access).risk == ()


def test_oss_star_on_objects_is_not_permissions_management_but_on_a_bucket_it_is() -> None:
    on_objects = _only(
        diff_policies([_policy()], [_policy(_allow(("oss:*",), ("acs:oss:*:*:b/*",)))]).new_access
    )
    assert "permissions-management" not in on_objects.risk
    assert {"destructive", "exposure", "wildcard-scope"} <= set(on_objects.risk)
    on_bucket = _only(
        diff_policies([_policy()], [_policy(_allow(("oss:*",), ("acs:oss:*:*:b",)))]).new_access
    )
    assert "permissions-management" in on_bucket.risk
    ram = _only(
        diff_policies([_policy()], [_policy(_allow(("ram:CreateUser",), ("*",)))]).new_access
    )
    assert "permissions-management" in ram.risk and "bucket-wide-read" not in ram.risk


def test_lint_does_not_say_a_ram_grant_covers_every_bucket(tmp_path: Path) -> None:
    path = _write(tmp_path, "ram.json", _policy(_allow(("ram:GetUser", "sts:AssumeRole"), ("*",))))
    out = run_cli("lint", path).output
    assert "PG105" in out and "covers every resource of ram, sts" in out
    assert "bucket" not in out
    oss = _write(tmp_path, "oss.json", _policy(_allow(("oss:GetObject",), ("*",))))
    assert "covers every bucket and object" in run_cli("lint", oss).output


# --------------------------------------------------------------------------- gates


def test_diff_fails_on_condition_removed(tmp_path: Path) -> None:
    o = _write(tmp_path, "old.json", _policy(_allow(("oss:GetObject",), (OBJ,), VPC)))
    n = _write(tmp_path, "new.json", _policy(_allow(("oss:GetObject",), (OBJ,))))
    result = run_cli("diff", o, n, "--fail-on-risk", "condition-removed")
    assert result.exit_code == 3
    assert "new access with risk condition-removed" in result.output
    assert run_cli("diff", o, n, "--fail-on-risk", "exposure,destructive").exit_code == 0
    assert run_cli("diff", n, o, "--fail-on-risk", "condition-removed").exit_code == 0
    bad = run_cli("diff", o, n, "--fail-on-risk", "nonsense")
    assert bad.exit_code == 2 and "unknown risk class 'nonsense'" in bad.output
    assert "condition-removed" in "".join(run_cli("diff", "--help").output.split())


SPEC = """\
version: 1
defaults:
  account: "1234567890123456"
  conditions: {{{conditions}}}
roles:
  reader:
    template: reader
    grants: [{{bucket: corp-data, prefixes: ["exports/"]}}]
"""


def test_review_fails_on_condition_removed(tmp_path: Path) -> None:
    def git(*args: str) -> None:
        subprocess.run(["git", *args], cwd=tmp_path, check=True, capture_output=True)

    git("init", "-q", "-b", "main")
    git("config", "user.email", "t@example.invalid")
    git("config", "user.name", "t")
    spec = tmp_path / "roles.yaml"
    spec.write_text(SPEC.format(conditions="secure_transport: true, source_vpc: [vpc-corp1]"))
    git("add", "roles.yaml")
    git("commit", "-q", "-m", "base")
    spec.write_text(SPEC.format(conditions="source_vpc: [vpc-corp1]"))

    def review(*args: str) -> tuple[int, str]:
        result = run_cli("review", str(spec), "--base", "main", *args)
        return result.exit_code, result.output

    code, out = review("--fail-on-risk", "condition-removed")
    assert code == 3, out
    assert "now allowed without acs:SecureTransport=true" in out
    assert review("--fail-on-risk", "exposure,bucket-wide-read")[0] == 0
    doc = json.loads(review("--format", "json")[1])
    assert doc["summary"]["risks"] == {"condition-removed": len(doc["roles"][0]["new_access"])}


# --------------------------------------------------------------------------- properties

ACTIONS = ["oss:GetObject", "oss:PutObject", "oss:ListObjects", "oss:Get*", "oss:*", "ram:GetUser"]
RESOURCES = ["acs:oss:*:*:b/*", "acs:oss:*:*:b", "acs:oss:*:*:b/a/*", "acs:oss:*:*:c/*", "*"]
OTHER_CONDITIONS = [
    Condition("StringLike", "oss:Prefix", ("a/*",)),
    Condition("StringEquals", "oss:x-oss-object-acl", ("private",)),
]
NETWORK = [
    (HTTPS,),
    (OFFICE,),
    (VPC,),
    (HTTPS, OFFICE),
    (Condition("StringLike", "acs:SourceVpc", ("vpc-*",)), HTTPS),
    (Condition("IpAddress", "acs:SourceIp", ("10.0.0.0/8", "192.168.1.7")),),
]

_stmt = st.builds(
    lambda effect, acts, ress, conds: Statement(effect, tuple(acts), tuple(ress), tuple(conds)),
    st.sampled_from(["Allow", "Allow", "Allow", "Deny"]),
    st.lists(st.sampled_from(ACTIONS), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2, unique=True),
    st.lists(st.sampled_from(OTHER_CONDITIONS), max_size=1),
)
_statements = st.lists(_stmt, min_size=1, max_size=4)


def _with_network(statements: list[Statement], network: tuple[Condition, ...]) -> Policy:
    return Policy(
        tuple(
            Statement(s.effect, s.actions, s.resources, s.conditions + network)
            if s.effect == "Allow"
            else s
            for s in statements
        )
    )


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_statements, st.sampled_from(NETWORK))
def test_network_conditions_added_never_grant_and_removed_are_condition_removed(
    statements: list[Statement], network: tuple[Condition, ...]
) -> None:
    plain, guarded = Policy(tuple(statements)), _with_network(statements, network)
    assert diff_policies([plain], [guarded]).new_access == ()
    result = diff_policies([guarded], [plain])
    for item in result.new_access:
        assert "condition-removed" in item.risk, item
        note = next(n for n in item.risk_notes if n.risk == "condition-removed")
        assert note.text.startswith("now allowed with")
        keys = {c.key for c in network}
        assert any(k in note.text for k in keys), note.text


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.sampled_from(RESOURCES), min_size=1, max_size=2, unique=True))
def test_removing_the_guard_is_always_exposure(resources: list[str]) -> None:
    writer = _allow(("oss:PutObject", "oss:GetObject"), tuple(resources))
    guard = Statement("Deny", ("oss:PutObject",), ("*",), GUARD.conditions)
    result = diff_policies([_policy(writer, guard)], [_policy(writer)])
    if not any(r == "*" or "/" in r for r in resources):
        return  # PutObject on bucket ARNs only: the items are not uploads
    assert result.new_access
    for item in result.new_access:
        assert "exposure" in item.risk, item
        assert any(
            n.text.startswith("uploads may now set x-oss-object-acl: public-read")
            for n in item.risk_notes
        )


def test_every_risk_class_is_documented_where_gates_are_configured() -> None:
    from permgen.policy.catalog import RISK_CLASSES
    from tests.conftest import ROOT

    action = (ROOT / "action.yml").read_text()
    line = next(s for s in action.splitlines() if "Comma-separated risk classes" in s)
    semantics = (ROOT / "docs" / "semantics.md").read_text()
    review_doc = (ROOT / "docs" / "commands" / "review.md").read_text()
    for risk in RISK_CLASSES:
        assert risk in line, risk
        assert f"| {risk} |" in semantics, risk
        assert f"`{risk}`" in review_doc, risk


_SHAPED = ["".join(chars) for n in range(1, 9) for chars in itertools.product("a/", repeat=n)]


@settings(max_examples=200, deadline=None)
@given(st.text(alphabet="a/*?", min_size=1, max_size=5), st.booleans())
def test_which_levels_a_pattern_can_name_agrees_with_brute_force(
    rest: str, object_level: bool
) -> None:
    from permgen.policy.wildcard import match
    from permgen.semantics.risk import _reaches

    def shaped(s: str) -> bool:
        bucket, slash, key = s.partition("/")
        return bool(bucket) and (bool(slash and key) if object_level else not slash)

    expected = any(shaped(s) and match(rest, s) for s in _SHAPED)
    assert _reaches(rest, object_level=object_level) is expected
