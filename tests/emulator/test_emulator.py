"""The emulator, driven by Alibaba's real SDK over HTTP (no mock anywhere)."""

from __future__ import annotations

import base64
import json
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlencode

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.auth.credentials import StsTokenCredential
from aliyunsdkcore.client import AcsClient
from aliyunsdkcore.request import CommonRequest

from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET, Backend, Emulator
from permgen.emulator.signing import signature, string_to_sign
from tests.conftest import OPEN_SDK_CLIENTS

REGION = "cn-hangzhou"
PROXY_GUARD = {"http": None, "https": "http://127.0.0.1:9"}  # nothing may leave for the real cloud


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(clock: Clock) -> Iterator[Emulator]:
    with Emulator(Backend(clock=clock)) as emu:
        yield emu


def client(
    emu: Emulator,
    ak: str | None = ADMIN_KEY_ID,
    secret: str | None = ADMIN_KEY_SECRET,
    credential: Any = None,
) -> AcsClient:
    c = AcsClient(
        ak, secret, REGION, credential=credential, connect_timeout=2, timeout=5, proxy=PROXY_GUARD
    )
    for product in ("Ram", "Sts"):
        c.add_endpoint(REGION, product, emu.url)
    OPEN_SDK_CLIENTS.append(c)  # its connections are closed when the test ends
    return c


def call(c: AcsClient, action: str, product: str = "Ram", **params: str) -> dict[str, Any]:
    req = CommonRequest()
    req.set_product(product)
    req.set_version("2015-05-01" if product == "Ram" else "2015-04-01")
    req.set_action_name(action)
    req.set_method("POST")
    req.set_protocol_type("http")
    for k, v in params.items():
        req.add_query_param(k, v)
    data: dict[str, Any] = json.loads(c.do_action_with_exception(req))
    return data


def error_code(c: AcsClient, action: str, product: str = "Ram", **params: str) -> str:
    with pytest.raises(ServerException) as info:
        call(c, action, product, **params)
    return str(info.value.get_error_code())


def attach_system(admin: AcsClient, user: str, policy: str) -> None:
    """Attach a system policy (``AliyunSTSAssumeRoleAccess`` ...) to a RAM user."""
    call(admin, "AttachPolicyToUser", PolicyType="System", PolicyName=policy, UserName=user)


DOC = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "acs:oss:*:*:b/*"}
        ],
    }
)
TRUST = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": ["acs:ram::1234567890123456:root"]},
            }
        ],
    }
)


def test_policies_round_trip_through_the_sdk(emulator: Emulator) -> None:
    c = client(emulator)
    call(c, "CreateUser", UserName="alice")
    created = call(c, "CreatePolicy", PolicyName="reader", PolicyDocument=DOC, Description="d")
    assert created["Policy"]["DefaultVersion"] == "v1"
    call(c, "AttachPolicyToUser", UserName="alice", PolicyName="reader", PolicyType="Custom")
    listed = call(c, "ListPoliciesForUser", UserName="alice")
    assert [(p["PolicyName"], p["PolicyType"]) for p in listed["Policies"]["Policy"]] == [
        ("reader", "Custom")
    ]
    version = call(c, "GetPolicyVersion", PolicyName="reader", PolicyType="Custom", VersionId="v1")
    assert json.loads(version["PolicyVersion"]["PolicyDocument"]) == json.loads(DOC)
    assert (
        error_code(
            c, "AttachPolicyToUser", UserName="alice", PolicyName="reader", PolicyType="Custom"
        )
        == "EntityAlreadyExists.User.Policy"
    )
    assert (
        error_code(c, "CreatePolicy", PolicyName="reader", PolicyDocument=DOC)
        == "EntityAlreadyExists.Policy"
    )
    assert (
        error_code(c, "GetPolicy", PolicyName="nope", PolicyType="Custom")
        == "EntityNotExist.Policy"
    )
    assert (
        error_code(c, "CreatePolicy", PolicyName="bad_name", PolicyDocument=DOC)
        == "InvalidParameter.PolicyName.InvalidChars"
    )
    assert (
        error_code(c, "CreatePolicy", PolicyName="broken", PolicyDocument='{"Version": "1"}')
        == "MalformedPolicyDocument"
    )
    assert error_code(c, "DeletePolicy", PolicyName="reader") == "DeleteConflict.Policy.User"
    system = call(c, "GetPolicy", PolicyName="AliyunOSSReadOnlyAccess", PolicyType="System")
    assert system["Policy"]["PolicyType"] == "System"


