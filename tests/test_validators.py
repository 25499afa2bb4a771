"""Names and values are validated with full-match semantics everywhere: ``$`` in a Python
regex also matches before a trailing newline, so no validator may rely on it.

One regression per reproduction, and a property per validator: a value with a newline or
any character outside the validator's class is refused, and a value the validator accepts
consists of that class only."""

from __future__ import annotations

import configparser
import json
import string
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.account.types import Secret, StsCredentials
from permgen.emulator.backend import Backend
from permgen.emulator.state import ADMIN_KEY_ID, EmulatorError, Key
from permgen.errors import InputError, UsageError
from permgen.lint.rules.statements import _bad_value
from permgen.spec.checks import _check_prefix
from permgen.spec.compile import session_policy
from permgen.spec.load import load_spec
from permgen.spec.types import check_placeholder_value
from permgen.sts.mint import session_name
from permgen.sts.profiles import check_profile_name, write_aliyun_profile, write_ossutil_profile
from tests.conftest import EXAMPLES

ALNUM = string.ascii_letters + string.digits


def _placeholder_value(v: str) -> bool:
    return check_placeholder_value("user", v) is None


def _placeholder_name(v: str) -> bool:
    return _check_prefix("incoming/{" + v + "}/") is None


def _session(v: str) -> bool:
    try:
        return session_name(v, "r", {}) == v
    except UsageError:
        return False


def _profile(v: str) -> bool:
    try:
        return check_profile_name(v) == v
    except UsageError:
        return False


def _backend() -> tuple[Backend, Key]:
    b = Backend()
    root = b.keys[ADMIN_KEY_ID]
    b.CreateUser({"UserName": "vendor"}, root)
    b.CreateRole(
        {
            "RoleName": "uploader",
            "AssumeRolePolicyDocument": json.dumps(
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
            ),
        },
        root,
    )
    b.AttachPolicyToUser(
        {"UserName": "vendor", "PolicyName": "AliyunSTSAssumeRoleAccess", "PolicyType": "System"},
        root,
    )
    return b, b.add_key("user/vendor")


BACKEND, VENDOR = _backend()
ARN = "acs:ram::1234567890123456:role/uploader"


def _emulator_code(**params: str) -> str:
    try:
        BACKEND.AssumeRole(
            {"RoleArn": ARN, "RoleSessionName": "s1", "DurationSeconds": "900", **params}, VENDOR
        )
    except EmulatorError as exc:
        return exc.code
    return "ok"


def _emulator_session(v: str) -> bool:
    return _emulator_code(RoleSessionName=v) == "ok"


def _emulator_policy_name(v: str) -> bool:
    try:
        Backend().CreatePolicy(
            {"PolicyName": v, "PolicyDocument": '{"Version":"1","Statement":[]}'},
            Key(ADMIN_KEY_ID, "x", "root"),
        )
    except EmulatorError:
        return False
    return True


#: (validator, the characters it allows, valid example)
VALIDATORS: dict[str, tuple[Callable[[str], bool], str, str]] = {
    "placeholder value": (_placeholder_value, ALNUM + "._@-", "alice"),
    "placeholder name": (_placeholder_name, ALNUM + "_", "user"),
    "--session": (_session, ALNUM + ".@_-", "session-1"),
    "--profile-name": (_profile, ALNUM + "._-", "uploads"),
    "emulator RoleSessionName": (_emulator_session, ALNUM + ".@_-", "session-1"),
    "emulator PolicyName": (_emulator_policy_name, ALNUM + "-", "reader"),
}

# --------------------------------------------------------------------------- regressions


@pytest.mark.parametrize("value", ["alice\n", "a" * 64 + "\n", "alice\r", "ali\nce"])
def test_a_placeholder_value_with_a_newline_is_refused(value: str) -> None:
    assert check_placeholder_value("user", value) is not None
    spec = load_spec(EXAMPLES / "platform.yaml")
    with pytest.raises(InputError):
        session_policy(spec, "mobile-uploader", {"user": value})


