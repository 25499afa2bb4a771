"""The command line's frame: help, version, and how errors become exit codes."""

from __future__ import annotations

import subprocess
import sys

from click.testing import CliRunner

from permgen.cli import cli


def test_help_lists_commands_without_importing_them() -> None:
    code = (
        "import sys; from permgen.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in sys.modules if m.startswith(('aliyunsdk', 'jinja2', 'jsonschema', 'z3', 'uvicorn', 'starlette'))]\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    assert "Usage: permgen" in out
    assert "HEAVY []" in out


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "permgen, version" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