def test_the_version_limit_and_rotation(emulator: Emulator) -> None:
    c = client(emulator)
    call(c, "CreatePolicy", PolicyName="p", PolicyDocument=DOC)
    for _ in range(4):
        call(c, "CreatePolicyVersion", PolicyName="p", PolicyDocument=DOC, SetAsDefault="true")
    assert (
        error_code(c, "CreatePolicyVersion", PolicyName="p", PolicyDocument=DOC)
        == "LimitExceeded.Policy.Version"
    )
    rotated = call(
        c,
        "CreatePolicyVersion",
        PolicyName="p",
        PolicyDocument=DOC,
        SetAsDefault="True",
        RotateStrategy="DeleteOldestNonDefaultVersionWhenLimitExceeded",
    )
    assert rotated["PolicyVersion"]["VersionId"] == "v6"
    versions = [
        v["VersionId"]
        for v in call(c, "ListPolicyVersions", PolicyName="p", PolicyType="Custom")[
            "PolicyVersions"
        ]["PolicyVersion"]
    ]
    assert versions == ["v2", "v3", "v4", "v5", "v6"]
    assert (
        error_code(c, "DeletePolicyVersion", PolicyName="p", VersionId="v6")
        == "DeleteConflict.Policy.Version.Default"
    )


def _assume(emulator: Emulator, **extra: str) -> tuple[AcsClient, dict[str, Any]]:
    admin = client(emulator)
    call(admin, "CreateUser", UserName="app")
    call(
        admin,
        "CreateRole",
        RoleName="uploader",
        AssumeRolePolicyDocument=TRUST,
        MaxSessionDuration="3600",
    )
    attach_system(admin, "app", "AliyunSTSAssumeRoleAccess")
    user_key = emulator.backend.add_key("user/app")
    app = client(emulator, user_key.key_id, user_key.secret)
    params = {
        "RoleArn": "acs:ram::1234567890123456:role/uploader",
        "RoleSessionName": "alice-upload",
        "DurationSeconds": "900",
    }
    params.update(extra)
    return app, call(app, "AssumeRole", "Sts", **params)


def test_assume_role_and_use_the_token(emulator: Emulator, clock: Clock) -> None:
    session_policy = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {"Effect": "Allow", "Action": "oss:PutObject", "Resource": "acs:oss:*:*:up/alice/*"}
            ],
        }
    )
    _, out = _assume(emulator, Policy=session_policy)
    creds = out["Credentials"]
    assert creds["AccessKeyId"].startswith("STS.")
    assert out["AssumedRoleUser"]["Arn"] == "acs:ram::1234567890123456:role/uploader/alice-upload"
    sts_client = client(
        emulator,
        None,
        None,
        StsTokenCredential(creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"]),
    )
    me = call(sts_client, "GetCallerIdentity", "Sts")
    assert me["IdentityType"] == "AssumedRoleUser"
    assert me["Arn"] == "acs:ram::1234567890123456:role/uploader/alice-upload"
    clock.now += 901  # the emulator's clock: the 900-second token has expired
    expired = client(
        emulator,
        None,
        None,
        StsTokenCredential(creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"]),
    )
    assert error_code(expired, "GetCallerIdentity", "Sts") == "InvalidSecurityToken.Expired"


def test_a_forged_token_is_refused(emulator: Emulator) -> None:
    _, out = _assume(emulator)
    creds = out["Credentials"]
    forged = client(
        emulator,
        None,
        None,
        StsTokenCredential(
            creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"] + "x"
        ),
    )
    assert (
        error_code(forged, "GetCallerIdentity", "Sts")
        == "InvalidSecurityToken.MismatchWithAccessKey"
    )


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"DurationSeconds": "600"}, "InvalidParameter.DurationSeconds"),
        ({"DurationSeconds": "7200"}, "InvalidParameter.DurationSeconds"),
        ({"RoleSessionName": "x"}, "InvalidParameter.RoleSessionName"),
        ({"RoleSessionName": "bad name"}, "InvalidParameter.RoleSessionName"),
        ({"RoleArn": "acs:ram::1234567890123456:role/nope"}, "EntityNotExist.Role"),
        ({"RoleArn": "arn:aws:iam::1:role/x"}, "InvalidParameter.RoleArn"),
        ({"Policy": '{"Version": "1"}'}, "InvalidParameter.PolicyGrammar"),
        (
            {
                "Policy": json.dumps(
                    {
                        "Version": "1",
                        "Statement": [
                            {
                                "Effect": "Allow",
                                "Action": "oss:GetObject",
                                "Resource": [
                                    "acs:oss:*:*:b/" + "x" * 60 + f"{i}/*" for i in range(40)
                                ],
                            }
                        ],
                    }
                )
            },
            "InvalidParameter.PolicySize",
        ),
    ],
)
def test_assume_role_checks(emulator: Emulator, extra: dict[str, str], code: str) -> None:
    with pytest.raises(ServerException) as info:
        _assume(emulator, **extra)
    assert info.value.get_error_code() == code


