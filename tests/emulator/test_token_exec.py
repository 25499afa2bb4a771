"""``permgen token --exec``: the child's environment holds only the minted credentials,
signals reach it, exit codes follow the shell, and a command that cannot start is exit 2.

Every test mints for real: Alibaba's SDK against the emulator over HTTP."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.account.types import AccessKey, Secret, StsCredentials
from permgen.emulator import Backend, Emulator
from permgen.sts.profiles import CREDENTIAL_NAMES, child_environment, is_credential_variable
from tests.conftest import EXAMPLES, run_cli
from tests.emulator.test_emulator import TRUST, Clock, attach_system, call, client

SPEC = str(EXAMPLES / "platform.yaml")
MINT = ("token", "mobile-uploader", "--spec", SPEC, "--var", "user=alice")

#: Every variable that holds or selects a long-term credential in some tool (set in the
#: parent to recognisable values; none may reach the child).
LONG_TERM_ENV = {
    "ALIBABA_CLOUD_PROFILE": "long-term-profile",
    "ALIBABA_CLOUD_CREDENTIALS_FILE": "/home/u/.alibabacloud/credentials.ini",
    "ALIBABA_CLOUD_ROLE_ARN": "acs:ram::1234567890123456:role/admin",
    "ALIBABA_CLOUD_ROLE_SESSION_NAME": "ci",
    "ALIBABA_CLOUD_OIDC_PROVIDER_ARN": "acs:ram::1234567890123456:oidc-provider/gh",
    "ALIBABA_CLOUD_OIDC_TOKEN_FILE": "/var/run/oidc-token",
    "ALIBABA_CLOUD_ECS_METADATA": "ecs-admin-role",
    "ALIBABA_CLOUD_CREDENTIALS_URI": "http://127.0.0.1:9/creds",
    "ALIBABACLOUD_ACCESS_KEY_ID": "LTAI-fake-alias-1",
    "ALIBABACLOUD_ACCESS_KEY_SECRET": "long-term-alias-secret-1",
    "ALICLOUD_ACCESS_KEY": "LTAI-fake-alias-2",
    "ALICLOUD_SECRET_KEY": "long-term-alias-secret-2",
    "ALICLOUD_PROFILE": "long-term-profile",
    "ALICLOUD_SHARED_CREDENTIALS_FILE": "/home/u/.aliyun/config.json",
    # (only one of the ALIYUN_ pair: with both, permgen's own SDK would sign with them, which
    # test_the_sdk_override_pair_is_refused covers)
    "ALIYUN_ACCESS_KEY_ID": "LTAI-fake-alias-3",
    "OSS_ACCESS_KEY_ID": "LTAI-fake-alias-4",
    "OSS_ACCESS_KEY_SECRET": "long-term-alias-secret-4",
    "OSSUTIL_CONFIG_FILE": "/home/u/.ossutilconfig",
    "ACCESS_KEY_ID": "LTAI-fake-alias-5",
    "ACCESS_KEY_SECRET": "long-term-alias-secret-5",
}
#: Not credentials: kept as they are.
KEPT_ENV = {"OSS_BUCKET": "corp-data", "APP_MODE": "test", "ALIBABA_CLOUD_REGION_ID": "cn-shanghai"}


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Emulator, str, str]]:
    """An emulator with a user allowed to mint; yields (emulator, its key id, its secret).
    No credential is in the environment yet: each test chooses the source."""
    with Emulator(Backend(clock=Clock())) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="token-vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "token-vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/token-vendor")
        monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
        yield emu, key.key_id, key.secret


DUMP_ENV = "import json, os, sys; json.dump(dict(os.environ), open(sys.argv[1], 'w'))"


@pytest.mark.parametrize("source", ["flags", "permgen-env", "alibaba-env", "profile-file"])
def test_the_child_gets_only_the_minted_credentials(
    account: tuple[Emulator, str, str],
    source: str,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    emu, key_id, secret = account
    for name, value in {**LONG_TERM_ENV, **KEPT_ENV}.items():
        monkeypatch.setenv(name, value)
    # the caller's own key also hides under an unrelated name: removed by its value
    monkeypatch.setenv("MY_DEPLOY_KEY", f"{key_id}:{secret}")
    flags: list[str] = []
    if source == "flags":
        flags = ["--access-key-id", key_id, "--access-key-secret", secret]
    elif source == "permgen-env":
        monkeypatch.setenv("PERMGEN_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("PERMGEN_ACCESS_KEY_SECRET", secret)
    elif source == "alibaba-env":
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    else:
        config = tmp_path / "config.json"
        profile = {"name": "long-term-profile", "mode": "AK", "access_key_id": key_id}
        profile["access_key_secret"] = secret
        config.write_text(json.dumps({"current": "long-term-profile", "profiles": [profile]}))
        monkeypatch.setenv("PERMGEN_ALIYUN_CONFIG", str(config))
    dump = tmp_path / "env.json"
    result = run_cli(*MINT, *flags, "--exec", "--", sys.executable, "-c", DUMP_ENV, str(dump))
    assert result.exit_code == 0, result.output
    child = json.loads(dump.read_text())
    minted_id = child["ALIBABA_CLOUD_ACCESS_KEY_ID"]
    assert minted_id.startswith("STS.")
    token = child["ALIBABA_CLOUD_SECURITY_TOKEN"]
    minted_secret = child["ALIBABA_CLOUD_ACCESS_KEY_SECRET"]
    for name, value in child.items():
        assert key_id not in value and secret not in value, name
    for names in CREDENTIAL_NAMES:
        assert [child[n] for n in names] == [minted_id, minted_secret, token]
    expected = {n for names in CREDENTIAL_NAMES for n in names}
    expected.add("ALIBABA_CLOUD_ECS_METADATA_DISABLED")
    assert {n for n in child if is_credential_variable(n)} == expected
    assert child["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] == "true"
    for name, value in KEPT_ENV.items():
        assert child[name] == value
    assert child["PERMGEN_ENDPOINT"] == emu.url
    assert secret not in result.output and token not in result.output
    # and they are the credentials the emulator issued for the role
    issued = emu.backend.keys[minted_id]
    assert (issued.secret, issued.token) == (minted_secret, token)
    assert issued.principal.startswith("role/oss-uploader/")


_NAME_CHARS = st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZ_0123456789")
_FAMILY = st.sampled_from(["ALIBABA_CLOUD_", "ALIBABACLOUD_", "ALICLOUD_", "ALIYUN_", "OSS_", ""])
_WORD = st.sampled_from(["ACCESS_KEY", "SECRET", "SECURITY_TOKEN", "PROFILE", "CREDENTIALS_FILE"])


@settings(max_examples=150, deadline=None)
@given(
    family=_FAMILY,
    word=_WORD,
    before=st.text(_NAME_CHARS, max_size=6),
    after=st.text(_NAME_CHARS, max_size=6),
    other=st.dictionaries(st.text(_NAME_CHARS, min_size=1, max_size=12), st.text(max_size=20)),
)
def test_no_credential_variable_reaches_the_child(
    family: str, word: str, before: str, after: str, other: dict[str, str]
) -> None:
    """Property: whatever the parent holds, the child's credential variables are exactly the
    minted ones, and no value holds the caller's key."""
    caller = AccessKey("LTAI-fake-caller-key", Secret("caller-long-term-secret-0001"))
    minted = StsCredentials("STS.minted", Secret("minted-secret"), Secret("CAISminted"), "x")
    name = f"{family}{before}{word}{after}" if family else f"{before}{word}{after}"
    parent = {**other, name: "LTAI-fake-any-value", "X_HOLDS_IT": "pre-LTAI-fake-caller-key"}
    parent["Y_HOLDS_IT"] = "caller-long-term-secret-0001"
    env = child_environment(parent, minted, caller)
    creds = {k: v for k, v in env.items() if is_credential_variable(k)}
    assert set(creds.values()) <= {"STS.minted", "minted-secret", "CAISminted", "true"}
    assert all(
        "LTAI-fake-caller-key" not in v and "caller-long-term-secret-0001" not in v
        for v in env.values()
    )
    if family:
        assert name not in env or env[name] != "LTAI-fake-any-value"


