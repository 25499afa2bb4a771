"""plan and apply: the pure plan, and apply through the real SDK against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from permgen.account.sdk import SdkRamClient
from permgen.account.sync import (
    MARKER,
    Current,
    Desired,
    apply,
    desired_state,
    plan,
    read_current,
    read_orphans,
)
from permgen.account.types import AccessKey, ClientConfig, Principal, Secret
from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET, Backend, Emulator
from permgen.errors import CloudError
from permgen.spec.compile import compile_file
from tests.conftest import EXAMPLES, ROOT, run_cli

DOC = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": ["oss:GetObject"], "Resource": ["acs:oss:*:*:b/*"]}
        ],
    }
)
REORDERED = json.dumps(
    {
        "Statement": [
            {"Resource": "acs:oss:*:*:b/*", "Action": "oss:getobject", "Effect": "Allow"}
        ],
        "Version": "1",
    }
)
WIDER = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": ["oss:GetObject", "oss:DeleteObject"],
                "Resource": ["acs:oss:*:*:b/*"],
            }
        ],
    }
)
ALICE, BOB = Principal("user", "alice"), Principal("user", "bob")
READ = f"{MARKER} read"


def _desired(doc: str = DOC, *principals: Principal) -> list[Desired]:
    return [Desired("reader", doc, READ, frozenset(principals))]


def test_plan_should_create_a_missing_policy_and_attach_it() -> None:
    p = plan(_desired(DOC, ALICE), [Current("reader", exists=False)])
    assert [(a.kind, str(a.principal)) for a in p.actions] == [
        ("create-policy", "None"),
        ("attach", "user:alice"),
    ]


def test_plan_should_do_nothing_for_a_semantically_equal_document() -> None:
    p = plan(
        _desired(DOC, ALICE), [Current("reader", True, True, REORDERED, frozenset({ALICE}), READ)]
    )
    assert p.empty


def test_plan_should_add_a_version_when_the_grant_changes() -> None:
    p = plan(_desired(WIDER, ALICE), [Current("reader", True, True, DOC, frozenset({ALICE}), READ)])
    assert [a.kind for a in p.actions] == ["update-policy"]


def test_plan_should_detach_only_with_prune() -> None:
    current = [Current("reader", True, True, DOC, frozenset({ALICE, BOB}), READ)]
    assert plan(_desired(DOC, ALICE), current).empty
    p = plan(_desired(DOC, ALICE), current, prune=True)
    assert [(a.kind, a.principal) for a in p.actions] == [("detach", BOB)]


def test_plan_should_never_touch_a_policy_permgen_did_not_create() -> None:
    p = plan(_desired(WIDER, ALICE), [Current("reader", True, False, DOC, frozenset())], prune=True)
    assert p.actions == () and p.refused == ("reader",)
    assert not p.empty and p.blocked  # a conflict is never "no changes"


def test_plan_orders_creates_then_attaches_then_detaches() -> None:
    desired = [*_desired(WIDER, ALICE), Desired("writer", DOC, f"{MARKER} w", frozenset({BOB}))]
    current = [
        Current("reader", True, True, DOC, frozenset({BOB}), READ),
        Current("writer", exists=False),
    ]
    kinds = [a.kind for a in plan(desired, current, prune=True).actions]
    assert kinds == ["update-policy", "create-policy", "attach", "attach", "detach"]


def test_plan_should_order_description_and_deletions_safely() -> None:
    desired = [Desired("reader", WIDER, f"{MARKER} new words", frozenset({ALICE}))]
    current = [Current("reader", True, True, DOC, frozenset({ALICE}), READ)]
    orphan = Current("old", True, True, "", frozenset({BOB}), f"{MARKER} old")
    p = plan(desired, current, prune=True, orphans=[orphan])
    assert [(a.kind, a.policy) for a in p.actions] == [
        ("update-policy", "reader"),
        ("update-description", "reader"),
        ("detach", "old"),
        ("delete-policy", "old"),
    ]
    (update,) = [a for a in p.actions if a.kind == "update-policy"]
    assert update.diff is not None
    assert [i.actions for i in update.diff.new_access] == [("oss:DeleteObject",)]
    assert update.to_json()["new_access"][0]["risk"] == ["destructive"]
    # without prune, orphans are left alone
    assert [a.kind for a in plan(desired, current, orphans=[orphan]).actions] == [
        "update-policy",
        "update-description",
    ]


def test_plan_should_not_attach_to_missing_principals_and_apply_should_refuse() -> None:
    from permgen.account.sync import Missing
    from permgen.errors import InputError

    missing = [Missing(BOB, ("reader",))]
    p = plan(_desired(DOC, ALICE, BOB), [Current("reader", exists=False)], missing=missing)
    assert [(a.kind, a.principal) for a in p.actions] == [
        ("create-policy", None),
        ("attach", ALICE),
    ]
    assert p.blocked and not p.empty
    from permgen.emulator.inprocess import InProcessRam

    ram = InProcessRam(Backend())
    with pytest.raises(InputError, match="user:bob does not exist in the account"):
        apply(ram, p)
    assert ram.list_policies("Custom") == []  # not even the policy was created


# ------------------------------------------------------------------ against the emulator

PRINCIPALS = {
    "user": ["analytics-bot", "rotator-bot"],
    "group": ["analysts", "finance", "auditors"],
    "role": ["EtlRole", "oss-uploader"],
}


@pytest.fixture
def account() -> Iterator[tuple[Emulator, SdkRamClient]]:
    backend = Backend()
    root = backend.keys[ADMIN_KEY_ID]
    for u in PRINCIPALS["user"]:
        backend.CreateUser({"UserName": u}, root)
    for g in PRINCIPALS["group"]:
        backend.CreateGroup({"GroupName": g}, root)
    for r in PRINCIPALS["role"]:
        backend.CreateRole(
            {"RoleName": r, "AssumeRolePolicyDocument": json.dumps({"Statement": []})}, root
        )
    with Emulator(backend) as emu:
        yield (
            emu,
            SdkRamClient(
                AccessKey(ADMIN_KEY_ID, Secret(ADMIN_KEY_SECRET)),
                ClientConfig(endpoint=emu.url, max_attempts=1),
            ),
        )


def _plan(ram: Any, prune: bool = False) -> Any:
    desired = desired_state(compile_file(EXAMPLES / "platform.yaml"))
    return plan(desired, read_current(ram, [d.name for d in desired]), prune=prune)


def test_apply_then_nothing_left_to_do(account: tuple[Emulator, SdkRamClient]) -> None:
    _, ram = account
    first = _plan(ram)
    assert sum(a.kind == "create-policy" for a in first.actions) == 6
    apply(ram, first)
    assert _plan(ram).empty
    # the sts role's ceiling is attached to the RAM role it names
    assert [p.policy_name for p in ram.list_policies_for(Principal("role", "oss-uploader"))] == [
        "mobile-uploader"
    ]
    assert [p.policy_name for p in ram.list_policies_for(Principal("group", "analysts"))] == [
        "analytics-reader"
    ]


def test_a_failure_midway_loses_nothing_and_a_rerun_completes(
    account: tuple[Emulator, SdkRamClient],
) -> None:
    emu, ram = account
    apply(ram, _plan(ram))
    # change a grant and who has it, then fail in the middle of the attachments
    ram.detach_policy(Principal("user", "analytics-bot"), "analytics-reader", "Custom")
    emu.inject("AttachPolicyToUser", "ServiceUnavailable", 503, times=1)
    with pytest.raises(CloudError):
        apply(ram, _plan(ram))
    for group in ("analysts", "finance", "auditors"):
        assert ram.list_policies_for(Principal("group", group)), group  # nothing was detached
    apply(ram, _plan(ram))
    assert _plan(ram).empty


def test_version_rotation_at_the_limit(account: tuple[Emulator, SdkRamClient]) -> None:
    _, ram = account
    apply(ram, _plan(ram))
    for doc in (WIDER, DOC, WIDER, DOC, WIDER):
        ram.create_policy_version("analytics-reader", doc, set_as_default=True, rotate=True)
    apply(ram, _plan(ram))  # a sixth version: rotation drops the oldest non-default one
    assert len(ram.list_policy_versions("analytics-reader", "Custom")) == 5
    assert _plan(ram).empty


def test_plan_and_apply_commands(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, _ = account
    # account commands refuse the account's root key: a RAM user with the documented actions
    _deployer(emu, [a for a in REQUIRED if a.startswith("ram:")], monkeypatch)
    spec = str(EXAMPLES / "platform.yaml")
    drift = run_cli("plan", spec, "--detailed-exitcode")
    assert drift.exit_code == 4 and "+ create policy analytics-reader" in drift.output
    declined = run_cli("apply", spec, input="n\n")
    assert declined.exit_code == 0 and "nothing changed" in declined.output
    assert run_cli("plan", spec, "--detailed-exitcode").exit_code == 4
    done = run_cli("apply", spec, "--yes")
    assert done.exit_code == 0 and "applied" in done.output
    clean = run_cli("plan", spec, "--detailed-exitcode", "--format", "json")
    assert clean.exit_code == 0 and json.loads(clean.output) == {
        "changes": [],
        "refused": [],
        "missing_principals": [],
        "in_sync": True,
        "warnings": [],
    }


REQUIRED = json.loads((ROOT / "docs" / "required-permissions.json").read_text())["actions"]


def _deployer(emu: Emulator, actions: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """A RAM user allowed exactly ``actions``, whose key the commands then use."""
    backend = emu.backend
    root = backend.keys[ADMIN_KEY_ID]
    doc = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": actions, "Resource": "*"}]}
    backend.CreateUser({"UserName": "deployer"}, root)
    backend.CreatePolicy({"PolicyName": "deployer", "PolicyDocument": json.dumps(doc)}, root)
    backend.AttachPolicyToUser(
        {"PolicyName": "deployer", "PolicyType": "Custom", "UserName": "deployer"}, root
    )
    key = backend.add_key("user/deployer")
    monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key.key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", key.secret)


def test_the_documented_permissions_are_enough_for_plan_apply_and_diff(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, _ = account
    _deployer(emu, [a for a in REQUIRED if a.startswith("ram:")], monkeypatch)
    spec = str(EXAMPLES / "platform.yaml")
    assert run_cli("plan", spec, "--detailed-exitcode").exit_code == 4
    done = run_cli("apply", spec, "--yes")
    assert done.exit_code == 0, done.output
    assert run_cli("plan", spec, "--detailed-exitcode").exit_code == 0
    diff = run_cli("diff", spec, "--role", "analytics-reader", "--principal", "user:analytics-bot")
    assert diff.exit_code == 0, diff.output


def test_without_a_documented_permission_apply_stops_before_changing_anything(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, ram = account
    actions = [a for a in REQUIRED if a.startswith("ram:") and a != "ram:AttachPolicyToGroup"]
    _deployer(emu, actions, monkeypatch)
    spec = str(EXAMPLES / "platform.yaml")
    failed = run_cli("apply", spec, "--yes")
    assert failed.exit_code == 1
    assert "NoPermission" in failed.output and "ram:AttachPolicyToGroup" in failed.output
    assert "required-permissions.json" in failed.output
    # policies come first and are kept; no attachment to a group was made, nothing detached
    for group in PRINCIPALS["group"]:
        assert ram.list_policies_for(Principal("group", group)) == []


def test_diff_a_role_against_a_principal(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, ram = account
    apply(ram, _plan(ram))
    emu.backend.AddUserToGroup(
        {"UserName": "analytics-bot", "GroupName": "analysts"}, emu.backend.keys[ADMIN_KEY_ID]
    )
    ram.attach_policy(Principal("group", "analysts"), "AliyunOSSReadOnlyAccess", "System")
    # account commands refuse the account's root key: a RAM user with the documented actions
    _deployer(emu, [a for a in REQUIRED if a.startswith("ram:")], monkeypatch)
    result = run_cli(
        "diff",
        str(EXAMPLES / "platform.yaml"),
        "--role",
        "analytics-reader",
        "--principal",
        "user:analytics-bot",
        "--format",
        "json",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output)
    assert doc["new_access"] == []  # the role is already in force
    excess = doc["removed_access"]
    assert excess, "the group's read-only policy grants beyond the role"
    assert {i["statement"]["policy"] for i in excess} == {
        "System:AliyunOSSReadOnlyAccess via group:analysts"
    }
    # the role alone, for a user who has nothing: everything it grants is new
    fresh = run_cli(
        "diff",
        str(EXAMPLES / "platform.yaml"),
        "--role",
        "ingest-writer",
        "--principal",
        "user:rotator-bot",
        "--format",
        "json",
    )
    items = json.loads(fresh.output)["new_access"]
    assert {a for i in items for a in i["actions"]} >= {"oss:PutObject", "oss:GetObject"}


# ------------------------------------------------------------------ principals, conflicts, prune

SMALL = """\
version: 1
defaults:
  account: "1234567890123456"
