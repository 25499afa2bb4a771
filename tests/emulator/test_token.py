"""permgen token: minted through the real SDK against the emulator, then used."""

from __future__ import annotations

import json
import os
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from aliyunsdkcore.auth.credentials import StsTokenCredential

from permgen.emulator import Backend, Emulator
from permgen.policy.model import parse_policy
from permgen.semantics import Evaluator, Request
from tests.conftest import EXAMPLES, run_cli
from tests.emulator.test_emulator import TRUST, Clock, attach_system, call, client

SPEC = str(EXAMPLES / "platform.yaml")


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    clock = Clock()
    with Emulator(Backend(clock=clock)) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="token-vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "token-vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/token-vendor")
        monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key.key_id)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", key.secret)
        emu.caller_secret = key.secret  # type: ignore[attr-defined]
        yield emu


def test_json_token_works_and_is_scoped_to_the_users_prefix(account: Emulator) -> None:
    result = run_cli(
        "token", "mobile-uploader", "--spec", SPEC, "--var", "user=alice", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(result.output[result.output.index("{") :])
    assert doc["AccessKeyId"].startswith("STS.")
    assert doc["RoleSessionName"] == "permgen-mobile-uploader-alice"
    assert doc["DurationSeconds"] == 900
    # the token is accepted by the emulator and shows the assumed role and session
    sts = client(
        account,
        None,
        None,
        StsTokenCredential(doc["AccessKeyId"], doc["AccessKeySecret"], doc["SecurityToken"]),
    )
    me = call(sts, "GetCallerIdentity", "Sts")
    assert me["Arn"] == "acs:ram::1234567890123456:role/oss-uploader/permgen-mobile-uploader-alice"
    # the session policy the emulator received allows nothing outside alice's prefix
    policy = parse_policy(account.backend.last_session_policy)  # type: ignore[attr-defined]
    ev = Evaluator([policy])
    ctx = {"acs:SecureTransport": "true"}
    assert ev.allows(
        Request(
            "oss:PutObject", "acs:oss:*:1234567890123456:user-uploads/incoming/alice/photo.jpg", ctx
        )
    )
    assert not ev.allows(
        Request(
            "oss:PutObject", "acs:oss:*:1234567890123456:user-uploads/incoming/bob/photo.jpg", ctx
        )
    )
    assert not ev.allows(
        Request(
            "oss:GetObject", "acs:oss:*:1234567890123456:user-uploads/incoming/alice/photo.jpg", ctx
        )
    )


def test_env_format_exports_both_families(account: Emulator) -> None:
    result = run_cli("token", "mobile-uploader", "--spec", SPEC, "--var", "user=alice")
    assert result.exit_code == 0
    names = [
        line.split("=", 1)[0].removeprefix("export ")
        for line in result.output.splitlines()
        if line.startswith("export ")
    ]
    assert names == [
        "ALIBABA_CLOUD_ACCESS_KEY_ID",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET",
        "ALIBABA_CLOUD_SECURITY_TOKEN",
        "OSS_ACCESS_KEY_ID",
        "OSS_ACCESS_KEY_SECRET",
        "OSS_SESSION_TOKEN",
    ]


def test_aliyun_cli_profile_is_written_0600_keeping_other_profiles(
    account: Emulator, tmp_path: Path
) -> None:
    cfg = tmp_path / "config.json"
    cfg.write_text(
        json.dumps(
            {
                "current": "work",
                "profiles": [
                    {
                        "name": "work",
                        "mode": "AK",
                        "access_key_id": "LTAIx",
                        "access_key_secret": "y",
                        "region_id": "cn-beijing",
                    }
                ],
                "meta_path": "",
            }
        )
    )
    result = run_cli(
        "token",
        "mobile-uploader",
        "--spec",
        SPEC,
        "--var",
        "user=alice",
        "--format",
        "aliyun-cli",
        "--config-file",
        str(cfg),
        "--profile-name",
        "uploads",
    )
    assert result.exit_code == 0, result.output
    doc = json.loads(cfg.read_text())
    assert [p["name"] for p in doc["profiles"]] == ["work", "uploads"]
    uploads = doc["profiles"][1]
    assert (
        uploads["mode"] == "StsToken"
        and uploads["sts_token"]
        and uploads["region_id"] == "cn-hangzhou"
    )
    assert doc["current"] == "work"
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600
    assert uploads["access_key_secret"] not in result.output


def test_ossutil_profile(account: Emulator, tmp_path: Path) -> None:
    cfg = tmp_path / "ossutilconfig"
    cfg.write_text("[default]\nregion = cn-beijing\n")
    result = run_cli(
        "token",
        "mobile-uploader",
        "--spec",
        SPEC,
        "--var",
        "user=alice",
        "--format",
        "ossutil",
        "--config-file",
        str(cfg),
    )
    assert result.exit_code == 0, result.output
    text = cfg.read_text()
    assert "[default]" in text and "[profile permgen]" in text and "stsToken = " in text
    assert stat.S_IMODE(cfg.stat().st_mode) == 0o600


def test_exec_runs_a_command_with_the_credentials(account: Emulator) -> None:
    import subprocess

    env = {**os.environ, "PYTHONPATH": str(EXAMPLES.parent)}
    code = "import os, sys; sys.exit(0 if os.environ['OSS_SESSION_TOKEN'] and os.environ['ALIBABA_CLOUD_ACCESS_KEY_ID'].startswith('STS.') else 9)"
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "permgen",
            "token",
            "mobile-uploader",
            "--spec",
            SPEC,
            "--var",
            "user=alice",
            "--exec",
            "--",
            sys.executable,
            "-c",
            code,
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr
    assert "SecurityToken" not in proc.stderr
    failing = subprocess.run(
        [
            sys.executable,
            "-m",
            "permgen",
            "token",
            "mobile-uploader",
            "--spec",
            SPEC,
            "--var",
            "user=alice",
            "--exec",
            "--",
            sys.executable,
            "-c",
            "raise SystemExit(7)",
        ],
        env=env,
        capture_output=True,
        text=True,
    )
    assert failing.returncode == 7


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--var", "user=*"], "can never widen"),
        (["--var", "user=alice", "--duration", "600"], "900 to 43,200"),
        (["--var", "user=alice", "--duration", "1800"], "at most 900"),
        (["--var", "user=alice", "--session", "bad name"], "--session"),
    ],
)
def test_bad_input_exits_2(account: Emulator, args: list[str], fragment: str) -> None:
    result = run_cli("token", "mobile-uploader", "--spec", SPEC, *args)
    assert result.exit_code == 2
    assert fragment in result.output