# --------------------------------------------------------------------------- signals


def _permgen_with_child(
    tmp_path: Path, key_id: str, secret: str, url: str, *options: str
) -> tuple[subprocess.Popen[bytes], dict[str, str]]:
    """permgen in its own process running a child that records the signal it gets, then
    dies of it (as a program with no special handling would)."""
    child = (
        "import os, signal, sys, time\n"
        "out = sys.argv[1]\n"
        "def handler(signum, frame):\n"
        "    open(out + '.got', 'w').write(signal.Signals(signum).name)\n"
        "    signal.signal(signum, signal.SIG_DFL)\n"
        "    os.kill(os.getpid(), signum)\n"
        "for s in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):\n"
        "    signal.signal(s, handler)\n"
        "open(out + '.ready', 'w').write(str(os.getpid()))\n"
        "time.sleep(60)\n"
    )
    out = str(tmp_path / "child")
    env = {
        **os.environ,
        "PYTHONPATH": str(EXAMPLES.parent),
        "PERMGEN_ENDPOINT": url,
        "ALIBABA_CLOUD_ACCESS_KEY_ID": key_id,
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": secret,
    }
    proc = subprocess.Popen(
        [sys.executable, "-m", "permgen", *MINT, *options, "--exec", "--", sys.executable]
        + ["-c", child, out],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    ready = Path(out + ".ready")
    deadline = time.monotonic() + 30
    while not ready.exists() or not ready.read_text():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise AssertionError(proc.communicate())
        time.sleep(0.02)
    return proc, {"out": out, "pid": ready.read_text()}


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]
)
def test_signals_are_forwarded_and_permgen_waits_for_the_child(
    account: tuple[Emulator, str, str], tmp_path: Path, signum: int, code: int
) -> None:
    emu, key_id, secret = account
    proc, child = _permgen_with_child(tmp_path, key_id, secret, emu.url)
    os.kill(proc.pid, signum)
    _, stderr = proc.communicate(timeout=30)
    assert Path(child["out"] + ".got").read_text() == signal.Signals(signum).name
    assert proc.returncode == code, stderr
    assert b"Traceback" not in stderr
    with pytest.raises(ProcessLookupError):  # no orphan keeps running with the credentials
        os.kill(int(child["pid"]), 0)


