"""Shared fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"

# The Alibaba SDKs read credentials from the environment; tests never use the caller's.
for _name in list(os.environ):
    if _name.startswith(("ALIYUN_ACCESS_KEY", "ALIBABA_CLOUD_", "PERMGEN_")):
        del os.environ[_name]
os.environ["ALIBABA_CLOUD_ECS_METADATA_DISABLED"] = "true"
# Compiled-template cache in a throw-away directory, not the user's home.
_CACHE = tempfile.mkdtemp(prefix="permgen-test-cache-")
os.environ["PERMGEN_CACHE_DIR"] = _CACHE
atexit.register(shutil.rmtree, _CACHE, True)


def run_cli(*args: str, input: str | None = None) -> Result:
    """Run permgen in process; a traceback in the output fails the test."""
    from permgen.cli import cli

    result = CliRunner().invoke(cli, list(args), input=input, catch_exceptions=True)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    assert "Traceback" not in result.output
    return result


@pytest.fixture
def cli_run() -> object:
    return run_cli
