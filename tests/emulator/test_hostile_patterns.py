"""A session policy with a ``*a*a*...*b`` pattern, through the real SDK over HTTP: the
emulator authorizes with the linear-time matcher and stays responsive."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import pytest
from aliyunsdkcore.auth.credentials import StsTokenCredential

from permgen.emulator import Backend, Emulator
from tests.emulator.test_emulator import TRUST, _user_with_key, call, client, error_code


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    with Emulator(Backend()) as emu:
        yield emu


HOSTILE_SESSION_POLICY = (
    '{"Version": "1","Statement":[{"Effect":"Allow","Action":"ram:GetPolicy",'
    '"Resource":"acs:ram:*:*:policy/' + "*a" * 15 + '*b"}]}'
)


def test_a_hostile_session_policy_does_not_freeze_the_emulator(emulator: Emulator) -> None:
    assert len(HOSTILE_SESSION_POLICY.encode()) == 139  # the size of the reported one
    json.loads(HOSTILE_SESSION_POLICY)
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
    start = time.perf_counter()
    creds = call(
        vendor,
        "AssumeRole",
        "Sts",
        RoleArn="acs:ram::1234567890123456:role/auditor",
        RoleSessionName="hostile",
        Policy=HOSTILE_SESSION_POLICY,
    )["Credentials"]
    token = client(
        emulator,
        None,
        None,
        StsTokenCredential(creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"]),
    )
    # a 60-character name full of "a" and no "b": the pattern does not match, so NoPermission
    assert error_code(token, "GetPolicy", PolicyName="a" * 60) == "NoPermission"
    assert error_code(token, "GetPolicy", PolicyName="a" * 200) == "NoPermission"
    # the pattern does match a name ending in "b" (the policy does not exist: the token got in)
    assert error_code(token, "GetPolicy", PolicyName="a" * 60 + "b") == "EntityNotExist.Policy"
    # and the emulator still answers
    assert call(token, "GetCallerIdentity", "Sts")["IdentityType"] == "AssumedRoleUser"
    assert time.perf_counter() - start < 10  # a guard against hangs, not a benchmark