@pytest.mark.parametrize(
    ("make", "fragment"),
    [
        ("plain-file", "is not an executable file"),
        ("directory", "is not an executable file"),
        ("missing-path", "command not found"),
        ("missing-name", "command not found"),
    ],
)
def test_a_command_that_cannot_start_is_exit_2(
    account: tuple[Emulator, str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    make: str,
    fragment: str,
) -> None:
    emu, key_id, secret = account
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    target = tmp_path / "tool"
    if make == "plain-file":
        target.write_text("#!/bin/sh\necho hi\n")
        target.chmod(0o644)
    elif make == "directory":
        target.mkdir()
    command = "permgen-no-such-command" if make == "missing-name" else str(target)
    result = run_cli(*MINT, "--exec", "--", command)
    assert result.exit_code == 2, result.output
    assert fragment in result.output and result.output.count("\n") == 1
    assert "AssumeRole" not in emu.calls  # nothing is minted for a command that cannot run


def test_a_file_that_is_not_a_program_is_exit_2(
    account: tuple[Emulator, str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """Executable bit set, but no program in it: the kernel refuses it at exec time."""
    _, key_id, secret = account
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    target = tmp_path / "blob"
    target.write_bytes(b"\x7fELF\x00garbage")
    target.chmod(0o755)
    result = run_cli(*MINT, "--exec", "--", str(target))
    assert result.exit_code == 2, result.output
    assert "cannot run" in result.output
    assert "Traceback" not in result.output


def test_the_sdk_override_pair_is_refused(
    account: tuple[Emulator, str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """aliyunsdkcore signs with ALIYUN_ACCESS_KEY_ID/SECRET when both are set, whatever
    credential it is given: permgen refuses instead of signing with a key it did not choose."""
    emu, key_id, secret = account
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    monkeypatch.setenv("ALIYUN_ACCESS_KEY_ID", "LTAI-fake-other-key")
    monkeypatch.setenv("ALIYUN_ACCESS_KEY_SECRET", "some-other-secret-value")
    result = run_cli(*MINT, "--format", "json")
    assert result.exit_code == 2, result.output
    assert "ALIYUN_ACCESS_KEY_ID" in result.output
    assert "some-other-secret-value" not in result.output
    assert "AssumeRole" not in emu.calls
    # the same key under both names is what permgen would use anyway: allowed
    monkeypatch.setenv("ALIYUN_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIYUN_ACCESS_KEY_SECRET", secret)
    assert run_cli(*MINT, "--format", "json").exit_code == 0


@pytest.mark.parametrize("fmt", ["ossutil", "aliyun-cli"])
@pytest.mark.parametrize(
    "name", ["x]\n[default", "x\naccessKeyID = LTAI-fake-injected", "my profile"]
)
def test_a_profile_name_that_could_inject_a_section_is_exit_2(
    account: tuple[Emulator, str, str],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    fmt: str,
    name: str,
) -> None:
    emu, key_id, secret = account
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    cfg = tmp_path / "config"
    result = run_cli(*MINT, "--format", fmt, "--config-file", str(cfg), "--profile-name", name)
    assert result.exit_code == 2, result.output
    assert "--profile-name" in result.output
    assert not cfg.exists()
    assert "AssumeRole" not in emu.calls
