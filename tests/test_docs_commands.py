"""Every command shown in README.md and docs/ runs, and does what the doc says.

Blocks are collected, not listed: every fenced block tagged ``sh``, ``bash``, ``console`` or
untagged, in README.md and docs/**/*.md, with a line starting ``permgen `` or ``$ permgen``.

- A *synopsis* (a block with an optional ``[--option ...]`` group) is not run: every command
  it names must exist, and every ``--option`` it shows must be an option of that command.
- Any other block runs, line by line (a line ending in ``\\`` goes on), in ``bash`` with
  ``pipefail``, from a scratch project (:func:`_project`: a copy of examples/ and the
  ``roles.yaml`` / ``policies/`` / git history that the docs' CI examples imply), with
  ``permgen`` on PATH and pointed at a fresh emulator account. In a ``console`` block the
  lines starting ``$ `` are the commands and the lines after one are its output: each shown
  line must appear, in order, in what the command printed (a line ``...`` stands for lines
  left out).
- A command exits 0 unless its comment says otherwise with ``# exit N`` (followed by ``:``, a
  parenthesis or the end of the line); "exits 4 when stale" describes a case, not this run.
  No output may hold a traceback.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import click
import pytest

from permgen.emulator import Backend, Emulator
from tests.conftest import EXAMPLES, ROOT
from tests.emulator.test_emulator import TRUST, attach_system, call, client

DOC_FILES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
LANGS = {"sh", "bash", "console", ""}
FENCE = re.compile(r"^(\s*)```(\w*)\s*$")
SYNOPSIS = re.compile(r"\[-")
EXPECTED_EXIT = re.compile(r"#\s*exit (\d+)\s*(?:$|[:(])")

#: Blocks that cannot run here, by (file relative to the repository, first command line
#: of the block) -> why. Keep it short; prefer making a block runnable (on the emulator).
NOT_RUNNABLE: dict[tuple[str, str], str] = {}

#: Programs the docs hand credentials to that this machine does not have, as stand-ins that
#: check what permgen gave them: ossutil gets the STS token in its environment.
STAND_INS = {
    "ossutil": """#!/bin/sh
