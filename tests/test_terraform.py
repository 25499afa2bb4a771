"""Terraform output: terraform fmt's own layout, attachments and import blocks, and
compile --check after terraform fmt. The terraform binary runs where it exists (the tests
that need it are skipped, with the reason, where it does not)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from permgen.spec.compile import compile_file, terraform_text
from permgen.spec.outputs import hcl_layout
from tests.conftest import EXAMPLES, run_cli

TERRAFORM = shutil.which("terraform")
needs_terraform = pytest.mark.skipif(
    TERRAFORM is None, reason="no terraform binary on PATH: terraform fmt -check not run"
)


def _terraform(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert TERRAFORM is not None
    env = {**os.environ, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
    return subprocess.run(
        [TERRAFORM, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=60
    )


def _compile_tf(out: Path, *extra: str) -> None:
    result = run_cli(
        "compile", str(EXAMPLES / "platform.yaml"), "--out", str(out), "--format", "terraform",
        *extra,
    )  # fmt: skip
    assert result.exit_code == 0, result.output


@needs_terraform
@pytest.mark.parametrize("extra", [(), ("--import-existing",)])
def test_the_examples_terraform_passes_terraform_fmt_check(
    tmp_path: Path, extra: tuple[str, ...]
) -> None:
    _compile_tf(tmp_path, *extra)
    assert len(list(tmp_path.glob("*.tf"))) == 6
    result = _terraform("fmt", "-check", "-diff", ".", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_terraform
def test_the_checked_in_terraform_examples_are_fmt_clean() -> None:
    result = _terraform(
        "fmt", "-check", "-diff", str(EXAMPLES / "compiled-terraform"), cwd=EXAMPLES
    )
    assert result.returncode == 0, result.stdout + result.stderr


PLUGIN_DIRS = [
    Path.home() / ".terraform.d" / "plugins",
    Path.home() / ".local" / "share" / "terraform" / "plugins",
    Path("/usr/local/share/terraform/plugins"),
    Path("/usr/share/terraform/plugins"),
]


def _provider_mirror() -> Path | None:
    for d in PLUGIN_DIRS:
        if d.is_dir() and any(d.glob("**/terraform-provider-alicloud*")):
            return d
    return None


@needs_terraform
def test_the_examples_terraform_passes_terraform_validate(tmp_path: Path) -> None:
    mirror = _provider_mirror()
    if mirror is None:
        pytest.skip(
            "terraform validate needs the alicloud provider, and there is none offline "
            f"(looked in {', '.join(map(str, PLUGIN_DIRS))}); only terraform fmt -check ran"
        )
    _compile_tf(tmp_path, "--import-existing")
    (tmp_path / "versions.tf").write_text(
        "terraform {\n  required_providers {\n    alicloud = {\n"
        '      source = "aliyun/alicloud"\n    }\n  }\n}\n'
    )
    init = _terraform("init", "-backend=false", f"-plugin-dir={mirror}", cwd=tmp_path)
    assert init.returncode == 0, init.stdout + init.stderr
    result = _terraform("validate", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr


@needs_terraform
def test_compile_check_accepts_files_after_terraform_fmt(tmp_path: Path) -> None:
    _compile_tf(tmp_path)
    # a hand edit that changes only the layout, then terraform fmt puts it back
    path = tmp_path / "ingest-writer.tf"
    text = path.read_text()
    path.write_text(text.replace("policy_name     =", "policy_name=").replace('" : ', '":'))
    check = ["compile", str(EXAMPLES / "platform.yaml"), "--out", str(tmp_path),
             "--format", "terraform", "--check"]  # fmt: skip
    assert run_cli(*check).exit_code == 0
    assert _terraform("fmt", ".", cwd=tmp_path).returncode == 0
    assert path.read_text() == text
    assert run_cli(*check).exit_code == 0


def test_compile_check_still_sees_a_changed_string(tmp_path: Path) -> None:
    _compile_tf(tmp_path)
    path = tmp_path / "ingest-writer.tf"
    text = path.read_text()
    check = ["compile", str(EXAMPLES / "platform.yaml"), "--out", str(tmp_path),
             "--format", "terraform", "--check"]  # fmt: skip
    path.write_text(text.replace("policy_name     =", "policy_name ="))
    assert run_cli(*check).exit_code == 0
    # a space inside a string is meaning, not layout
    path.write_text(text.replace("corp-data/ingest/*", "corp-data/ ingest/*", 1))
    result = run_cli(*check)
    assert result.exit_code == 4
    assert "stale:" in result.output and "ingest-writer.tf" in result.output


def test_hcl_layout_keeps_strings_and_drops_spacing() -> None:
    assert hcl_layout('a   = "x  y"\n\n  b : "q\\" r"\n') == ['a="x  y"', 'b:"q\\" r"']
    assert hcl_layout('a = "x y"') != hcl_layout('a = "xy"')


def test_an_attachment_resource_per_principal_and_import_blocks() -> None:
    compiled = compile_file(EXAMPLES / "platform.yaml")
    text = terraform_text(compiled.roles["analytics-reader"], import_existing=True)
    assert re.findall(r'resource "(alicloud_ram_\w+)" "(\w+)"', text) == [
        ("alicloud_ram_policy", "analytics_reader"),
        ("alicloud_ram_group_policy_attachment", "analytics_reader_group_analysts"),
        ("alicloud_ram_user_policy_attachment", "analytics_reader_user_analytics_bot"),
    ]
    assert '  group_name  = "analysts"\n' in text
    assert "  policy_name = alicloud_ram_policy.analytics_reader.policy_name\n" in text
    assert re.findall(r"import \{\n  to = (\S+)\n  id = (\S+)\n\}", text) == [
        ("alicloud_ram_policy.analytics_reader", '"analytics-reader"'),
        (
            "alicloud_ram_group_policy_attachment.analytics_reader_group_analysts",
            '"group:analytics-reader:Custom:analysts"',
        ),
        (
            "alicloud_ram_user_policy_attachment.analytics_reader_user_analytics_bot",
            '"user:analytics-reader:Custom:analytics-bot"',
        ),
    ]
    # without the flag: no import blocks; an sts role's ceiling is attached to its RAM role
    plain = terraform_text(compiled.roles["mobile-uploader"])
    assert "import {" not in plain
    assert (
        'resource "alicloud_ram_role_policy_attachment" "mobile_uploader_role_oss_uploader"'
        in plain
    )
    assert '  role_name   = "oss-uploader"\n' in plain


def test_import_existing_needs_terraform_format() -> None:
    result = run_cli("compile", str(EXAMPLES / "platform.yaml"), "--import-existing")
    assert result.exit_code == 2
    assert "--import-existing needs --format terraform" in result.output