roles:
  reader:
    template: reader
    description: Read exports
    grants: [{bucket: corp-data, prefixes: ["exports/"]}]
    attach: ["user:analytics-bot"]
  writer:
    template: writer
    description: Write ingest
    grants: [{bucket: corp-data, prefixes: ["ingest/"]}]
    attach: ["group:analysts", "role:EtlRole"]
"""


def _login(emu: Emulator, monkeypatch: pytest.MonkeyPatch) -> None:
    # account commands refuse the account's root key: a RAM user with the documented actions
    _deployer(emu, [a for a in REQUIRED if a.startswith("ram:")], monkeypatch)


def _spec(tmp_path: Any, text: str) -> str:
    path = tmp_path / "roles.yaml"
    path.write_text(text)
    return str(path)


def _custom(ram: SdkRamClient) -> set[str]:
    """The custom policies, but the deployer's own (which the commands run as)."""
    return {p.policy_name for p in ram.list_policies("Custom")} - {"deployer"}


def test_plan_should_show_an_out_of_band_widening_with_its_risk(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    emu, ram = account
    _login(emu, monkeypatch)
    spec = _spec(tmp_path, SMALL)
    assert run_cli("apply", spec, "--yes").exit_code == 0
    wide = {"Version": "1", "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}]}
    ram.create_policy_version("reader", json.dumps(wide), set_as_default=True, rotate=True)
    text = run_cli("plan", spec, "--detailed-exitcode")
    assert text.exit_code == 4
    assert "~ new default version of policy reader" in text.output
    assert "the spec does not (widened outside permgen?); apply removes:" in text.output
    removes = [line for line in text.output.splitlines() if line.startswith("      - ")]
    assert any("destructive" in line and "wildcard-scope" in line for line in removes)
    # GetObject stays allowed on the spec's prefix: only the rest of it is removed
    assert any(
        line.startswith(
            "      - oss:GetObject on * except acs:oss:*:1234567890123456:corp-data/exports/*"
        )
        for line in removes
    )
    doc = json.loads(run_cli("plan", spec, "--format", "json").output)
    (update,) = doc["changes"]
    assert update["action"] == "update-policy" and update["parsed"] is True
    assert update["new_access"] == []  # the spec grants nothing the widened policy lacks
    risks = {r for item in update["removed_access"] for r in item["risk"]}
    assert {"destructive", "exposure", "wildcard-scope"} <= risks
    assert all(
        item["statement"]["policy"] == "reader (account)" for item in update["removed_access"]
    )
    assert run_cli("apply", spec, "--yes").exit_code == 0
    assert run_cli("plan", spec, "--detailed-exitcode").exit_code == 0


def test_plan_should_report_a_same_name_policy_it_does_not_manage_as_a_conflict(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    emu, ram = account
    _login(emu, monkeypatch)
    ram.create_policy("reader", DOC, "hand-made")
    spec = _spec(tmp_path, SMALL)
    result = run_cli("plan", spec, "--detailed-exitcode")
    assert result.exit_code == 4
    assert "! conflict: policy reader exists but was not created by permgen" in result.output
    assert "no changes" not in result.output
    doc = json.loads(run_cli("plan", spec, "--format", "json").output)
    assert doc["refused"] == ["reader"] and doc["in_sync"] is False
    # reader alone, already "matching": still a conflict, never "no changes"
    only_reader = SMALL.split("  writer:")[0]
    alone = run_cli("plan", _spec(tmp_path, only_reader), "--detailed-exitcode")
    assert alone.exit_code == 4 and "no changes" not in alone.output
    applied = run_cli("apply", spec, "--yes")
    assert applied.exit_code == 2 and "policy reader exists but was not created by permgen" in (
        applied.output
    )
    assert _custom(ram) == {"reader"}  # nothing was written
    assert ram.get_policy("reader", "Custom").description == "hand-made"


def test_plan_should_report_principals_that_do_not_exist_and_apply_should_refuse(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    emu, ram = account
    _login(emu, monkeypatch)
    spec = _spec(
        tmp_path, SMALL.replace('attach: ["user:analytics-bot"]', 'attach: ["user:intern"]')
    )
    result = run_cli("plan", spec, "--detailed-exitcode")
    assert result.exit_code == 4
    assert "! user:intern does not exist in the account (attach: of role reader)" in result.output
    assert "attach reader to user:intern" not in result.output
    doc = json.loads(run_cli("plan", spec, "--format", "json").output)
    assert doc["missing_principals"] == [{"principal": "user:intern", "roles": ["reader"]}]
    applied = run_cli("apply", spec, "--yes")
    assert applied.exit_code == 2
    assert "user:intern does not exist in the account" in applied.output
    assert "Nothing was changed" in applied.output
    assert _custom(ram) == set()  # refused before the first write
    # a missing group and role are found the same way (GetGroup, GetRole)
    ghosts = SMALL.replace('"group:analysts", "role:EtlRole"', '"group:ghosts", "role:Ghost"')
    doc = json.loads(run_cli("plan", _spec(tmp_path, ghosts), "--format", "json").output)
    assert [m["principal"] for m in doc["missing_principals"]] == ["group:ghosts", "role:Ghost"]


def test_apply_should_say_what_it_did_and_what_is_left_when_it_stops(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    emu, _ = account
    _login(emu, monkeypatch)
    spec = _spec(tmp_path, SMALL)
    emu.inject("AttachPolicyToGroup", "ServiceUnavailable", 503, times=1)
    failed = run_cli("apply", spec, "--yes")
    assert failed.exit_code == 1
    assert "stopped by an error after 3 of 5 change(s)" in failed.output
    lines = failed.output.splitlines()
    assert [x for x in lines if x.startswith("  done: ")] == [
        "  done: + create policy reader",
        "  done: + create policy writer",
        "  done: + attach reader to user:analytics-bot",
    ]
    assert [x for x in lines if x.startswith("  left: ")] == [
        "  left: + attach writer to group:analysts",
        "  left: + attach writer to role:EtlRole",
    ]
    assert run_cli("apply", spec, "--yes").exit_code == 0
    assert run_cli("plan", spec, "--detailed-exitcode").exit_code == 0


def test_plan_should_sync_a_changed_description(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    emu, ram = account
    _login(emu, monkeypatch)
    spec = _spec(tmp_path, SMALL)
    assert run_cli("apply", spec, "--yes").exit_code == 0
    spec = _spec(tmp_path, SMALL.replace("Read exports", "Read the exports"))
    result = run_cli("plan", spec, "--detailed-exitcode", "--format", "json")
    assert result.exit_code == 4
    assert json.loads(result.output)["changes"] == [
        {
            "action": "update-description",
            "policy": "reader",
            "principal": None,
            "description": "[permgen] Read the exports",
        }
    ]
    assert run_cli("apply", spec, "--yes").exit_code == 0
    assert ram.get_policy("reader", "Custom").description == "[permgen] Read the exports"
    assert len(ram.list_policy_versions("reader", "Custom")) == 1  # no new version for it
    assert run_cli("plan", spec, "--detailed-exitcode").exit_code == 0


def test_plan_should_prune_policies_whose_role_left_the_spec(
    account: tuple[Emulator, SdkRamClient], monkeypatch: pytest.MonkeyPatch, tmp_path: Any
) -> None:
    emu, ram = account
    _login(emu, monkeypatch)
    assert run_cli("apply", _spec(tmp_path, SMALL), "--yes").exit_code == 0
    # a second version, so deleting it needs DeletePolicyVersion first
    ram.create_policy_version("writer", WIDER, set_as_default=True, rotate=True)
    ram.create_policy("legacy", DOC, "made by hand")  # not permgen's: never pruned
    ram.attach_policy(Principal("group", "analysts"), "legacy", "Custom")
    spec = _spec(tmp_path, SMALL.split("  writer:")[0])
    plain = run_cli("plan", spec, "--detailed-exitcode")
    assert plain.exit_code == 0 and "no changes" in plain.output  # without --prune
    pruned = run_cli("plan", spec, "--prune", "--detailed-exitcode")
    assert pruned.exit_code == 4
    assert pruned.output.splitlines() == [
        "- detach writer from group:analysts",
        "- detach writer from role:EtlRole",
        "- delete policy writer (its role left the spec)",
    ]
    doc = json.loads(run_cli("plan", spec, "--prune", "--format", "json").output)
    assert [(c["action"], c["principal"]) for c in doc["changes"]] == [
        ("detach", "group:analysts"),
        ("detach", "role:EtlRole"),
        ("delete-policy", None),
    ]
    assert run_cli("apply", spec, "--prune", "--yes").exit_code == 0
    assert _custom(ram) == {"reader", "legacy"}
    assert [p.policy_name for p in ram.list_policies_for(Principal("group", "analysts"))] == [
        "legacy"
    ]
    assert ram.list_policies_for(Principal("role", "EtlRole")) == []
    assert run_cli("plan", spec, "--prune", "--detailed-exitcode").exit_code == 0


def test_a_prune_plan_applied_twice_counts_what_is_gone_as_done(
    account: tuple[Emulator, SdkRamClient],
) -> None:
    _, ram = account
    desired = [Desired("reader", DOC, READ, frozenset({Principal("user", "analytics-bot")}))]
    orphan = [Desired("old", WIDER, f"{MARKER} old", frozenset({Principal("group", "finance")}))]
    apply(ram, plan(desired + orphan, read_current(ram, ["reader", "old"])))
    names = [d.name for d in desired]
    planned = plan(desired, read_current(ram, names), prune=True, orphans=read_orphans(ram, names))
    assert [a.kind for a in planned.actions] == ["detach", "delete-policy"]
    apply(ram, planned)
    apply(ram, planned)  # a re-run after the fact: detaching and deleting the gone is done
    assert _custom(ram) == {"reader"}


def test_plan_should_refuse_a_role_arn_in_another_account(tmp_path: Any) -> None:
    spec = _spec(
        tmp_path,
        SMALL
        + """\
  uploader:
    template: temporary-uploader
    grants: [{bucket: uploads, prefixes: ["in/{user}/"]}]
    sts: {role_arn: "acs:ram::9999999999999999:role/oss-uploader"}
""",
    )
    result = run_cli(
        "plan",
        spec,
        "--endpoint",
        "http://127.0.0.1:9",
        "--access-key-id",
        "x",
        "--access-key-secret",
        "y",
    )
    assert result.exit_code == 2
    assert "roles.uploader.sts.role_arn" in result.output
    assert "names account 9999999999999999, but the spec's account is 1234567890123456" in (
        result.output
    )