def test_a_placeholder_name_with_a_newline_is_refused() -> None:
    assert _check_prefix("incoming/{user\n}/") is not None


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"RoleArn": ARN + "\n"}, "InvalidParameter.RoleArn"),
        ({"RoleArn": "acs:ram::١٢٣٤٥٦٧٨٩٠١٢٣٤٥٦:role/uploader"}, "InvalidParameter.RoleArn"),
        ({"RoleSessionName": "alice\n"}, "InvalidParameter.RoleSessionName"),
        ({}, "ok"),
    ],
)
def test_the_emulator_validates_whole_values(params: dict[str, str], code: str) -> None:
    assert _emulator_code(**params) == code


def test_the_emulator_refuses_a_policy_name_with_a_newline() -> None:
    assert not _emulator_policy_name("reader\n")
    assert _emulator_policy_name("reader")


@pytest.mark.parametrize("value", ["²", "١٠", "10\n"])
def test_the_emulator_refuses_a_max_items_that_is_not_ascii_digits(value: str) -> None:
    with pytest.raises(EmulatorError) as info:
        Backend().ListPolicies({"MaxItems": value}, Key(ADMIN_KEY_ID, "x", "root"))
    assert info.value.code == "InvalidParameter.MaxItems"


def test_lint_refuses_a_date_with_a_trailing_newline() -> None:
    assert _bad_value("DateLessThan", "2026-01-31T23:59:59Z\n") is not None
    assert _bad_value("DateLessThan", "2026-01-31T23:59:59Z") is None


@pytest.mark.parametrize(
    "name", ["a]\n[default", "p\n", "my profile", "a=b", "[x", "x]", "", "-lead", "a" * 65]
)
def test_a_bad_profile_name_is_refused_before_anything_is_written(
    name: str, tmp_path: Path
) -> None:
    creds = StsCredentials("STS.k", Secret("s"), Secret("t"), "x")
    for writer in (write_ossutil_profile, write_aliyun_profile):
        path = tmp_path / f"{writer.__name__}.cfg"
        with pytest.raises(UsageError, match="--profile-name"):
            writer(path, name, creds, "cn-hangzhou")
        assert not path.exists()


# --------------------------------------------------------------------------- properties


def _outside(allowed: str) -> st.SearchStrategy[str]:
    return st.one_of(
        st.sampled_from("\n\r\t \x00\x0b\x0c\u2028]"),
        st.characters(blacklist_characters=allowed, blacklist_categories=("Cs",)),
    )


@pytest.mark.parametrize("which", sorted(VALIDATORS))
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_no_value_with_a_character_outside_the_class_passes(
    which: str, data: st.DataObject
) -> None:
    accepted, allowed, example = VALIDATORS[which]
    assert accepted(example)
    bad = data.draw(_outside(allowed), label="bad character")
    at = data.draw(st.integers(0, len(example)), label="position")
    assert not accepted(example[:at] + bad + example[at:])
    assert not accepted(example + bad)


@pytest.mark.parametrize("which", sorted(VALIDATORS))
@settings(max_examples=60, deadline=None)
@given(value=st.text(min_size=1, max_size=70))
def test_an_accepted_value_has_only_characters_of_the_class(which: str, value: str) -> None:
    accepted, allowed, _ = VALIDATORS[which]
    if accepted(value):
        assert all(c in allowed for c in value)


_PROFILE = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", fullmatch=True)


@settings(max_examples=80, deadline=None)
@given(name=_PROFILE)
def test_an_accepted_profile_name_is_exactly_one_section(
    name: str, tmp_path_factory: pytest.TempPathFactory
) -> None:
    """Property: every name the validator accepts round-trips through both writers as one
    profile of that name, and the sections already there are kept as they were."""
    check_profile_name(name)
    tmp = tmp_path_factory.mktemp("p")
    creds = StsCredentials("STS.k", Secret("sec"), Secret("tok"), "x")
    ini = tmp / "ossutilconfig"
    ini.write_text("[default]\nregion = cn-beijing\n")
    write_ossutil_profile(ini, name, creds, "cn-hangzhou")
    parser = configparser.ConfigParser(interpolation=None)
    parser.read_string(ini.read_text())
    assert parser.sections() == ["default", f"profile {name}"]
    assert parser[f"profile {name}"]["stsToken"] == "tok"
    assert dict(parser["default"]) == {"region": "cn-beijing"}
    cli = tmp / "config.json"
    write_aliyun_profile(cli, name, creds, "cn-hangzhou")
    profiles = json.loads(cli.read_text())["profiles"]
    assert [p["name"] for p in profiles] == [name]
