"""plan and apply: the pure plan, and apply through the real SDK against the emulator."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from permgen.account.sdk import SdkRamClient
from permgen.account.types import AccessKey, ClientConfig, Principal, Secret
from permgen.compiler import compile_file
from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET, Backend, Emulator
from permgen.errors import CloudError
from permgen.sync import MARKER, Current, Desired, apply, desired_state, plan, read_current
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
    p = plan(_desired(DOC, ALICE), [Current("reader", True, True, REORDERED, frozenset({ALICE}), READ)])
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
    monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ADMIN_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ADMIN_KEY_SECRET)
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
    monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ADMIN_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ADMIN_KEY_SECRET)
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