def test_a_role_without_sts_cannot_mint(account: Emulator) -> None:
    result = run_cli("token", "ingest-writer", "--spec", SPEC)
    assert result.exit_code == 2
    assert "no sts: block" in result.output


def test_cloud_errors_exit_1_without_secrets(
    account: Emulator, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "wrong-secret-value")
    result = run_cli("token", "mobile-uploader", "--spec", SPEC, "--var", "user=alice")
    assert result.exit_code == 1
    assert "SignatureDoesNotMatch" in result.output or "InvalidAccessKeySecret" in result.output
    assert "wrong-secret-value" not in result.output


def test_throttling_is_retried(account: Emulator, zero_backoff: list[tuple[str, int, str]]) -> None:
    account.inject("AssumeRole", "Throttling.User", 400, times=2)
    result = run_cli(
        "token", "mobile-uploader", "--spec", SPEC, "--var", "user=alice", "--format", "json"
    )
    assert result.exit_code == 0, result.output
    assert (
        account.calls["AssumeRole"] == 1
    )  # two throttled attempts, then one that reached the handler
    assert zero_backoff == [
        ("AssumeRole", 1, "Throttling.User"),
        ("AssumeRole", 2, "Throttling.User"),
    ]


def test_an_unreachable_endpoint_exits_1(
    monkeypatch: pytest.MonkeyPatch, zero_backoff: list[tuple[str, int, str]]
) -> None:
    monkeypatch.setenv("PERMGEN_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIx")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "y")
    result = run_cli("token", "mobile-uploader", "--spec", SPEC, "--var", "user=alice")
    assert result.exit_code == 1
    assert "cannot reach http://127.0.0.1:9" in result.output
    assert [attempt for _, attempt, _ in zero_backoff] == [1, 2, 3]  # four tries in all


def test_required_permissions_are_declared_next_to_the_calls() -> None:
    from permgen.account import operations, sdk
    from tests.conftest import ROOT

    assert sdk.ASSUME_ROLE  # the adapter declares the STS actions it calls when imported

    declared = json.loads((ROOT / "docs" / "required-permissions.json").read_text())["actions"]
    assert sorted(operations.REQUIRED_ACTIONS) == sorted(declared)


def test_secrets_do_not_show_in_repr() -> None:
    from permgen.account.types import AccessKey, Secret, StsCredentials

    creds = StsCredentials(
        "STS.x", Secret("s3cr3t-value"), Secret("t0ken-value"), "2026-01-01T00:00:00Z"
    )
    assert "s3cr3t-value" not in repr(creds) and "t0ken-value" not in repr(creds)
    assert "s3cr3t-value" not in repr(AccessKey("LTAI", Secret("s3cr3t-value")))
