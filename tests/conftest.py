"""Shared fixtures."""

from __future__ import annotations

import atexit
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from permgen.account.types import AccessKey, Secret

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"


@dataclass(frozen=True)
class LiveProfile:
    """Whether the contract suite also runs against a real account (CONTRIBUTING.md)."""

    enabled: bool
    reason: str  # why it does not run, when it does not
    key: AccessKey | None = None
    endpoint: str | None = None  # None: the real cloud


def live_profile(environ: Mapping[str, str]) -> LiveProfile:
    """The live profile from the environment: PERMGEN_LIVE=1 and both of
    PERMGEN_LIVE_ACCESS_KEY_ID and PERMGEN_LIVE_ACCESS_KEY_SECRET (a dedicated test account);
    PERMGEN_LIVE_ENDPOINT optionally points it elsewhere."""
    if environ.get("PERMGEN_LIVE") != "1":
        return LiveProfile(False, "live profile not run: PERMGEN_LIVE=1 is not set")
    key_id = environ.get("PERMGEN_LIVE_ACCESS_KEY_ID", "")
    secret = environ.get("PERMGEN_LIVE_ACCESS_KEY_SECRET", "")
    if not key_id or not secret:
        return LiveProfile(
            False,
            "live profile not run: PERMGEN_LIVE=1 but PERMGEN_LIVE_ACCESS_KEY_ID and "
            "PERMGEN_LIVE_ACCESS_KEY_SECRET are not both set",
        )
    return LiveProfile(
        True, "", AccessKey(key_id, Secret(secret)), environ.get("PERMGEN_LIVE_ENDPOINT") or None
    )


# Read before the environment is cleared below, so no other test can see the credentials.
LIVE = live_profile(os.environ)
_LIVE_ENV = {k: v for k, v in os.environ.items() if k.startswith("PERMGEN_LIVE")}


@pytest.hookimpl(optionalhook=True)
def pytest_configure_node(node: Any) -> None:
    """pytest-xdist (make test): a worker starts with the environment cleared below, so the
    live profile's variables go to it here, not through its environment."""
    node.workerinput["permgen_live_env"] = _LIVE_ENV


def pytest_configure(config: pytest.Config) -> None:
    global LIVE
    live_env = getattr(config, "workerinput", {}).get("permgen_live_env")
    if live_env is not None:  # an xdist worker: the profile as the run was started
        LIVE = live_profile(live_env)


def pytest_collection_finish(session: pytest.Session) -> None:
    """What importing and collecting made (modules, test items, parametrize values) lives
    until the run ends: moved out of the garbage collector's sight, its full collections
    stop rescanning it after every test that allocates a lot (hypothesis above all). Only
    those objects are frozen: what tests make is collected as before."""
    import gc

    gc.freeze()


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
def zero_backoff(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, str]]:
    """Retries in this test wait 0 s: the SDK adapter's backoff runs with a zero-backoff copy
    of its config (the retry path, its logging and the attempt count are unchanged). Returns
    the retries made, as (action, attempt, reason)."""
    import dataclasses

    from permgen.account import sdk

    real = sdk._backoff
    retries: list[tuple[str, int, str]] = []

    def backoff(action: str, attempt: int, reason: str, config: Any, sleep: Any) -> None:
        retries.append((action, attempt, reason))
        real(action, attempt, reason, dataclasses.replace(config, backoff_base=0.0), sleep)

    monkeypatch.setattr(sdk, "_backoff", backoff)
    return retries


@pytest.fixture
def cli_run() -> object:
    return run_cli


#: SDK clients the tests made (tests/emulator/test_emulator.py ``client``): their pooled
#: connections are closed when the test ends, not whenever the collector finds them (a
#: socket finalized after the last test is an "unraisable" warning that fails the run)
OPEN_SDK_CLIENTS: list[Any] = []


@pytest.fixture(autouse=True)
def _close_sdk_clients() -> Iterator[None]:
    yield
    while OPEN_SDK_CLIENTS:
        OPEN_SDK_CLIENTS.pop().session.close()


def pytest_terminal_summary(terminalreporter: Any) -> None:
    """Say plainly when the live contract cases did not run: a skip is not a pass."""
    skipped = [r for r in terminalreporter.stats.get("skipped", []) if "[live" in r.nodeid]
    if skipped:
        terminalreporter.write_line(
            f"{len(skipped)} live contract cases NOT RUN ({LIVE.reason}); see CONTRIBUTING.md"
        )


def operator_key(backend: Any) -> tuple[str, str]:
    """The key of a RAM user `operator` with RAM and OSS full access (system policies, so no
    custom policy is added to the account): who account commands run as in tests, since
    they refuse the account's own root key."""
    from permgen.emulator import ADMIN_KEY_ID

    made: tuple[str, str] | None = getattr(backend, "_test_operator_key", None)
    if made is not None:
        return made
    root = backend.keys[ADMIN_KEY_ID]
    backend.CreateUser({"UserName": "operator"}, root)
    for policy in ("AliyunRAMFullAccess", "AliyunOSSFullAccess"):
        backend.AttachPolicyToUser(
            {"PolicyName": policy, "PolicyType": "System", "UserName": "operator"}, root
        )
    key = backend.add_key("user/operator")
    backend._test_operator_key = (key.key_id, key.secret)
    return key.key_id, key.secret
