"""One contract suite for RAM, run in process and over HTTP through the real SDK."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import pytest

from permgen.account.sdk import SdkRamClient, call
from permgen.account.types import AccessKey, ClientConfig, Principal, Secret
from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET, Backend, Emulator
from permgen.emulator.inprocess import InProcessRam
from permgen.errors import CloudError

DOC = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}
        ],
    }
)
DOC2 = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "oss:PutObject", "Resource": "acs:oss:*:*:b/*"}
        ],
    }
)


#: What the contract suite creates in an account: the live profile deletes exactly these
#: (and nothing else) before and after each case, so it needs an account of its own.
LIVE_PRINCIPALS = (("user", "alice"), ("group", "devs"), ("role", "etl"))
LIVE_POLICIES = ("reader", "p", *(f"p-{i:03d}" for i in range(120)))
_TRUST = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"Service": ["ecs.aliyuncs.com"]},
            }
        ],
    }
)


def _live_cleanup(ram: SdkRamClient) -> None:
    """Remove what the suite creates; what is not there is fine."""
    for kind, name in LIVE_PRINCIPALS:
        try:
            attached = ram.list_policies_for(Principal(kind, name))  # type: ignore[arg-type]
        except CloudError:
            continue
        for p in attached:
            ram.detach_policy(Principal(kind, name), p.policy_name, p.policy_type)  # type: ignore[arg-type]
    for name in LIVE_POLICIES:
        try:
            versions = ram.list_policy_versions(name, "Custom")
        except CloudError:
            continue
        for v in versions:
            if not v.is_default:
                ram.delete_policy_version(name, v.version_id)
        ram.delete_policy(name)
    for action, params in (
        ("RemoveUserFromGroup", {"UserName": "alice", "GroupName": "devs"}),
        ("DeleteUser", {"UserName": "alice"}),
        ("DeleteGroup", {"GroupName": "devs"}),
        ("DeleteRole", {"RoleName": "etl"}),
    ):
        with contextlib.suppress(CloudError):
            _account_setup(ram, action, params)


def _account_setup(ram: SdkRamClient, action: str, params: dict[str, str]) -> None:
    """A RAM call the suite makes to set up or clear the test account, which permgen itself
    never makes (creating and deleting principals): through the same SDK client and
    signing, without permgen's list of the calls it allows."""
    try:
        call(ram._client, "Ram", action, params, ram.config, retry=False, secrets=ram._secrets)
    except CloudError as exc:
        # what an earlier case left (an account whose cleanup calls do not exist, such as
        # the emulator used as the live endpoint) is what the setup wants
        if not (exc.code or "").startswith(("EntityAlreadyExists", "EntityAlreadyExist")):
            raise


def _live_ram() -> Iterator[SdkRamClient]:
    """The contract suite against a real account (PERMGEN_LIVE=1, CONTRIBUTING.md). Skipped,
    before anything touches the network, when the profile is off."""
    from tests.conftest import LIVE

    if not LIVE.enabled or LIVE.key is None:
        pytest.skip(LIVE.reason)
    ram = SdkRamClient(LIVE.key, ClientConfig(endpoint=LIVE.endpoint))
    _live_cleanup(ram)
    _account_setup(ram, "CreateUser", {"UserName": "alice"})
    _account_setup(ram, "CreateGroup", {"GroupName": "devs"})
    _account_setup(ram, "AddUserToGroup", {"UserName": "alice", "GroupName": "devs"})
    _account_setup(ram, "CreateRole", {"RoleName": "etl", "AssumeRolePolicyDocument": _TRUST})
    try:
        yield ram
    finally:
        _live_cleanup(ram)