def test_root_may_not_assume_roles(emulator: Emulator) -> None:
    admin = client(emulator)
    call(admin, "CreateRole", RoleName="r", AssumeRolePolicyDocument=TRUST)
    assert (
        error_code(
            admin,
            "AssumeRole",
            "Sts",
            RoleArn="acs:ram::1234567890123456:role/r",
            RoleSessionName="s1",
            DurationSeconds="900",
        )
        == "NoPermission"
    )


def test_list_policies_pages_like_ram(emulator: Emulator) -> None:
    c = client(emulator)
    for i in range(5):
        call(c, "CreatePolicy", PolicyName=f"page-{i}", PolicyDocument=DOC)
    first = call(c, "ListPolicies", PolicyType="Custom", MaxItems="2")
    assert [p["PolicyName"] for p in first["Policies"]["Policy"]] == ["page-0", "page-1"]
    assert first["IsTruncated"] is True and first["Marker"]
    rest = call(c, "ListPolicies", PolicyType="Custom", MaxItems="1000", Marker=first["Marker"])
    assert [p["PolicyName"] for p in rest["Policies"]["Policy"]] == ["page-2", "page-3", "page-4"]
    assert rest["IsTruncated"] is False and "Marker" not in rest
    default = call(c, "ListPolicies")
    assert len(default["Policies"]["Policy"]) <= 100  # RAM's default page size
    for bad in ("0", "1001", "x"):
        assert error_code(c, "ListPolicies", MaxItems=bad) == "InvalidParameter.MaxItems"
    assert error_code(c, "ListPolicies", Marker="not-a-marker") == "InvalidParameter.Marker"
    negative = base64.urlsafe_b64encode(b"policies:-2").decode()
    assert error_code(c, "ListPolicies", Marker=negative) == "InvalidParameter.Marker"


def _user_with_key(emulator: Emulator, name: str, *system_policies: str) -> AcsClient:
    admin = client(emulator)
    call(admin, "CreateUser", UserName=name)
    for policy in system_policies:
        attach_system(admin, name, policy)
    key = emulator.backend.add_key(f"user/{name}")
    return client(emulator, key.key_id, key.secret)


def test_a_ram_user_may_do_only_what_its_policies_allow(emulator: Emulator) -> None:
    nobody = _user_with_key(emulator, "nobody")
    assert error_code(nobody, "ListPolicies") == "NoPermission"
    assert call(nobody, "GetCallerIdentity", "Sts")["Arn"].endswith(":user/nobody")  # needs none
    # the role trusts the account, but sts:AssumeRole is a permission of the caller too
    admin = client(emulator)
    call(admin, "CreateRole", RoleName="trusting", AssumeRolePolicyDocument=TRUST)
    assume = {"RoleArn": "acs:ram::1234567890123456:role/trusting", "RoleSessionName": "s1"}
    assert error_code(nobody, "AssumeRole", "Sts", **assume) == "NoPermission"
    attach_system(admin, "nobody", "AliyunSTSAssumeRoleAccess")
    assert call(nobody, "AssumeRole", "Sts", **assume)["Credentials"]["AccessKeyId"]
    reader = _user_with_key(emulator, "reader", "AliyunRAMReadOnlyAccess")
    assert "Policies" in call(reader, "ListPolicies")
    assert error_code(reader, "CreatePolicy", PolicyName="x", PolicyDocument=DOC) == "NoPermission"


