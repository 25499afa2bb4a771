"""permgen import: the account read through the real SDK (emulator), the spec it writes,
and the guarantee: compile(import(account)) is equivalent to the account role by role
(the exact diff), and plan right after import shows no changes."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from permgen.account.importer import import_account, render_spec
from permgen.account.sdk import SdkRamClient
from permgen.account.sync import apply, plan_account
from permgen.account.types import AccessKey, ClientConfig, Principal, Secret
from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET, Backend, Emulator
from permgen.policy.model import parse_policy
from permgen.semantics.diff import diff_policies
from permgen.spec.compile import compile_file, compile_role
from permgen.spec.types import BUILTIN_OPTIONS, Conditions, Grant, Role
from tests.conftest import EXAMPLES, operator_key, run_cli

ACCOUNT = "1234567890123456"
PRINCIPALS = {
    "user": ["analytics-bot", "rotator-bot", "token-vendor"],
    "group": ["analysts", "finance", "auditors"],
    "role": ["EtlRole", "oss-uploader"],
}


def _backend() -> tuple[Backend, Any]:
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
    return backend, root


def _client(emu: Emulator) -> SdkRamClient:
    return SdkRamClient(
        AccessKey(ADMIN_KEY_ID, Secret(ADMIN_KEY_SECRET)),
        ClientConfig(endpoint=emu.url, max_attempts=1),
    )


@pytest.fixture
def demo() -> Iterator[tuple[Emulator, SdkRamClient]]:
    """The demo account (examples/demo-account.sh): platform.yaml applied, a hand-made
    policy for the token vendor, and a system policy on a group."""
    backend, root = _backend()
    vend = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Resource": f"acs:ram:*:{ACCOUNT}:role/oss-uploader",
            }
        ],
    }
    backend.CreatePolicy(
        {"PolicyName": "token-vendor-assume", "PolicyDocument": json.dumps(vend)}, root
    )
    backend.AttachPolicyToUser(
        {"UserName": "token-vendor", "PolicyName": "token-vendor-assume", "PolicyType": "Custom"},
        root,
    )
    with Emulator(backend) as emu:
        ram = _client(emu)
        apply(ram, plan_account(compile_file(EXAMPLES / "platform.yaml"), ram))
        backend.AttachPolicyToGroup(
            {
                "GroupName": "analysts",
                "PolicyName": "AliyunOSSReadOnlyAccess",
                "PolicyType": "System",
            },
            root,
        )
        yield emu, ram


def _assert_equivalent_role_by_role(ram: SdkRamClient, spec: Path) -> int:
    """Every role of the imported spec compiles to what the account's policy of that name
    allows, proven with the exact diff; returns the number of roles."""
    compiled = compile_file(spec)
    names = sorted(p.policy_name for p in ram.list_policies("Custom"))
    assert sorted(compiled.roles) == names
    for name, role in compiled.roles.items():
        account = parse_policy(ram.get_policy(name, "Custom").default_document)
        diff = diff_policies([account], [role.policy])
        assert diff.exact and diff.equivalent, name
    return len(names)


def _import(emu: Emulator, out: Path, *extra: str) -> Any:
    key_id, secret = operator_key(emu.backend)  # account commands refuse the root key
    return run_cli(
        "import", "--out", str(out), "--endpoint", emu.url,
        "--access-key-id", key_id, "--access-key-secret", secret, *extra,
    )  # fmt: skip


def test_import_round_trips_the_demo_account(
    demo: tuple[Emulator, SdkRamClient], tmp_path: Path
) -> None:
    emu, ram = demo
    out = tmp_path / "imported.yaml"
    result = _import(emu, out)
    assert result.exit_code == 0, result.output
    text = out.read_text()
    assert _assert_equivalent_role_by_role(ram, out) == 7
    assert plan_account(compile_file(out), ram).empty
    # template roles where a built-in template proves equivalent; the rest raw
    spec = compile_file(out).spec
    assert spec.roles["analytics-reader"].template == "reader"
    assert spec.roles["ingest-writer"].template == "writer"
    assert spec.roles["export-rotator"].template == "writer"
    assert spec.roles["console-browser"].template == "reader"
    assert spec.roles["bucket-auditor"].policy is not None  # a user template's output
    assert spec.roles["mobile-uploader"].policy is not None  # a ceiling: incoming/*/
    assert spec.roles["token-vendor-assume"].policy is not None
    assert spec.roles["analytics-reader"].attach == ("group:analysts", "user:analytics-bot")
    assert spec.roles["mobile-uploader"].attach == ("role:oss-uploader",)
    assert all(r.adopt for r in spec.roles.values())
    # comments name the source policy and version; the system policy is listed, not managed
    assert "# source: custom policy export-rotator, version v1" in text
    assert "#   group:analysts: AliyunOSSReadOnlyAccess" in text
    assert "AliyunOSSReadOnlyAccess:" not in text
    # the descriptions come back without the marker
    assert spec.roles["ingest-writer"].description == "Write raw ingestion files; cannot delete"
    # stable: a second import writes the same bytes
    again = tmp_path / "again.yaml"
    assert _import(emu, again).exit_code == 0
    assert again.read_text() == text


def test_import_refuses_to_overwrite_and_force_replaces(
    demo: tuple[Emulator, SdkRamClient], tmp_path: Path
) -> None:
    emu, _ = demo
    out = tmp_path / "spec.yaml"
    out.write_text("keep me\n")
    result = _import(emu, out)
    assert result.exit_code == 2
    assert "exists; give --force" in result.output
    assert out.read_text() == "keep me\n"
    assert _import(emu, out, "--force").exit_code == 0
    assert out.read_text().startswith("# Imported from")


def test_without_adopt_the_imported_roles_are_conflicts_and_apply_refuses(
    demo: tuple[Emulator, SdkRamClient], tmp_path: Path
) -> None:
    emu, ram = demo
    out = tmp_path / "imported.yaml"
    assert _import(emu, out).exit_code == 0
    bare = tmp_path / "bare.yaml"
    bare.write_text(out.read_text().replace("    adopt: true\n", ""))
    planned = plan_account(compile_file(bare), ram)
    # the policies permgen created carry the marker; the hand-made one is a conflict
    assert planned.refused == ("token-vendor-assume",)


def test_an_adopted_policy_is_updated_and_keeps_its_description(
    demo: tuple[Emulator, SdkRamClient], tmp_path: Path
) -> None:
    emu, ram = demo
    out = tmp_path / "imported.yaml"
    assert _import(emu, out).exit_code == 0
    text = out.read_text().replace("role/oss-uploader", "role/EtlRole")
    (tmp_path / "changed.yaml").write_text(text)
    planned = plan_account(compile_file(tmp_path / "changed.yaml"), ram)
    assert [(a.kind, a.policy) for a in planned.actions] == [
        ("update-policy", "token-vendor-assume")
    ]
    apply(ram, planned)
    info = ram.get_policy("token-vendor-assume", "Custom")
    assert "role/EtlRole" in info.default_document
    assert info.description == ""  # no marker was added
    assert plan_account(compile_file(tmp_path / "changed.yaml"), ram).empty


# --------------------------------------------------------------------------- 200 policies

OPTION_SETS: dict[str, list[dict[str, bool]]] = {
    "reader": [{}, {"versions": True}, {"browse": True}, {"versions": True, "browse": True}],
    "writer": [{}, {"delete": True}, {"read": False}, {"read": False, "delete": True}],
    "temporary-uploader": [{}],
}


def _generated_account(backend: Backend, root: Any, n: int, seed: int) -> dict[str, str]:
    """n policies: template-shaped (with grants, options and conditions), raw ones, and
    attachments; returns name -> "template" or "raw" (what import should find)."""
    rng = random.Random(seed)
    kinds: dict[str, str] = {}
    principals = [f"{k}:{n}" for k, names in PRINCIPALS.items() for n in names]
    for i in range(n):
        name = f"gen-{i:03d}"
        if i % 3 == 2:
            doc = {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": rng.choice(["Allow", "Deny"]),
                        "Action": rng.sample(
                            ["oss:GetObject", "oss:PutObject", "ecs:Describe*", "oss:List*"], 2
                        ),
                        "Resource": f"acs:oss:*:*:bucket-{i}/*",
                    }
                ],
            }
            kinds[name] = "raw"
        else:
            template = rng.choice(list(OPTION_SETS))
            options = rng.choice(OPTION_SETS[template])
            prefixes = tuple(sorted(rng.sample(["a/", "b/c/", "logs/", ""], rng.randint(1, 2))))
            conditions = rng.choice(
                [
                    Conditions(),
                    Conditions(source_ip=("203.0.113.0/24",)),
                    Conditions(source_vpc=("vpc-abc",), secure_transport=True),
                ]
            )
            role = Role(
                name, template, (Grant(f"bucket-{i % 7}", prefixes),),
                options=tuple(sorted({**BUILTIN_OPTIONS[template], **options}.items())), conditions=conditions, account=ACCOUNT,
            )  # fmt: skip
            doc = json.loads(compile_role(role).policy.dumps())
            doc["Statement"].reverse()  # written by hand, in another order
            kinds[name] = "template"
        backend.CreatePolicy(
            {"PolicyName": name, "PolicyDocument": json.dumps(doc), "Description": f"policy {i}"},
            root,
        )
        for who in rng.sample(principals, rng.randint(0, 2)):
            p = Principal.parse(who)
            kind = p.kind.capitalize()
            getattr(backend, f"AttachPolicyTo{kind}")(
                {f"{kind}Name": p.name, "PolicyName": name, "PolicyType": "Custom"}, root
            )
    backend.AttachPolicyToRole(
        {"RoleName": "EtlRole", "PolicyName": "AliyunOSSFullAccess", "PolicyType": "System"}, root
    )
    return kinds


def test_import_round_trips_a_generated_account_of_200_policies(tmp_path: Path) -> None:
    backend, root = _backend()
    kinds = _generated_account(backend, root, 200, seed=7)
    with Emulator(backend) as emu:
        ram = _client(emu)
        imported = import_account(ram)
        out = tmp_path / "imported.yaml"
        out.write_text(render_spec(imported))
        assert _assert_equivalent_role_by_role(ram, out) == 200
        assert plan_account(compile_file(out), ram).empty
        found = {r.name: ("raw" if r.document is not None else "template") for r in imported.roles}
        assert found == kinds
        assert ("role:EtlRole", "AliyunOSSFullAccess") in imported.system


def test_an_account_without_custom_policies_writes_nothing(tmp_path: Path) -> None:
    backend, _ = _backend()
    with Emulator(backend) as emu:
        out = tmp_path / "imported.yaml"
        result = _import(emu, out)
        assert result.exit_code == 1
        assert "no custom policy permgen can import; nothing was written" in result.output
        assert not out.exists()


def test_raw_keeps_every_policy_as_statements(
    demo: tuple[Emulator, SdkRamClient], tmp_path: Path
) -> None:
    emu, ram = demo
    out = tmp_path / "raw.yaml"
    assert _import(emu, out, "--raw").exit_code == 0
    spec = compile_file(out).spec
    assert all(r.policy is not None for r in spec.roles.values())
    assert _assert_equivalent_role_by_role(ram, out) == 7
    assert plan_account(compile_file(out), ram).empty
