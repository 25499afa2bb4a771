"""RAM user, group and role names are unique without regard to case; lookup and
authorization agree on it, in the emulator and in the evaluator (docs/unconfirmed.md).

Reproduction: a Deny on ``role/admin-role`` was bypassed by assuming ``role/Admin-Role``,
because the emulator found the role ignoring case but authorized the request's spelling."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from aliyunsdkcore.acs_exception.exceptions import ServerException
from aliyunsdkcore.client import AcsClient
from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.emulator import Backend, Emulator
from permgen.policy.model import parse_policy
from permgen.semantics import Evaluator, Request
from permgen.semantics.evaluate import resource_case_insensitive
from tests.emulator.test_emulator import TRUST, Clock, call, client, error_code

ACCOUNT = "1234567890123456"


def _policy(*statements: dict[str, object]) -> str:
    return json.dumps({"Version": "1", "Statement": list(statements)})


ALLOW_ASSUME = {"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}
DENY_ADMIN = {
    "Effect": "Deny",
    "Action": "sts:AssumeRole",
    "Resource": f"acs:ram:*:{ACCOUNT}:role/admin-role",
}


@pytest.fixture
def account() -> Iterator[tuple[Emulator, AcsClient]]:
    """A user allowed to assume any role except admin-role; yields (emulator, its client)."""
    with Emulator(Backend(clock=Clock())) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="dev")
        for role in ("admin-role", "Build-Role"):
            call(admin, "CreateRole", RoleName=role, AssumeRolePolicyDocument=TRUST)
        call(
            admin,
            "CreatePolicy",
            PolicyName="assume",
            PolicyDocument=_policy(ALLOW_ASSUME, DENY_ADMIN),
        )
        call(admin, "AttachPolicyToUser", PolicyName="assume", PolicyType="Custom", UserName="dev")
        key = emu.backend.add_key("user/dev")
        yield emu, client(emu, key.key_id, key.secret)


def _assume(dev: AcsClient, role: str) -> str:
    """ "ok", or the error code of assuming ``role`` spelt this way."""
    arn = f"acs:ram::{ACCOUNT}:role/{role}"
    try:
        call(dev, "AssumeRole", "Sts", RoleArn=arn, RoleSessionName="s1", DurationSeconds="900")
    except ServerException as exc:
        return str(exc.get_error_code())
    return "ok"


@pytest.mark.parametrize("spelling", ["admin-role", "Admin-Role", "ADMIN-ROLE", "aDmIn-RoLe"])
def test_a_deny_on_a_role_cannot_be_bypassed_by_its_case(
    account: tuple[Emulator, AcsClient], spelling: str
) -> None:
    _, dev = account
    assert _assume(dev, spelling) == "NoPermission"


@pytest.mark.parametrize("spelling", ["Build-Role", "build-role", "BUILD-ROLE"])
def test_any_spelling_reaches_the_one_role(
    account: tuple[Emulator, AcsClient], spelling: str
) -> None:
    emu, dev = account
    assert _assume(dev, spelling) == "ok"
    # the session is of the stored role
    session = [k for k in emu.backend.keys.values() if k.principal.startswith("role/")][-1]
    assert session.principal == "role/Build-Role/s1"


def test_names_are_unique_without_regard_to_case(account: tuple[Emulator, AcsClient]) -> None:
    emu, _ = account
    admin = client(emu)
    assert (
        error_code(admin, "CreateRole", RoleName="ADMIN-role", AssumeRolePolicyDocument=TRUST)
        == "EntityAlreadyExists.Role"
    )
    assert error_code(admin, "CreateUser", UserName="DEV") == "EntityAlreadyExists.User"
    call(admin, "CreateGroup", GroupName="ops")
    assert error_code(admin, "CreateGroup", GroupName="Ops") == "EntityAlreadyExists.Group"
    # and every lookup finds the stored entity
    assert call(admin, "GetRole", RoleName="BUILD-role")["Role"]["RoleName"] == "Build-Role"
    assert call(admin, "GetUser", UserName="Dev")["User"]["UserName"] == "dev"
    call(admin, "AddUserToGroup", UserName="DEV", GroupName="OPS")
    groups = call(admin, "ListGroupsForUser", UserName="dev")["Groups"]["Group"]
    assert [g["GroupName"] for g in groups] == ["ops"]


def test_ram_actions_are_authorized_on_the_stored_spelling(
    account: tuple[Emulator, AcsClient],
) -> None:
    """A Deny written for ``user/dev`` covers a request that spells it ``DEV``."""
    emu, _ = account
    admin = client(emu)
    call(admin, "CreateUser", UserName="ops-bot")
    reader = _policy(
        {"Effect": "Allow", "Action": "ram:List*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ram:List*", "Resource": f"acs:ram:*:{ACCOUNT}:user/dev"},
    )
    call(admin, "CreatePolicy", PolicyName="reader", PolicyDocument=reader)
    call(admin, "AttachPolicyToUser", PolicyName="reader", PolicyType="Custom", UserName="ops-bot")
    key = emu.backend.add_key("user/ops-bot")
    bot = client(emu, key.key_id, key.secret)
    for spelling in ("dev", "DEV", "Dev"):
        assert error_code(bot, "ListPoliciesForUser", UserName=spelling) == "NoPermission"
    assert call(bot, "ListPoliciesForUser", UserName="ops-bot")["Policies"]["Policy"]


# --------------------------------------------------------------------------- evaluator


def _flip_case(data: st.DataObject, text: str) -> str:
    flips = data.draw(st.lists(st.booleans(), min_size=len(text), max_size=len(text)))
    return "".join(c.swapcase() if f else c for c, f in zip(text, flips, strict=True))


_ENTITY = st.sampled_from(["user", "group", "role"])
_NAME = st.from_regex(r"[A-Za-z][A-Za-z0-9.-]{0,20}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(kind=_ENTITY, name=_NAME, data=st.data())
def test_a_deny_on_a_ram_entity_applies_to_every_spelling(
    kind: str, name: str, data: st.DataObject
) -> None:
    """Property: an Allow on everything and a Deny on one RAM entity never allows that
    entity in any case; an Allow on the entity alone allows only its exact spelling."""
    pattern = f"acs:ram:*:{ACCOUNT}:{kind}/{name}"
    requested = f"acs:ram:*:{ACCOUNT}:{kind}/{_flip_case(data, name)}"
    denied = Evaluator(
        [
            parse_policy(
                _policy(
                    {"Effect": "Allow", "Action": "ram:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "ram:*", "Resource": pattern},
                )
            )
        ]
    )
    assert not denied.allows(Request("ram:GetUser", requested))
    allowed = Evaluator(
        [parse_policy(_policy({"Effect": "Allow", "Action": "ram:*", "Resource": pattern}))]
    )
    assert allowed.allows(Request("ram:GetUser", requested)) is (requested == pattern)
    # NotResource: the reading that grants less, too
    not_res = Evaluator(
        [
            parse_policy(
                _policy(
                    {"Effect": "Allow", "Action": "ram:*", "NotResource": pattern},
                )
            )
        ]
    )
    assert not not_res.allows(Request("ram:GetUser", requested))
    deny_not = Evaluator(
        [
            parse_policy(
                _policy(
                    {"Effect": "Allow", "Action": "ram:*", "Resource": "*"},
                    {"Effect": "Deny", "Action": "ram:*", "NotResource": pattern},
                )
            )
        ]
    )
    assert deny_not.allows(Request("ram:GetUser", requested)) is (requested == pattern)


@settings(max_examples=100, deadline=None)
@given(key=st.from_regex(r"[A-Za-z]{1,12}", fullmatch=True), data=st.data())
def test_oss_resources_keep_their_case_in_deny_too(key: str, data: st.DataObject) -> None:
    other = _flip_case(data, key)
    resource = f"acs:oss:*:{ACCOUNT}:bucket/{other}"
    ev = Evaluator(
        [
            parse_policy(
                _policy(
                    {"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"},
                    {
                        "Effect": "Deny",
                        "Action": "oss:GetObject",
                        "Resource": f"acs:oss:*:{ACCOUNT}:bucket/{key}",
                    },
                )
            )
        ]
    )
    assert ev.allows(Request("oss:GetObject", resource)) is (other != key)


def test_which_statements_ignore_case() -> None:
    arn = f"acs:ram:*:{ACCOUNT}:role/Admin"
    assert resource_case_insensitive(arn, deny=True, not_resource=False)
    assert resource_case_insensitive(arn, deny=False, not_resource=True)
    assert not resource_case_insensitive(arn, deny=False, not_resource=False)
    assert not resource_case_insensitive(arn, deny=True, not_resource=True)
    for other in (f"acs:ram:*:{ACCOUNT}:policy/P", f"acs:oss:*:{ACCOUNT}:role/x", "*"):
        assert not resource_case_insensitive(other, deny=True, not_resource=False)