def test_group_policies_and_resource_patterns_apply(emulator: Emulator) -> None:
    admin = client(emulator)
    team_only = json.dumps(
        {
            "Version": "1",
            "Statement": [
                {
                    "Effect": "Allow",
                    "Action": "ram:CreatePolicy",
                    "Resource": "acs:ram:*:1234567890123456:policy/team-*",
                }
            ],
        }
    )
    call(admin, "CreatePolicy", PolicyName="create-team-policies", PolicyDocument=team_only)
    call(admin, "CreateGroup", GroupName="platform")
    call(
        admin,
        "AttachPolicyToGroup",
        PolicyType="Custom",
        PolicyName="create-team-policies",
        GroupName="platform",
    )
    dev = _user_with_key(emulator, "dev")
    assert error_code(dev, "CreatePolicy", PolicyName="team-a", PolicyDocument=DOC) == (
        "NoPermission"
    )
    call(admin, "AddUserToGroup", UserName="dev", GroupName="platform")  # now the group's grant
    call(dev, "CreatePolicy", PolicyName="team-a", PolicyDocument=DOC)
    assert error_code(dev, "CreatePolicy", PolicyName="other", PolicyDocument=DOC) == (
        "NoPermission"
    )


@pytest.mark.parametrize(
    ("condition", "allowed"),
    [
        ({"IpAddress": {"acs:SourceIp": ["127.0.0.0/8"]}}, True),
        ({"IpAddress": {"acs:SourceIp": ["10.0.0.0/8"]}}, False),
        ({"Bool": {"acs:SecureTransport": ["true"]}}, False),  # the emulator speaks HTTP
        ({"DateLessThan": {"acs:CurrentTime": ["2001-01-01T00:00:00Z"]}}, False),
        ({"DateGreaterThan": {"acs:CurrentTime": ["2001-01-01T00:00:00Z"]}}, True),
    ],
)
def test_conditions_on_the_caller_see_the_requests_keys(
    emulator: Emulator, condition: dict[str, Any], allowed: bool
) -> None:
    admin = client(emulator)
    doc = {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "ram:ListPolicies",
                "Resource": "*",
                "Condition": condition,
            }
        ],
    }
    call(admin, "CreatePolicy", PolicyName="conditional", PolicyDocument=json.dumps(doc))
    user = _user_with_key(emulator, "ci-deployer")
    call(
        admin,
        "AttachPolicyToUser",
        PolicyType="Custom",
        PolicyName="conditional",
        UserName="ci-deployer",
    )
    if allowed:
        assert "Policies" in call(user, "ListPolicies")
    else:
        assert error_code(user, "ListPolicies") == "NoPermission"


def test_an_sts_token_is_narrowed_by_its_session_policy(emulator: Emulator) -> None:
    admin = client(emulator)
    call(admin, "CreateRole", RoleName="auditor", AssumeRolePolicyDocument=TRUST)
    call(
        admin,
        "AttachPolicyToRole",
        PolicyType="System",
        PolicyName="AliyunRAMReadOnlyAccess",
        RoleName="auditor",
    )
    vendor = _user_with_key(emulator, "vendor", "AliyunSTSAssumeRoleAccess")
    only_get = json.dumps(
        {
            "Version": "1",
            "Statement": [{"Effect": "Allow", "Action": "ram:GetPolicy", "Resource": "*"}],
        }
    )
    tokens: dict[str, AcsClient] = {}
    for label, extra in (("full", {}), ("narrow", {"Policy": only_get})):
        creds = call(
            vendor,
            "AssumeRole",
            "Sts",
            RoleArn="acs:ram::1234567890123456:role/auditor",
            RoleSessionName=f"audit-{label}",
            **extra,
        )["Credentials"]
        tokens[label] = client(
            emulator,
            None,
            None,
            StsTokenCredential(
                creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"]
            ),
        )
    # the role's read-only policy: reads work, writes do not
    assert "Policies" in call(tokens["full"], "ListPolicies")
    assert (
        error_code(tokens["full"], "CreatePolicy", PolicyName="x", PolicyDocument=DOC)
        == "NoPermission"
    )
    narrow = tokens["narrow"]
    system = call(narrow, "GetPolicy", PolicyName="AliyunRAMFullAccess", PolicyType="System")
    assert system["Policy"]["PolicyName"] == "AliyunRAMFullAccess"
    assert error_code(narrow, "ListPolicies") == "NoPermission"  # the role may; the token not