@pytest.fixture(params=["in-process", "http-sdk", pytest.param("live", marks=pytest.mark.live)])
def ram(request: pytest.FixtureRequest) -> Iterator[Any]:
    if request.param == "live":
        yield from _live_ram()
        return
    backend = Backend()
    root = backend.keys[ADMIN_KEY_ID]
    backend.CreateUser({"UserName": "alice"}, root)
    backend.CreateGroup({"GroupName": "devs"}, root)
    backend.AddUserToGroup({"UserName": "alice", "GroupName": "devs"}, root)
    backend.CreateRole(
        {"RoleName": "etl", "AssumeRolePolicyDocument": json.dumps({"Statement": []})}, root
    )
    if request.param == "in-process":
        yield InProcessRam(backend)
        return
    with Emulator(backend) as emu:
        yield SdkRamClient(
            AccessKey(ADMIN_KEY_ID, Secret(ADMIN_KEY_SECRET)),
            ClientConfig(endpoint=emu.url, max_attempts=1),
        )


def _code(fn: Any, *args: Any, **kw: Any) -> str:
    with pytest.raises(CloudError) as info:
        fn(*args, **kw)
    return info.value.code


def test_create_attach_list(ram: Any) -> None:
    info = ram.create_policy("reader", DOC, "read b")
    assert (info.policy_name, info.policy_type, info.default_version) == ("reader", "Custom", "v1")
    ram.attach_policy(Principal("user", "alice"), "reader", "Custom")
    ram.attach_policy(Principal("group", "devs"), "AliyunOSSReadOnlyAccess", "System")
    ram.attach_policy(Principal("role", "etl"), "reader", "Custom")
    assert [
        (p.policy_name, p.policy_type) for p in ram.list_policies_for(Principal("user", "alice"))
    ] == [("reader", "Custom")]
    assert [p.policy_name for p in ram.list_policies_for(Principal("group", "devs"))] == [
        "AliyunOSSReadOnlyAccess"
    ]
    assert ram.list_groups_for_user("alice") == ["devs"]
    entities = ram.list_entities_for_policy("reader", "Custom")
    assert (entities.users, entities.groups, entities.roles) == (("alice",), (), ("etl",))
    got = ram.get_policy("reader", "Custom")
    assert json.loads(got.default_document) == json.loads(DOC)
    assert got.attachment_count == 2


def test_list_policies_follows_the_marker_across_pages(ram: Any) -> None:
    names = [f"p-{i:03d}" for i in range(120)]
    for name in names:
        ram.create_policy(name, DOC)
    custom = ram.list_policies("Custom", page_size=50)  # three pages: 50, 50, 20
    assert [p.policy_name for p in custom] == names
    everything = ram.list_policies(page_size=1000)
    assert {p.policy_name for p in everything} >= set(names)
    assert any(p.policy_type == "System" for p in everything)
    assert len(everything) == len(ram.list_policies(page_size=7))


def test_versions(ram: Any) -> None:
    ram.create_policy("p", DOC)
    v = ram.create_policy_version("p", DOC2, set_as_default=True, rotate=False)
    assert (v.version_id, v.is_default) == ("v2", True)
    assert json.loads(ram.get_policy_version("p", "Custom", "v2").document) == json.loads(DOC2)
    for _ in range(3):
        ram.create_policy_version("p", DOC, set_as_default=False, rotate=False)
    assert (
        _code(ram.create_policy_version, "p", DOC, set_as_default=True, rotate=False)
        == "LimitExceeded.Policy.Version"
    )
    rotated = ram.create_policy_version("p", DOC, set_as_default=True, rotate=True)
    assert rotated.version_id == "v6"
    assert [x.version_id for x in ram.list_policy_versions("p", "Custom")] == [
        "v2",
        "v3",
        "v4",
        "v5",
        "v6",
    ]
    assert _code(ram.delete_policy_version, "p", "v6") == "DeleteConflict.Policy.Version.Default"
    ram.set_default_policy_version("p", "v3")
    ram.delete_policy_version("p", "v6")
    assert ram.get_policy("p", "Custom").default_version == "v3"