# stand-in for Alibaba's ossutil: fails unless permgen gave it STS credentials
case "$OSS_ACCESS_KEY_ID" in STS.*) ;; *) echo "ossutil: no STS AccessKeyId" >&2; exit 1;; esac
[ -n "$OSS_ACCESS_KEY_SECRET" ] && [ -n "$OSS_SESSION_TOKEN" ] || { echo "ossutil: no token" >&2; exit 1; }
echo "ossutil $*"
""",
}


@dataclass
class Command:
    text: str
    line: int
    exit_code: int
    output: list[str]  # shown output (console blocks), "..." for lines left out


@dataclass
class Block:
    path: Path
    line: int
    lang: str
    body: list[str]

    @property
    def name(self) -> str:
        return f"{self.path.relative_to(ROOT)}:{self.line}"

    @property
    def synopsis(self) -> bool:
        return any(SYNOPSIS.search(line) for line in self.body)

    def commands(self) -> list[Command]:
        out: list[Command] = []
        pending = ""
        for n, raw in enumerate(self.body, start=self.line + 1):
            if self.lang == "console" and not pending:
                if not raw.startswith("$ "):
                    if out and raw.strip():
                        out[-1].output.append(raw.rstrip())
                    continue
                raw = raw[2:]
            stripped = raw.strip()
            if not pending and (not stripped or stripped.startswith("#")):
                continue
            if stripped.endswith("\\"):
                pending += stripped[:-1] + " "
                continue
            text = pending + stripped
            pending = ""
            match = EXPECTED_EXIT.search(text)
            out.append(Command(text, n, int(match.group(1)) if match else 0, []))
        return out


def _blocks() -> list[Block]:
    blocks = []
    for path in DOC_FILES:
        lines = path.read_text("utf-8").splitlines()
        i = 0
        while i < len(lines):
            match = FENCE.match(lines[i])
            if not match:
                i += 1
                continue
            start, lang, indent = i, match.group(2), match.group(1)
            i += 1
            body = []
            while i < len(lines) and not lines[i].strip().startswith("```"):
                body.append(lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i])
                i += 1
            i += 1
            if lang in LANGS and any(b.startswith(("permgen ", "$ permgen ")) for b in body):
                blocks.append(Block(path, start + 1, lang, body))
    return blocks


BLOCKS = _blocks()


def _not_runnable(block: Block) -> str | None:
    commands = block.commands()
    first = commands[0].text if commands else ""
    return NOT_RUNNABLE.get((str(block.path.relative_to(ROOT)), first))


def test_the_docs_have_command_blocks_and_the_allow_list_is_current() -> None:
    names = {b.path.name for b in BLOCKS}
    assert {"README.md", "explain.md", "ci.md"} <= names
    runnable = [b for b in BLOCKS if not b.synopsis]
    assert any(b.lang == "console" for b in runnable)
    listed = {(str(b.path.relative_to(ROOT)), b.commands()[0].text) for b in BLOCKS if b.commands()}
    assert set(NOT_RUNNABLE) <= listed, "an allow-listed block is no longer in the docs"


@pytest.mark.parametrize("block", [b for b in BLOCKS if b.synopsis], ids=lambda b: b.name)
def test_synopsis_names_real_commands_and_options(block: Block) -> None:
    from permgen.cli import cli

    ctx = click.Context(cli)
    commands: list[str] = []  # a line not starting "permgen" goes on the one before
    for line in block.body:
        if line.startswith("permgen "):
            commands.append(line)
        elif line.strip() and commands:
            commands[-1] += " " + line.strip()
    assert commands
    for text in commands:
        words = text.split()
        sub = cli.get_command(ctx, words[1])
        assert sub is not None, f"{block.name}: no command {words[1]!r}"
        known = {opt for p in sub.params for opt in (*p.opts, *p.secondary_opts)} | {"--help"}
        for option in re.findall(r"(?<![\w-])--[a-z][a-z0-9-]*", text.split(" # ")[0]):
            assert option in known, f"{block.name}: permgen {words[1]} has no {option}"


@pytest.fixture
def account() -> Iterator[dict[str, str]]:
    """A fresh emulator account with the principals examples/platform.yaml names, and an
    operator key that may manage RAM and assume the roles."""
    with Emulator(Backend()) as emu:
        admin = client(emu)
        for role in ("oss-uploader", "EtlRole"):
            call(admin, "CreateRole", RoleName=role, AssumeRolePolicyDocument=TRUST)
        for user in ("analytics-bot", "rotator-bot", "operator"):
            call(admin, "CreateUser", UserName=user)
        for group in ("analysts", "finance", "auditors"):
            call(admin, "CreateGroup", GroupName=group)
        attach_system(admin, "operator", "AliyunRAMFullAccess")
        attach_system(admin, "operator", "AliyunSTSAssumeRoleAccess")
        attach_system(admin, "operator", "AliyunOSSReadOnlyAccess")  # permgen audit
        key = emu.backend.add_key("user/operator")
        yield {
            "PERMGEN_ENDPOINT": emu.url,
            "PERMGEN_OSS_ENDPOINT": emu.url,
            "ALIBABA_CLOUD_ACCESS_KEY_ID": key.key_id,
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": key.secret,
        }


def _git(project: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.email=docs@example.invalid", "-c", "user.name=docs", *args],
        cwd=project,
        check=True,
        capture_output=True,
    )


def _project(tmp_path: Path) -> Path:
    """The folder the docs' commands run in: examples/ as shipped, and what the CI examples
    imply, a repository with a spec ``roles.yaml`` (the example platform spec), its compiled
    ``policies/``, a ``policy.json``, committed on ``main`` with ``origin/main`` pointing there."""
    project = tmp_path / "project"
    shutil.copytree(EXAMPLES, project / "examples")
    shutil.copy(EXAMPLES / "platform.yaml", project / "roles.yaml")
    shutil.copytree(EXAMPLES / "templates", project / "templates")
    shutil.copytree(EXAMPLES / "compiled", project / "policies")
    shutil.copy(EXAMPLES / "compiled" / "ingest-writer.json", project / "policy.json")
    _git(project, "init", "-q", "-b", "main")
    _git(project, "add", "-A")
    _git(project, "commit", "-q", "-m", "base")
    _git(project, "update-ref", "refs/remotes/origin/main", "HEAD")
    return project


def _bin(tmp_path: Path) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    scripts = {"permgen": f'#!/bin/sh\nexec "{sys.executable}" -m permgen "$@"\n', **STAND_INS}
    for name, text in scripts.items():
        path = bin_dir / name
        path.write_text(text)
        path.chmod(0o755)
    return bin_dir


def _in_order(shown: list[str], printed: list[str]) -> bool:
    rest = iter(printed)
    return all(any(line == got for got in rest) for line in shown if line.strip() != "...")


# allow-listed blocks are left out here (not skipped); the test above checks the list is current
RUNNABLE = [b for b in BLOCKS if not b.synopsis and _not_runnable(b) is None]


@pytest.mark.parametrize("block", RUNNABLE, ids=lambda b: b.name)
def test_doc_commands_run_as_shown(block: Block, tmp_path: Path, account: dict[str, str]) -> None:
    project = _project(tmp_path)
    env = {
        "PATH": f"{_bin(tmp_path)}{os.pathsep}{os.environ.get('PATH', '/usr/bin:/bin')}",
        "PYTHONPATH": str(ROOT),
        "HOME": str(tmp_path / "home"),
        "LANG": "C.UTF-8",
        **account,
    }
    for command in block.commands():
        proc = subprocess.run(
            ["bash", "-o", "pipefail", "-c", command.text],
            cwd=project,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        where = f"{block.name} (line {command.line}): {command.text}"
        printed = proc.stdout + proc.stderr
        assert "Traceback" not in printed, where
        assert proc.returncode == command.exit_code, f"{where}\n{printed}"
        if command.output:
            lines = proc.stdout.splitlines() + proc.stderr.splitlines()
            assert _in_order([o.rstrip() for o in command.output], [ln.rstrip() for ln in lines]), (
                f"{where}: the doc shows\n" + "\n".join(command.output) + f"\nit printed\n{printed}"
            )


def test_the_docs_pin_no_tag_that_does_not_exist() -> None:
    tags = set(
        subprocess.run(
            ["git", "tag"], cwd=ROOT, capture_output=True, text=True, check=False
        ).stdout.split()
    )
    for path in DOC_FILES:
        text = path.read_text("utf-8")  # this repository's action and pre-commit hooks
        for ref in re.findall(r"(?:permgen@|rev:\s*)(v\d[\w.-]*)", text):
            assert ref in tags, f"{path.relative_to(ROOT)} pins {ref}, which is not a tag"


def test_the_cli_reference_names_each_command_once() -> None:
    text = (ROOT / "docs" / "cli.md").read_text("utf-8")
    assert "permgen permgen" not in text
    assert "Usage: permgen explain [OPTIONS] POLICY..." in text