def test_a_wrong_secret_is_refused(emulator: Emulator) -> None:
    from aliyunsdkram.request.v20150501.ListPoliciesRequest import ListPoliciesRequest

    bad = client(emulator, ADMIN_KEY_ID, "not-the-secret")
    with pytest.raises(ServerException) as info:
        bad.do_action_with_exception(ListPoliciesRequest())
    # the SDK turns SignatureDoesNotMatch into this when both strings to sign agree
    assert info.value.get_error_code() == "InvalidAccessKeySecret"
    assert "not-the-secret" not in str(info.value)
    assert error_code(bad, "ListPolicies") == "SignatureDoesNotMatch"


def test_an_unknown_key_is_refused(emulator: Emulator) -> None:
    assert (
        error_code(client(emulator, "LTAIunknown", "x"), "ListPolicies")
        == "InvalidAccessKeyId.NotFound"
    )


def _signed_url(emu: Emulator, nonce: str, timestamp: str) -> str:
    params = {
        "Action": "ListPolicies", "Version": "2015-05-01", "Format": "JSON", "AccessKeyId": ADMIN_KEY_ID,
        "SignatureMethod": "HMAC-SHA1", "SignatureVersion": "1.0", "SignatureType": "",
        "SignatureNonce": nonce, "Timestamp": timestamp, "RegionId": REGION,
    }  # fmt: skip
    params["Signature"] = signature(string_to_sign("POST", params), ADMIN_KEY_SECRET)
    return f"{emu.url}/?{urlencode(params)}"


def _post(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(
            urllib.request.Request(url, data=b"", method="POST"), timeout=5
        ) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def test_a_replayed_nonce_and_an_old_timestamp_are_refused(emulator: Emulator) -> None:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    url = _signed_url(emulator, uuid.uuid4().hex, now)
    assert _post(url)[0] == 200
    status, body = _post(url)
    assert (status, body["Code"]) == (400, "SignatureNonceUsed")
    old = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3600))
    status, body = _post(_signed_url(emulator, uuid.uuid4().hex, old))
    assert (status, body["Code"]) == (400, "InvalidTimeStamp.Expired")


def test_injected_faults(emulator: Emulator) -> None:
    c = client(emulator)
    emulator.inject("ListPolicies", "Throttling.User", 400, times=2)
    assert error_code(c, "ListPolicies") == "Throttling.User"
    assert error_code(c, "ListPolicies") == "Throttling.User"
    assert "Policies" in call(c, "ListPolicies")
    emulator.inject("ListPolicies", "InternalError", 500)
    with pytest.raises(ServerException) as info:
        call(c, "ListPolicies")
    assert (info.value.get_error_code(), info.value.get_http_status()) == ("InternalError", 500)


def test_the_coverage_list_is_current() -> None:
    from pathlib import Path

    from permgen.emulator import coverage_markdown

    text = (Path(__file__).resolve().parents[2] / "docs" / "emulator.md").read_text()
    assert coverage_markdown() in text


