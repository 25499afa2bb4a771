"""The command line's frame: help, version, and how errors become exit codes."""

from __future__ import annotations

import gc
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from permgen.cli import cli


def test_help_lists_commands_without_importing_them() -> None:
    code = (
        "import sys; from permgen.cli import main\n"
        "try:\n    main(['--help'])\nexcept SystemExit:\n    pass\n"
        "heavy = [m for m in sys.modules if m.startswith(('aliyunsdk', 'alibabacloud', 'jinja2', 'jsonschema', 'z3', 'uvicorn', 'starlette', 'jwt', 'redis', 'cryptography'))]\n"
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
        "heavy = [m for m in sys.modules if m.startswith(('aliyunsdk', 'alibabacloud', 'jsonschema', 'uvicorn',"
        " 'starlette', 'multiprocessing', 'hypothesis', 'jwt'))]\n"
        "print('HEAVY', heavy)\n"
    )
    from tests.conftest import ROOT

    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT
    ).stdout
    assert "HEAVY []" in out


def test_batch_commands_collect_garbage_less_often_and_serve_does_not() -> None:
    """The batch threshold holds while a batch command runs, and nothing else: importing
    permgen, the library and serve leave the collector as they found it, and the caller's
    thresholds are back once main() returns."""
    from permgen.cli._common import BATCH_GC_THRESHOLD
    from tests.conftest import ROOT

    code = (
        "import gc, sys, io, contextlib\n"
        "gc.set_threshold(701, 11, 12)\n"
        "import permgen.cli, permgen.spec.compile, permgen.semantics, permgen.spec.templates\n"
        "imported = gc.get_threshold()\n"
        "permgen.spec.compile.compile_file('examples/platform.yaml')\n"
        "library = gc.get_threshold()\n"
        "during = []\n"
        "real = permgen.spec.compile.compile_file\n"
        "def spy(*a, **k):\n    during.append(gc.get_threshold())\n    return real(*a, **k)\n"
        "permgen.spec.compile.compile_file = spy\n"
        "with contextlib.redirect_stdout(io.StringIO()):\n"
        "    try:\n        permgen.cli.main(sys.argv[1:])\n    except SystemExit:\n        pass\n"
        "print('GC', imported, library, during, gc.get_threshold())\n"
    )

    def thresholds(*args: str) -> str:
        run = subprocess.run(
            [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT
        )
        return run.stdout.strip().splitlines()[-1]

    mine = "(701, 11, 12)"
    assert (
        thresholds("compile", "examples/platform.yaml")
        == f"GC {mine} {mine} [{BATCH_GC_THRESHOLD}] {mine}"
    )
    # serve runs its body (and fails on the missing callers file) without touching the collector
    long_running = thresholds(
        "serve", "--spec", "examples/platform.yaml", "--callers", "/nonexistent"
    )
    assert long_running == f"GC {mine} {mine} [] {mine}"


def test_audit_runs_with_the_collector_off_and_turns_it_back_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from permgen.account import audit as engine

    snap = tmp_path / "account.json"
    engine.save_snapshot(engine.Snapshot("1234567890123456", (), (), (), {}, ()), str(snap))
    during: list[bool] = []
    real = engine.audit

    def spy(snapshot: engine.Snapshot, *, jobs: int = 1) -> engine.AuditReport:
        during.append(gc.isenabled())
        return real(snapshot, jobs=jobs)

    monkeypatch.setattr(engine, "audit", spy)
    assert gc.isenabled()
    result = CliRunner().invoke(cli, ["audit", "--snapshot", str(snap), "--format", "json"])
    assert result.exit_code == 0, result.output
    assert during == [False]
    assert gc.isenabled()
    # and back off again when it was off before
    gc.disable()
    try:
        CliRunner().invoke(cli, ["audit", "--snapshot", str(snap)])
    finally:
        was = gc.isenabled()
        gc.enable()
    assert was is False


def test_version() -> None:
    result = CliRunner().invoke(cli, ["--version"])
    assert result.exit_code == 0
    assert "permgen, version" in result.output


def test_unknown_command_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["frobnicate"])
    assert result.exit_code == 2
