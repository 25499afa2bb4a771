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


def test_compile_and_lint_import_nothing_heavy() -> None:
    """The SDK, jsonschema (only for explaining a bad spec) and the HTTP stack stay out."""
    code = (
        "import sys, io, contextlib; from permgen.cli import main\n"
        "for args in (['compile', 'examples/platform.yaml'],"
        " ['lint', 'tests/lint_corpus/bad/unscoped-list.json', 'examples/platform.yaml']):\n"
        "    with contextlib.redirect_stdout(io.StringIO()):\n"
        "        try:\n            main(args)\n        except SystemExit as exc:\n"
        "            assert exc.code in (0, 3), exc.code\n"
        "heavy = [m for m in sys.modules if m.startswith(('aliyunsdk', 'jsonschema', 'uvicorn',"
        " 'starlette', 'multiprocessing', 'hypothesis'))]\n"
        "print('HEAVY', heavy)\n"
    )
    from tests.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert "HEAVY []" in out


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "permgen, version" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