@pytest.mark.parametrize(
    ("call", "code"),
    [
        (lambda r: r.get_policy("nope", "Custom"), "EntityNotExist.Policy"),
        (
            lambda r: r.get_policy_version("AliyunOSSFullAccess", "System", "v9"),
            "EntityNotExist.Policy.Version",
        ),
        (lambda r: r.create_policy("bad_name", DOC), "InvalidParameter.PolicyName.InvalidChars"),
        (
            lambda r: r.create_policy("p", '{"Version": "1", "Statement": [{"Effect": "Allow"}]}'),
            "MalformedPolicyDocument",
        ),
        (
            lambda r: r.create_policy("p", DOC[:-2] + ", " + ", ".join(['"x": 1'] * 1) + "}]}"),
            "MalformedPolicyDocument",
        ),
        (
            lambda r: r.attach_policy(Principal("user", "ghost"), "AliyunOSSFullAccess", "System"),
            "EntityNotExist.User",
        ),
        (
            lambda r: r.detach_policy(Principal("user", "alice"), "AliyunOSSFullAccess", "System"),
            "EntityNotExist.User.Policy",
        ),
        (lambda r: r.list_policies_for(Principal("role", "ghost")), "EntityNotExist.Role"),
        (lambda r: r.get_policy("AliyunOSSFullAccess", "Weird"), "InvalidParameter.PolicyType"),
        (lambda r: r.update_policy_description("nope", "x"), "EntityNotExist.Policy"),
        (
            lambda r: r.update_policy_description("AliyunOSSFullAccess", "x"),
            "EntityNotExist.Policy",  # a system policy's description is not the account's
        ),
    ],
)
def test_error_codes(ram: Any, call: Any, code: str) -> None:
    assert _code(call, ram) == code


def test_update_policy_description(ram: Any) -> None:
    ram.create_policy("p", DOC, "first")
    ram.update_policy_description("p", "second")
    info = ram.get_policy("p", "Custom")
    assert (info.description, info.default_version) == ("second", "v1")
    assert _code(ram.update_policy_description, "p", "x" * 1025) == (
        "InvalidParameter.Description.Length"
    )
    assert ram.get_policy("p", "Custom").description == "second"


def test_principal_exists_asks_get_user_group_and_role(ram: Any) -> None:
    for kind, name in (("user", "alice"), ("group", "devs"), ("role", "etl")):
        assert ram.principal_exists(Principal(kind, name)) is True
        assert ram.principal_exists(Principal(kind, "ghost")) is False


def test_attach_twice_and_delete_conflicts(ram: Any) -> None:
    ram.create_policy("p", DOC)
    ram.attach_policy(Principal("user", "alice"), "p", "Custom")
    assert (
        _code(ram.attach_policy, Principal("user", "alice"), "p", "Custom")
        == "EntityAlreadyExists.User.Policy"
    )
    assert _code(ram.create_policy, "p", DOC) == "EntityAlreadyExists.Policy"
    assert _code(ram.delete_policy, "p") == "DeleteConflict.Policy.User"
    ram.detach_policy(Principal("user", "alice"), "p", "Custom")
    ram.delete_policy("p")
    assert _code(ram.get_policy, "p", "Custom") == "EntityNotExist.Policy"


def test_reads_are_retried_and_writes_are_not() -> None:
    with Emulator(Backend()) as emu:
        client = SdkRamClient(
            AccessKey(ADMIN_KEY_ID, Secret(ADMIN_KEY_SECRET)),
            ClientConfig(endpoint=emu.url, max_attempts=3, backoff_base=0.01),
        )
        emu.inject("ListPolicies", "Throttling.User", 400, times=2)
        assert client.list_policies("System")
        emu.inject("CreatePolicy", "ServiceUnavailable", 503, times=1)
        assert _code(client.create_policy, "p", DOC) == "ServiceUnavailable"
        emu.inject("GetPolicy", "InternalError", 500, times=5)
        with pytest.raises(CloudError) as info:
            client.get_policy("AliyunOSSFullAccess", "System")
        assert info.value.http_status == 500
        emu.inject("ListPolicies", "Throttling", 400, times=5)
        from permgen.errors import ThrottledError

        with pytest.raises(ThrottledError):
            client.list_policies()