def test_the_emulator_command_prints_its_endpoint_and_stops_on_sigterm() -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.Popen(
        [sys.executable, "-m", "permgen", "emulator", "--port", "0"],
        stdout=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        assert proc.stdout is not None
        lines = [proc.stdout.readline().strip() for _ in range(4)]
        exports = dict(line.removeprefix("export ").split("=", 1) for line in lines)
        assert exports["ALIBABA_CLOUD_ACCESS_KEY_ID"] == ADMIN_KEY_ID
        url = exports["PERMGEN_ENDPOINT"]
        assert url.startswith("http://127.0.0.1:")
        assert exports["PERMGEN_OSS_ENDPOINT"] == url  # OSS REST beside the RPC API

        class _At:
            pass

        target = _At()
        target.url = url  # type: ignore[attr-defined]
        c = client(
            target,
            exports["ALIBABA_CLOUD_ACCESS_KEY_ID"],
            exports["ALIBABA_CLOUD_ACCESS_KEY_SECRET"],
        )  # type: ignore[arg-type]
        assert "Policies" in call(c, "ListPolicies")
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        if proc.stdout:
            proc.stdout.close()


def test_seed_and_state_files(tmp_path: Any) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    seed = tmp_path / "seed.yaml"
    seed.write_text(
        "users:\n"
        "  - {name: alice, groups: [devs], access_keys: [{id: LTAI-alice-test-key, secret: alice-test-secret}]}\n"
        "roles:\n  - {name: uploader, max_session: 7200}\n"
        "policies:\n  - {name: reader, document: {Version: '1', Statement: [{Effect: Allow, Action: oss:GetObject, Resource: 'acs:oss:*:*:b/*'}]}}\n"
        "attachments:\n  - {policy: reader, to: 'group:devs'}\n  - {policy: AliyunRAMFullAccess, type: System, to: 'user:alice'}\n"
        "faults:\n  - {action: GetPolicy, code: Throttling, status: 400, times: 1}\n"
    )
    state = tmp_path / "state.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}

    def start(*args: str) -> tuple[subprocess.Popen[str], str]:
        proc = subprocess.Popen(
            [sys.executable, "-m", "permgen", "emulator", *args],
            stdout=subprocess.PIPE,
            text=True,
            env=env,
        )
        assert proc.stdout is not None
        url = proc.stdout.readline().strip().split("=", 1)[1]
        proc.stdout.readline()
        proc.stdout.readline()
        return proc, url

    class _At:
        def __init__(self, url: str) -> None:
            self.url = url

    proc, url = start("--seed", str(seed), "--state", str(state))
    try:
        alice = client(_At(url), "LTAI-alice-test-key", "alice-test-secret")  # type: ignore[arg-type]
        groups = call(alice, "ListGroupsForUser", UserName="alice")["Groups"]["Group"]
        assert [g["GroupName"] for g in groups] == ["devs"]
        assert (
            error_code(alice, "GetPolicy", PolicyName="reader", PolicyType="Custom") == "Throttling"
        )
        assert (
            call(alice, "GetPolicy", PolicyName="reader", PolicyType="Custom")["Policy"][
                "PolicyName"
            ]
            == "reader"
        )
        call(alice, "CreatePolicy", PolicyName="later", PolicyDocument=DOC)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        if proc.stdout:
            proc.stdout.close()
    assert oct(state.stat().st_mode & 0o777) == "0o600"
    proc, url = start("--state", str(state))
    try:
        alice = client(_At(url), "LTAI-alice-test-key", "alice-test-secret")  # type: ignore[arg-type]
        names = {
            p["PolicyName"]
            for p in call(alice, "ListPolicies", PolicyType="Custom")["Policies"]["Policy"]
        }
        assert names == {"reader", "later"}
        attached = call(alice, "ListPoliciesForUser", UserName="alice")["Policies"]["Policy"]
        assert [(p["PolicyName"], p["PolicyType"]) for p in attached] == [
            ("AliyunRAMFullAccess", "System")
        ]
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        if proc.stdout:
            proc.stdout.close()


def test_a_bad_seed_file_is_bad_input(tmp_path: Any) -> None:
    from tests.conftest import run_cli

    seed = tmp_path / "seed.yaml"
    seed.write_text("attachments:\n  - {policy: nope, to: 'user:ghost'}\n")
    result = run_cli("emulator", "--seed", str(seed))
    assert result.exit_code == 2
    assert "EntityNotExist.User" in result.output


def test_nonces_are_forgotten_once_their_timestamp_is_out_of_the_window() -> None:
    start = time.time()
    wall = [start]
    with Emulator(Backend(), wall_clock=lambda: wall[0]) as emu:

        def stamp() -> str:
            return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(wall[0]))

        first = _signed_url(emu, "nonce-1", stamp())
        assert _post(first)[0] == 200
        wall[0] = start + 14 * 60  # still inside the window: a replay is a reused nonce
        assert _post(first)[1]["Code"] == "SignatureNonceUsed"
        assert emu.nonces_kept == 1
        # churn: a request a minute for two hours keeps about one window of nonces
        for minute in range(120):
            wall[0] = start + 16 * 60 + minute * 60
            assert _post(_signed_url(emu, f"churn-{minute}", stamp()))[0] == 200
            assert emu.nonces_kept <= 17
        assert emu.nonces_kept >= 15
        # the first nonce was forgotten; its replay is refused for its timestamp instead
        assert _post(first)[1]["Code"] == "InvalidTimeStamp.Expired"
        # and a fresh request may not reuse a nonce still in the window
        assert _post(_signed_url(emu, "churn-119", stamp()))[1]["Code"] == "SignatureNonceUsed"
