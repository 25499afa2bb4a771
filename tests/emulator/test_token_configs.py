"""permgen token with a config file it cannot use: exit 2 before AssumeRole, nothing written.

And the token service: a binding's max_duration is the duration when the request names none.
Real SDK, real HTTP, the emulator as the account.
"""

from __future__ import annotations

import asyncio
import json
import shutil
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from permgen.account.sdk import SdkStsClient
from permgen.account.types import AccessKey, ClientConfig, Secret
from permgen.emulator import Backend, Emulator
from permgen.spec.load import load_spec
from permgen.sts.service import TokenService, load_callers, new_key
from tests.conftest import EXAMPLES, run_cli
from tests.emulator.test_emulator import TRUST, attach_system, call, client

SPEC = str(EXAMPLES / "platform.yaml")


@pytest.fixture(scope="module")
def _emulator() -> Iterator[tuple[Emulator, str, str]]:
    with Emulator(Backend()) as emu:  # one for the module: stopping one takes half a second
        admin = client(emu)
        call(admin, "CreateUser", UserName="token-vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "token-vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/token-vendor")
        yield emu, key.key_id, key.secret


@pytest.fixture
def minted(
    _emulator: tuple[Emulator, str, str], monkeypatch: pytest.MonkeyPatch
) -> Callable[[], int]:
    """Point permgen at the emulator; returns how many AssumeRole calls the test has made."""
    emu, key_id, secret = _emulator
    monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
    before = emu.calls.get("AssumeRole", 0)
    return lambda: emu.calls.get("AssumeRole", 0) - before


def _token(fmt: str, config: Path | str) -> tuple[int, str]:
    result = run_cli(
        "token",
        "mobile-uploader",
        "--spec",
        SPEC,
        "--var",
        "user=alice",
        "--format",
        fmt,
        "--config-file",
        str(config),
    )
    return result.exit_code, result.stderr


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"[]", "expected an object, got an array"),
        (b"null", "expected an object, got null"),
        (b'{"profiles": "x"}', "profiles: expected an array, got a string"),
        (b'{"profiles": [[]]}', "profiles[0]: expected an object, got an array"),
        (b'{"profiles": [', "not JSON"),
        (b"\xff\xfe{}", "not UTF-8 text"),
    ],
)
def test_a_bad_aliyun_cli_config_mints_nothing_and_writes_nothing(
    minted: Callable[[], int], tmp_path: Path, data: bytes, fragment: str
) -> None:
    config = tmp_path / "config.json"
    config.write_bytes(data)
    code, stderr = _token("aliyun-cli", config)
    assert code == 2
    assert stderr.startswith(f"permgen: error: {config}: ") and fragment in stderr
    assert "Traceback" not in stderr
    assert minted() == 0  # checked before any token was minted
    assert config.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.json"]


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"[default]\naccessKeyID = \xff\n", "not UTF-8 text"),
        (b"accessKeyID = x\n", "line 1: a line before any [section] header"),
        (b"[a]\n[a]\n", "line 2: section [a] already exists"),
        (b"[a]\nx = 1\nx = 2\n", "line 3: 'x' already set in [a]"),
        (b"[a]\naccessKeySecret TOP-SECRET\n", "line 2: not 'key = value'"),
    ],
)
def test_a_bad_ossutil_config_mints_nothing_and_writes_nothing(
    minted: Callable[[], int], tmp_path: Path, data: bytes, fragment: str
) -> None:
    config = tmp_path / "ossutilconfig"
    config.write_bytes(data)
    code, stderr = _token("ossutil", config)
    assert code == 2
    assert stderr.startswith(f"permgen: error: {config}: ") and fragment in stderr
    assert len(stderr.splitlines()) == 1
    assert "TOP-SECRET" not in stderr
    assert minted() == 0
    assert config.read_bytes() == data


@pytest.mark.parametrize("fmt", ["aliyun-cli", "ossutil"])
def test_a_config_path_that_cannot_be_written_mints_nothing(
    minted: Callable[[], int], tmp_path: Path, fmt: str
) -> None:
    code, stderr = _token(fmt, "/proc/x/config")
    assert code == 2
    assert stderr == "permgen: error: /proc/x/config: cannot write: No such file or directory\n"
    assert minted() == 0
    (tmp_path / "file").write_text("")
    code, stderr = _token(fmt, tmp_path / "file" / "config")
    assert code == 2 and "file/config: cannot " in stderr, stderr
    assert minted() == 0


def test_a_good_config_is_still_updated_after_the_checks(
    minted: Callable[[], int], tmp_path: Path
) -> None:
    config = tmp_path / "sub" / "config.json"
    code, stderr = _token("aliyun-cli", config)
    assert code == 0, stderr
    assert minted() == 1
    assert [p["name"] for p in json.loads(config.read_text())["profiles"]] == ["permgen"]
    assert [p.name for p in config.parent.iterdir()] == ["config.json"]  # no probe left


def test_a_bindings_max_duration_is_the_default_duration(tmp_path: Path) -> None:
    """A request that names no duration gets the binding's maximum, not the role's."""
    shutil.copytree(EXAMPLES / "templates", tmp_path / "templates")
    spec_file = tmp_path / "roles.yaml"
    spec_file.write_text(
        (EXAMPLES / "platform.yaml")
        .read_text()
        .replace("      duration: 900", "      duration: 3600")
    )
    spec = load_spec(spec_file)
    _, digest = new_key()
    callers_file = tmp_path / "callers.yaml"
    callers_file.write_text(
        f"callers:\n  - {{id: alice, key_sha256: {digest}, roles: "
        "{mobile-uploader: {vars: {user: '{caller}'}, max_duration: 1200}}}\n"
    )
    (caller,) = load_callers(callers_file, spec)
    with Emulator(Backend()) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/vendor")
        sts = SdkStsClient(
            AccessKey(key.key_id, Secret(key.secret)), ClientConfig(endpoint=emu.url)
        )
        service = TokenService(spec, [caller], sts)
        creds, _, _ = asyncio.run(service.token(caller, "mobile-uploader", {}, None))
        issued = emu.backend.clock()
        expires = emu.backend.keys[creds.access_key_id].expires
        assert expires is not None and 1190 <= expires - issued <= 1200
        with pytest.raises(ValueError, match="over this caller's maximum 1200"):
            asyncio.run(service.token(caller, "mobile-uploader", {}, 1800))