def test_dropped_connections_and_delays() -> None:
    import time

    from permgen.errors import EndpointError

    with Emulator(Backend()) as emu:
        ram = SdkRamClient(
            AccessKey(ADMIN_KEY_ID, Secret(ADMIN_KEY_SECRET)),
            ClientConfig(endpoint=emu.url, max_attempts=2, backoff_base=0.01),
        )
        emu.inject("ListPolicies", drop=True, times=1)
        assert ram.list_policies("System")  # a read: the dropped attempt is retried
        emu.inject("CreatePolicy", drop=True, times=1)
        with pytest.raises(EndpointError):
            ram.create_policy("p", DOC)  # a write is not retried
        emu.inject("GetPolicy", code="", delay=0.4, times=1)
        start = time.perf_counter()
        assert ram.get_policy("AliyunOSSFullAccess", "System").policy_name == "AliyunOSSFullAccess"
        assert time.perf_counter() - start >= 0.4


def test_credentials_come_from_flags_then_environment_then_the_cli_profile(tmp_path: Any) -> None:
    from permgen.account.credentials import resolve
    from permgen.errors import InputError

    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps({"current": "sts", "profiles": [
        {"name": "ak", "mode": "AK", "access_key_id": "LTAIprofile", "access_key_secret": "p-secret"},
        {"name": "sts", "mode": "StsToken", "access_key_id": "STS.profile", "access_key_secret": "s-secret", "sts_token": "tok"},
        {"name": "odd", "mode": "EcsRamRole"},
    ]}))  # fmt: skip
    env = {"ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIenv", "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "e-secret"}
    assert (
        resolve(
            access_key_id="LTAIflag", access_key_secret="f", environ=env, config_path=cfg
        ).access_key_id
        == "LTAIflag"
    )
    assert resolve(environ=env, config_path=cfg).access_key_id == "LTAIenv"
    current = resolve(environ={}, config_path=cfg)
    assert (current.access_key_id, current.security_token is not None) == ("STS.profile", True)
    assert resolve(profile="ak", environ=env, config_path=cfg).access_key_id == "LTAIprofile"
    with pytest.raises(InputError, match="mode 'EcsRamRole'"):
        resolve(profile="odd", environ={}, config_path=cfg)
    with pytest.raises(InputError, match="no credentials"):
        resolve(environ={}, config_path=tmp_path / "missing.json")
    with pytest.raises(InputError, match="both"):
        resolve(access_key_id="LTAIonly", environ={}, config_path=cfg)


def test_list_users_groups_and_roles_follow_the_marker() -> None:
    """permgen audit reads every principal through the real SDK: ListUsers, ListGroups and
    ListRoles page with MaxItems and Marker, and GetRole returns the trust policy."""
    backend = Backend()
    root = backend.keys[ADMIN_KEY_ID]
    names = [f"u{i}" for i in range(5)]
    for n in names:
        backend.CreateUser({"UserName": n}, root)
        backend.CreateGroup({"GroupName": f"g-{n}"}, root)
    trust = {
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Principal": {"RAM": "x"}}]
    }
    backend.CreateRole({"RoleName": "etl", "AssumeRolePolicyDocument": json.dumps(trust)}, root)
    with Emulator(backend) as emu:
        ram = SdkRamClient(
            AccessKey(ADMIN_KEY_ID, Secret(ADMIN_KEY_SECRET)),
            ClientConfig(endpoint=emu.url, max_attempts=1),
        )
        page = ram.invoke("ListUsers", {"MaxItems": "2"})
        assert [u["UserName"] for u in page["Users"]["User"]] == ["u0", "u1"]
        assert str(page["IsTruncated"]).lower() == "true"
        rest = ram.invoke("ListUsers", {"MaxItems": "2", "Marker": page["Marker"]})
        assert [u["UserName"] for u in rest["Users"]["User"]] == ["u2", "u3"]
        assert [n for n, _ in ram.list_users()] == names
        assert all(uid == backend.users[n] for n, uid in ram.list_users())
        assert ram.list_groups() == [f"g-{n}" for n in names]
        assert ram.list_roles() == ["etl"]
        assert json.loads(ram.get_role_trust("etl")) == trust
        assert _code(ram.invoke, "ListUsers", {"MaxItems": "0"}) == "InvalidParameter.MaxItems"
        assert _code(ram.invoke, "ListRoles", {"Marker": "%%"}) == "InvalidParameter.Marker"
