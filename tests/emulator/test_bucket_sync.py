"""plan/apply of a spec's buckets: section against the emulator: RAM (user UIDs) and OSS
(bucket settings) both through the real SDKs over HTTP, no mock anywhere."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from permgen.account.oss_sdk import SdkOssClient
from permgen.account.types import AccessKey, ClientConfig, Secret
from permgen.emulator import ACCOUNT, ADMIN_KEY_ID, ADMIN_KEY_SECRET, Backend, Emulator
from tests.conftest import operator_key, run_cli

BASE = f"""version: 1
defaults:
  account: "{ACCOUNT}"
roles:
  r:
    template: reader
    grants: [{{bucket: logs-raw}}]
buckets:
  logs-raw:
    versioning: enabled
    replication: [{{target: logs-dr}}]
    lifecycle: [{{prefix: tmp/, expire_days: 7}}]
    overwrite_protection: [{{prefix: raw/, principals: ["user:analytics-bot"]}}]
    policy:
      - effect: Allow
        principals: ["user:analytics-bot", "role:EtlRole"]
        actions: ["oss:GetObject"]
        resources: ["logs-raw/exports/*"]
  vault:
    retention_days: 30
"""


@pytest.fixture
def emu(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    backend = Backend()
    backend.seed({"users": [{"name": "analytics-bot"}]})
    with Emulator(backend) as e:
        monkeypatch.setenv("PERMGEN_ENDPOINT", e.url)
        key_id, secret = operator_key(backend)  # account commands refuse the root key
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
        oss = _oss(e)
        for name in ("logs-raw", "logs-dr", "vault"):
            oss.put_bucket(name)
        yield e


def _oss(e: Emulator) -> SdkOssClient:
    return SdkOssClient(
        AccessKey(ADMIN_KEY_ID, Secret(ADMIN_KEY_SECRET)),
        ClientConfig(endpoint=e.url, backoff_base=0.0),
        sleep=lambda s: None,
    )


def _spec(tmp_path: Path, text: str) -> str:
    path = tmp_path / "spec.yaml"
    path.write_text(text)
    return str(path)


def _uid(e: Emulator) -> str:
    return str(e.backend.users["analytics-bot"])


def _state(oss: SdkOssClient) -> dict[str, Any]:
    worm = oss.get_worm("vault")
    return {
        "versioning": oss.get_bucket_versioning("logs-raw"),
        "replication": [
            (r.destination_bucket, r.prefixes) for r in oss.get_replication("logs-raw")
        ],
        "lifecycle": [(r.prefix, r.expiration_days) for r in oss.get_lifecycle("logs-raw")],
        "overwrite": [(r.prefix, r.principals) for r in oss.get_overwrite_config("logs-raw")],
        "policy": oss.get_bucket_policy("logs-raw"),
        "worm": (worm.state, worm.retention_days) if worm else None,
    }


def _applied(e: Emulator, tmp_path: Path) -> tuple[str, SdkOssClient]:
    spec = _spec(tmp_path, BASE)
    done = run_cli("apply", spec, "--yes")
    assert done.exit_code == 0, done.output
    return spec, _oss(e)


def test_apply_sets_every_protection_and_the_policy_then_nothing_is_left(
    emu: Emulator, tmp_path: Path
) -> None:
    spec = _spec(tmp_path, BASE)
    drift = run_cli("plan", spec, "--detailed-exitcode")
    assert drift.exit_code == 4
    for line in (
        "~ bucket logs-raw: enable versioning (now off)",
        "~ bucket logs-raw: replicate to logs-dr",
        "~ bucket vault: create and lock a 30-day retention policy",
        "~ bucket logs-raw: put the bucket policy (1 statement(s))",
    ):
        assert line in drift.output
    _, oss = _applied(emu, tmp_path)
    state = _state(oss)
    uid = _uid(emu)
    assert state["versioning"] == "Enabled"
    assert state["replication"] == [("logs-dr", ())]
    assert state["lifecycle"] == [("tmp/", 7)]
    assert state["overwrite"] == [("raw/", (uid,))]
    assert state["worm"] == ("Locked", 30)
    policy = json.loads(state["policy"])
    # the user: marker was resolved through RAM GetUser to the user's UID
    assert policy["Statement"][0]["Principal"] == [
        uid,
        f"arn:sts::{ACCOUNT}:assumed-role/EtlRole/*",
    ]
    clean = run_cli("plan", spec, "--detailed-exitcode", "--format", "json")
    assert clean.exit_code == 0, clean.output
    doc = json.loads(clean.output)
    assert doc["in_sync"] is True and doc["buckets"]["changes"] == []


@pytest.mark.parametrize(
    ("edit", "flag", "summary"),
    [
        ("versioning: enabled", "--allow-suspend-versioning", "suspend versioning"),
        (
            "replication: [{target: logs-dr}]",
            "--allow-remove-replication",
            "remove the replication rule",
        ),
        ("policy:", "--allow-delete-bucket-policy", "delete the bucket policy"),
        (
            'overwrite_protection: [{prefix: raw/, principals: ["user:analytics-bot"]}]',
            "--allow-remove-overwrite-protection",
            "remove all 1 overwrite-protection rule(s)",
        ),
    ],
)
def test_a_weakening_change_is_refused_without_its_flag_and_nothing_is_written(
    emu: Emulator, tmp_path: Path, edit: str, flag: str, summary: str
) -> None:
    _, oss = _applied(emu, tmp_path)
    before = _state(oss)
    replacement = {
        "versioning: enabled": "versioning: suspended",
        "replication: [{target: logs-dr}]": "replication: []",
        'overwrite_protection: [{prefix: raw/, principals: ["user:analytics-bot"]}]': "overwrite_protection: []",
    }
    if edit == "policy:":
        text = BASE.split("    policy:")[0] + "    policy: []\n  vault:\n    retention_days: 30\n"
    else:
        text = BASE.replace(edit, replacement[edit])
    # a protective change in the same run must not be written either
    text = text.replace("expire_days: 7", "expire_days: 9")
    spec = _spec(tmp_path, text)
    plan = run_cli("plan", spec)
    assert plan.exit_code == 0
    assert f"! bucket logs-raw: {summary}" in plan.output
    assert f"refused without {flag} logs-raw" in plan.output
    refused = run_cli("apply", spec, "--yes")
    assert refused.exit_code == 2, refused.output
    assert f"{flag} logs-raw" in refused.output and "Nothing was changed" in refused.output
    assert _state(oss) == before
    # a flag naming another bucket does not allow it
    assert run_cli("apply", spec, "--yes", flag, "vault").exit_code == 2
    assert _state(oss) == before
    done = run_cli("apply", spec, "--yes", flag, "logs-raw")
    assert done.exit_code == 0, done.output
    after = _state(oss)
    assert after["lifecycle"] == [("tmp/", 9)]
    changed = {k for k in after if after[k] != before[k]} - {"lifecycle"}
    assert len(changed) == 1, changed
    assert run_cli("plan", spec, "--detailed-exitcode").exit_code == 0


def test_retention_is_extended_never_shortened(emu: Emulator, tmp_path: Path) -> None:
    _, oss = _applied(emu, tmp_path)
    shorter = _spec(tmp_path, BASE.replace("retention_days: 30", "retention_days: 10"))
    plan = run_cli("plan", shorter)
    assert "can never be shortened" in plan.output
    every_flag = [
        "--allow-abort-retention",
        "vault",
        "--allow-suspend-versioning",
        "vault",
    ]
    assert run_cli("apply", shorter, "--yes", *every_flag).exit_code == 2
    assert oss.get_worm("vault") is not None and oss.get_worm("vault").retention_days == 30  # type: ignore[union-attr]
    longer = _spec(tmp_path, BASE.replace("retention_days: 30", "retention_days: 40"))
    assert "extend the locked retention policy from 30 to 40 days" in run_cli("plan", longer).output
    assert run_cli("apply", longer, "--yes").exit_code == 0
    worm = oss.get_worm("vault")
    assert worm is not None and (worm.state, worm.retention_days) == ("Locked", 40)


def test_a_missing_bucket_or_user_refuses_before_any_write(emu: Emulator, tmp_path: Path) -> None:
    oss = _oss(emu)
    gone = _spec(tmp_path, BASE + "  nowhere: {versioning: enabled}\n")
    result = run_cli("apply", gone, "--yes")
    assert result.exit_code == 2 and "bucket nowhere does not exist" in result.output
    assert (
        oss.get_bucket_versioning("logs-raw") is None and oss.get_bucket_policy("logs-raw") is None
    )
    nobody = _spec(tmp_path, BASE.replace('"user:analytics-bot", "role', '"user:nobody", "role'))
    result = run_cli("apply", nobody, "--yes")
    assert result.exit_code == 2 and "user:nobody" in result.output
    assert oss.get_bucket_versioning("logs-raw") is None
    # a flag naming a bucket the spec does not have is bad input
    typo = run_cli("plan", _spec(tmp_path, BASE), "--allow-delete-bucket-policy", "logs-rwa")
    assert typo.exit_code == 2 and "logs-rwa" in typo.output


def test_plan_shows_a_replaced_policy_per_principal(emu: Emulator, tmp_path: Path) -> None:
    _applied(emu, tmp_path)
    wider = _spec(tmp_path, BASE.replace('["oss:GetObject"]', '["oss:GetObject", "oss:PutObject"]'))
    plan = run_cli("plan", wider)
    assert "~ bucket logs-raw: replace the bucket policy (1 statement(s))" in plan.output
    # the user: marker is compared as the UID it resolves to: only new access is listed
    assert f"    principal {_uid(emu)}: 1 newly allowed (region(s))" in plan.output
    doc = json.loads(run_cli("plan", wider, "--format", "json").output)
    (change,) = doc["buckets"]["changes"]
    assert change["policy_diff"]["equivalent"] is False
