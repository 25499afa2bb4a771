"""``permgen audit`` against the emulator: RAM and OSS read through the real SDKs over HTTP
(no mock on the account path), each kind of finding with a case that has it and one that
does not, escalation, role assumption, the snapshot round trip, --fail-on and the refusal of
root credentials."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from permgen.account.oss import OverwriteRule
from permgen.account.oss_sdk import SdkOssClient
from permgen.account.types import AccessKey, ClientConfig, Secret
from permgen.emulator import ACCOUNT, ADMIN_KEY_ID, ADMIN_KEY_SECRET, Backend, Emulator
from tests.conftest import run_cli

AUDITOR = ("LTAI-auditor-key", "auditor-secret")
DOC = {"Version": "1"}


def _allow(actions: list[str], resources: list[str], **extra: Any) -> dict[str, Any]:
    return {"Effect": "Allow", "Action": actions, "Resource": resources, **extra}


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


def _obj(bucket: str, key: str = "*") -> str:
    return f"acs:oss:*:*:{bucket}/{key}"


SEED: dict[str, Any] = {
    "groups": ["writers"],
    "users": [
        {"name": "auditor", "access_keys": [{"id": AUDITOR[0], "secret": AUDITOR[1]}]},
        {"name": "etl"},
        {"name": "analyst", "groups": ["writers"]},
        {"name": "purger"},
        {"name": "climber"},
        {"name": "dev"},
        {"name": "ops"},
        {"name": "stranger"},
        {"name": "lifecycler"},
        {"name": "vpc-bot"},
        {"name": "guarded-bot"},
    ],
    "roles": [
        {
            "name": "cleaner",
            "trusted": [f"acs:ram::{ACCOUNT}:user/dev", f"acs:ram::{ACCOUNT}:user/stranger"],
        },
    ],
    "policies": [
        {
            "name": "audit-read",
            "document": _policy(_allow(["ram:Get*", "ram:List*", "oss:Get*", "oss:List*"], ["*"])),
        },
        {
            "name": "p-etl",
            "document": _policy(_allow(["oss:DeleteObject"], [_obj("logs-raw"), _obj("archive")])),
        },
        {
            "name": "p-writers",
            "document": _policy(_allow(["oss:PutObject"], [_obj("logs-raw", "incoming/*")])),
        },
        {
            "name": "p-purger",
            "document": _policy(_allow(["oss:DeleteObjectVersion"], [_obj("archive")])),
        },
        {
            "name": "p-climber",
            "document": _policy(
                _allow(["ram:AttachPolicyToUser"], [f"acs:ram:*:{ACCOUNT}:user/climber"])
            ),
        },
        {
            "name": "p-assume",
            "document": _policy(_allow(["sts:AssumeRole"], [f"acs:ram:*:{ACCOUNT}:role/cleaner"])),
        },
        {"name": "p-cleaner", "document": _policy(_allow(["oss:DeleteObject"], [_obj("scratch")]))},
        {
            "name": "p-lifecycle",
            "document": _policy(_allow(["oss:PutBucketLifecycle"], ["acs:oss:*:*:logs-raw"])),
        },
        {
            "name": "p-vpc",
            "document": _policy(
                _allow(
                    ["oss:DeleteObject"],
                    [_obj("logs-raw", "tmp/*")],
                    Condition={"StringEquals": {"acs:SourceVpc": "vpc-etl01"}},
                )
            ),
        },
        {"name": "p-guarded", "document": _policy(_allow(["oss:DeleteObject"], [_obj("guarded")]))},
    ],
    "attachments": [
        {"policy": "audit-read", "to": "user:auditor"},
        {"policy": "p-etl", "to": "user:etl"},
        {"policy": "p-writers", "to": "group:writers"},
        {"policy": "p-purger", "to": "user:purger"},
        {"policy": "p-climber", "to": "user:climber"},
        {"policy": "p-assume", "to": "user:dev"},
        {"policy": "p-assume", "to": "user:ops"},
        {"policy": "p-cleaner", "to": "role:cleaner"},
        {"policy": "p-lifecycle", "to": "user:lifecycler"},
        {"policy": "p-vpc", "to": "user:vpc-bot"},
        {"policy": "p-guarded", "to": "user:guarded-bot"},
    ],
}


def _oss(emu: Emulator) -> SdkOssClient:
    return SdkOssClient(
        AccessKey(ADMIN_KEY_ID, Secret(ADMIN_KEY_SECRET)),
        ClientConfig(endpoint=emu.url, backoff_base=0.0),
        sleep=lambda s: None,
    )


@pytest.fixture
def account(monkeypatch: pytest.MonkeyPatch) -> Iterator[Emulator]:
    """An account with buckets set up through the real OSS SDK; the CLI runs as the
    read-only RAM user ``auditor``."""
    backend = Backend()
    backend.seed(SEED)
    with Emulator(backend) as emu:
        oss = _oss(emu)
        for b in ("logs-raw", "archive", "scratch", "dropbox", "site", "guarded", "locked-down"):
            oss.put_bucket(b)
        oss.put_bucket_versioning("archive", "Enabled")
        oss.put_bucket_acl("dropbox", "public-read-write")
        oss.put_bucket_acl("locked-down", "public-read-write")
        oss.put_public_access_block("locked-down", True)
        oss.put_bucket_policy(
            "site",
            json.dumps(
                _policy(
                    {
                        **_allow(["oss:GetObject"], [f"acs:oss:*:{ACCOUNT}:site/*"]),
                        "Principal": ["*"],
                    },
                    {
                        **_allow(["oss:GetObject"], [f"acs:oss:*:{ACCOUNT}:site/*"]),
                        "Principal": ["9999999999999999"],
                    },
                )
            ),
        )
        oss.put_bucket_policy(
            "guarded",
            json.dumps(
                _policy(
                    {
                        "Effect": "Deny",
                        "Action": ["oss:DeleteObject"],
                        "Resource": [f"acs:oss:*:{ACCOUNT}:guarded/*"],
                        "Principal": ["*"],
                    }
                )
            ),
        )
        monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
        monkeypatch.setenv("PERMGEN_OSS_ENDPOINT", emu.url)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", AUDITOR[0])
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", AUDITOR[1])
        yield emu


def _report(*args: str) -> dict[str, Any]:
    result = run_cli("audit", "--format", "json", *args)
    assert result.exit_code == 0, result.output
    doc: dict[str, Any] = json.loads(result.output)
    return doc


def _find(
    doc: dict[str, Any], kind: str, principal: str, bucket: str | None
) -> dict[str, Any] | None:
    return next(
        (
            f
            for f in doc["findings"]
            if (f["kind"], f["principal"], f["bucket"]) == (kind, principal, bucket)
        ),
        None,
    )


def test_audit_reports_each_kind_with_a_confirmed_witness(account: Emulator) -> None:
    doc = _report()
    assert doc["account"] == ACCOUNT
    # irrecoverable-delete: an unversioned bucket; the versioned one keeps a copy
    f = _find(doc, "irrecoverable-delete", "user:etl", "logs-raw")
    assert f is not None and f["severity"] == "critical"
    assert f["path"] == ["user:etl", "policy p-etl Statement[0]"]
    assert f["resources"] == ["logs-raw/*"]
    assert f["witness"] == {
        "action": "oss:DeleteObject",
        "resource": f"acs:oss:cn-hangzhou:{ACCOUNT}:logs-raw/example",
        "context": {},
    }
    assert "versioning is off" in f["why"]
    assert "buckets.logs-raw.versioning: enabled" in f["fix"]
    assert _find(doc, "irrecoverable-delete", "user:etl", "archive") is None
    # a Deny in the bucket policy removes it
    assert _find(doc, "irrecoverable-delete", "user:guarded-bot", "guarded") is None
    # group inheritance, shown in the path; the witness key comes from the grant's prefix
    f = _find(doc, "irrecoverable-overwrite", "user:analyst", "logs-raw")
    assert f is not None
    assert f["path"] == ["user:analyst", "group:writers", "policy p-writers Statement[0]"]
    assert f["witness"]["resource"].endswith("logs-raw/incoming/example")
    assert f["resources"] == ["logs-raw/incoming/*"]
    assert _find(doc, "irrecoverable-overwrite", "group:writers", "logs-raw") is not None
    # version-purge only on the versioned bucket, only with DeleteObjectVersion
    assert _find(doc, "version-purge", "user:purger", "archive") is not None
    assert _find(doc, "version-purge", "user:etl", "archive") is None
    # protection-removal
    f = _find(doc, "protection-removal", "user:lifecycler", "logs-raw")
    assert f is not None and f["witness"]["action"] == "oss:PutBucketLifecycle"
    assert _find(doc, "protection-removal", "user:etl", "logs-raw") is None
    # conditions narrow, they do not remove; the finding shows them
    f = _find(doc, "irrecoverable-delete", "user:vpc-bot", "logs-raw")
    assert f is not None
    assert f["witness"]["context"] == {"acs:SourceVpc": "vpc-etl01"}
    assert f["conditions"] == ["StringEquals acs:SourceVpc ['vpc-etl01']"]
    # public and cross-account access; blocking public access removes it
    f = _find(doc, "public-write", "anonymous", "dropbox")
    assert f is not None and f["path"] == ["anonymous", "acl public-read-write on dropbox"]
    assert _find(doc, "irrecoverable-delete", "anonymous", "dropbox") is not None
    assert _find(doc, "public-write", "anonymous", "locked-down") is None
    f = _find(doc, "public-read", "anonymous", "site")
    assert f is not None and f["path"] == ["anonymous", "bucket-policy site Statement[0]"]
    assert _find(doc, "cross-account", "account:9999999999999999", "site") is not None
    assert _find(doc, "public-read", "anonymous", "logs-raw") is None
    # the read-only auditor has nothing
    assert not [f for f in doc["findings"] if f["principal"] == "user:auditor"]


def test_escalation_and_role_assumption(account: Emulator) -> None:
    doc = _report()
    # climber may attach any policy to itself: escalation, and what it reaches, with the path
    esc = _find(doc, "escalation", "user:climber", None)
    assert esc is not None and esc["witness"]["action"] == "ram:AttachPolicyToUser"
    f = _find(doc, "irrecoverable-delete", "user:climber", "logs-raw")
    assert f is not None
    assert f["path"][:2] == [
        "user:climber",
        "ram:AttachPolicyToUser on user:climber (any policy in the account)",
    ]
    # role assumption needs the trust policy AND sts:AssumeRole
    f = _find(doc, "irrecoverable-delete", "user:dev", "scratch")
    assert f is not None
    assert f["path"] == [
        "user:dev",
        "sts:AssumeRole role:cleaner (its trust names user:dev)",
        "policy p-cleaner Statement[0]",
    ]
    assert _find(doc, "irrecoverable-delete", "role:cleaner", "scratch") is not None
    # attaching AliyunOSSFullAccess reaches every bucket, even one no custom policy names
    assert _find(doc, "irrecoverable-delete", "user:climber", "dropbox") is not None
    assert _find(doc, "irrecoverable-delete", "user:ops", "scratch") is None  # not trusted
    assert _find(doc, "irrecoverable-delete", "user:stranger", "scratch") is None  # no AssumeRole
    assert _find(doc, "escalation", "user:ops", None) is None


def test_versioning_and_overwrite_protection_remove_the_findings(account: Emulator) -> None:
    oss = _oss(account)
    oss.put_overwrite_config("logs-raw", [OverwriteRule(prefix="incoming/")])
    doc = _report()
    assert _find(doc, "irrecoverable-overwrite", "user:analyst", "logs-raw") is None
    assert _find(doc, "irrecoverable-delete", "user:etl", "logs-raw") is not None
    oss.put_bucket_versioning("logs-raw", "Enabled")
    doc = _report()
    assert not [
        f for f in doc["findings"] if f["bucket"] == "logs-raw" and f["kind"].startswith("irrec")
    ]
    # and now suspending versioning is a way to weaken it
    assert _find(doc, "protection-removal", "user:lifecycler", "logs-raw") is not None


def test_snapshot_round_trip_gives_the_same_report(account: Emulator, tmp_path: Path) -> None:
    from permgen.account.audit import Snapshot, audit, load_snapshot

    snap = tmp_path / "account.json"
    online = run_cli("audit", "--format", "json", "--save-snapshot", str(snap))
    assert online.exit_code == 0, online.output
    loaded = load_snapshot(str(snap))
    assert Snapshot.from_json(json.loads(json.dumps(loaded.to_json()))) == loaded
    assert loaded.account == ACCOUNT and loaded.version == 1
    assert {b.name for b in loaded.buckets} >= {"logs-raw", "archive", "site"}
    # the system policy anyone who may attach policies can attach is in the snapshot
    assert "System:AliyunOSSFullAccess" in loaded.policies
    assert AUDITOR[1] not in snap.read_text()
    offline = run_cli(
        "audit", "--format", "json", "--snapshot", str(snap), "--endpoint", "http://127.0.0.1:9"
    )
    assert offline.exit_code == 0, offline.output
    assert json.loads(offline.output) == json.loads(online.output)
    assert audit(loaded).to_json() == json.loads(online.output)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("{", "not valid JSON"),
        ('{"version": 2}', "version: 2 is not a snapshot version"),
        (
            '{"version": 1, "account": "1", "policies": {}, "users": [{}]}',
            'the snapshot.users[0]: "name" is missing',
        ),
        ("[]", "a JSON object is expected"),
        ("[" * 500 + "]" * 500, "not valid JSON"),
    ],
)
def test_a_bad_snapshot_exits_2_with_one_line(tmp_path: Path, content: str, message: str) -> None:
    snap = tmp_path / "s.json"
    snap.write_text(content)
    result = run_cli("audit", "--snapshot", str(snap))
    assert result.exit_code == 2
    assert message in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_fail_on_exits_3_and_other_formats(account: Emulator, tmp_path: Path) -> None:
    snap = tmp_path / "s.json"
    assert run_cli("audit", "--save-snapshot", str(snap), "--format", "json").exit_code == 0
    failed = run_cli("audit", "--snapshot", str(snap), "--fail-on", "public-write,version-purge")
    assert failed.exit_code == 3
    assert "findings of kind public-write, version-purge" in failed.output
    passed = run_cli(
        "audit", "--snapshot", str(snap), "--fail-on", "escalation", "--format", "json"
    )
    assert passed.exit_code == 3  # climber can escalate
    bad = run_cli("audit", "--snapshot", str(snap), "--fail-on", "everything")
    assert bad.exit_code == 2 and "unknown kind everything" in bad.output
    text = run_cli("audit", "--snapshot", str(snap)).output
    # grouped by bucket, worst first; account-wide findings last
    assert text.index("bucket logs-raw") < text.index("account-wide")
    assert "path: user:etl -> policy p-etl Statement[0]" in text
    md = run_cli("audit", "--snapshot", str(snap), "--format", "markdown").output
    assert (
        "### bucket `logs-raw`" in md and "| critical | irrecoverable-delete | `user:etl` |" in md
    )
    sarif = json.loads(run_cli("audit", "--snapshot", str(snap), "--format", "sarif").output)
    results = sarif["runs"][0]["results"]
    assert {r["ruleId"] for r in results} >= {"irrecoverable-delete", "escalation", "public-write"}
    assert len(results) == len(
        json.loads(run_cli("audit", "--snapshot", str(snap), "--format", "json").output)["findings"]
    )


def test_account_commands_refuse_root_credentials(
    account: Emulator, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", ADMIN_KEY_ID)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", ADMIN_KEY_SECRET)
    refused = run_cli("audit")
    assert refused.exit_code == 2
    assert f"root AccessKey of account {ACCOUNT}" in refused.output
    assert ADMIN_KEY_SECRET not in refused.output
    spec = str(Path(__file__).resolve().parents[2] / "examples" / "platform.yaml")
    for args in (
        ["plan", spec],
        ["apply", spec, "--yes"],
        ["diff", spec, "--role", "analytics-reader", "--principal", "user:etl"],
    ):
        result = run_cli(*args)
        assert result.exit_code == 2 and "--allow-root-credentials" in result.output, args
    allowed = run_cli("audit", "--allow-root-credentials", "--format", "json")
    assert allowed.exit_code == 0, allowed.output
    assert _find(json.loads(allowed.output), "irrecoverable-delete", "user:etl", "logs-raw")


def test_format_html_calls_the_html_report(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--format html`` hands the report to ``permgen.account.audit_report.html``; without
    that module it says so (exit 1)."""
    import sys
    import types

    from permgen.account.audit import AuditReport, Snapshot, save_snapshot

    snap = tmp_path / "s.json"
    save_snapshot(Snapshot(ACCOUNT), str(snap))
    seen: list[object] = []
    fake = types.ModuleType("permgen.account.audit_report")
    fake.html = lambda report: seen.append(report) or "<!DOCTYPE html><p>report</p>\n"  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "permgen.account.audit_report", fake)
    result = run_cli("audit", "--snapshot", str(snap), "--format", "html")
    assert result.exit_code == 0 and result.output == "<!DOCTYPE html><p>report</p>\n"
    assert isinstance(seen[0], AuditReport) and seen[0].account == ACCOUNT
    monkeypatch.setitem(sys.modules, "permgen.account.audit_report", None)
    missing = run_cli("audit", "--snapshot", str(snap), "--format", "html")
    assert missing.exit_code == 1 and "no HTML report" in missing.output
