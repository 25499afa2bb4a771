"""One test per reproduction of a traceback where a documented exit 2 was due.

Each case: exit 2, one ``permgen: error:`` line naming the file (and for the callers file
the key path and caller), no traceback, nothing written. The classes are fuzzed in
tests/test_fuzz_inputs.py; the token cases that need a real mint are in
tests/emulator/test_token_configs.py.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from permgen._internal.fileio import atomic_write, atomic_write_many
from permgen.account.credentials import read_aliyun_config, resolve
from permgen.errors import InputError
from permgen.spec.types import check_placeholder_value
from tests.conftest import EXAMPLES, ROOT, run_cli
from tests.test_fuzz_inputs import assert_clean, invoke

PLATFORM = str(EXAMPLES / "platform.yaml")
# fixed digests: test ids must be the same in every process that collects them
H1 = hashlib.sha256(b"pgk_input-regressions-1").hexdigest()
H2 = hashlib.sha256(b"pgk_input-regressions-2").hexdigest()
GOOD_BINDING = "{mobile-uploader: {vars: {user: '{caller}'}}}"


def _one_error_line(stderr: str) -> str:
    lines = stderr.splitlines()
    assert len(lines) == 1, stderr
    assert lines[0].startswith("permgen: error: ")
    return lines[0]


# --------------------------------------------------------------------------- callers file

CALLERS_CASES = [
    # (file text, fragment of the message)
    ("", "no callers"),
    ("[]", "expected a mapping with a callers: list, got a list"),
    ("null", "no callers"),
    ("callers: 5", "callers: expected a list of callers, got an integer"),
    ("callers: []", "callers: no callers"),
    ("callers: [1]", "callers[0]: expected a mapping (id, key_sha256, roles ...), got an integer"),
    ("other: 1\ncallers: []", "other: unknown key"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: [mobile-uploader]}}",
     "callers[0].roles: expected a mapping of role name to binding, got a list (caller 'a')"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: {{vars: 5}}}}}}",
     "callers[0].roles.mobile-uploader.vars: expected a mapping of placeholder to value, got an integer"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: [1]}}}}",
     "callers[0].roles.mobile-uploader: expected a mapping (vars, max_duration), got a list"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, rate: fast}}",
     "callers[0].rate: expected a number of requests per second above 0 and at most 1,000,000, got a string"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, rate: '10'}}", "callers[0].rate: expected a number"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, rate: 0}}", "at most 1,000,000, got an integer 0"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, rate: .nan}}", "callers[0].rate"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, rate: {'9' * 400}}}", "callers.yaml:2:97: an integer of 400 characters (at most 64)"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, rate: .inf}}", "got a number inf"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, burst: 0}}", "callers[0].burst: expected an integer from 1 to 1,000,000, got an integer 0"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, burst: {'9' * 400}}}", "callers.yaml:2:98: an integer of 400 characters (at most 64)"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, burst: [1]}}", "callers[0].burst"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, rates: 5}}", "callers[0].rates: unknown key"),
    ("callers:\n  - {id: a, key_sha256: 5}", "callers[0].key_sha256: expected a SHA-256 hex digest (64 hex digits), got an integer"),
    (f"callers:\n  - {{id: a, key_sha256: {'1' * 64}}}", "quote the digest"),
    ("callers:\n  - {id: a}", "callers[0]: key_sha256: required"),
    (f"callers:\n  - {{id: a, key_sha256: {H1[:-1]}z}}", "callers[0].key_sha256"),
    (f"callers:\n  - {{key_sha256: {H1}}}", "callers[0]: id: required"),
    (f"callers:\n  - {{id: 5, key_sha256: {H1}}}", "callers[0].id: expected a string, got an integer"),
    (f"callers:\n  - {{id: [a], key_sha256: {H1}}}", "callers[0].id: expected a string, got a list"),
    (f"callers:\n  - {{id: 'a/b', key_sha256: {H1}, roles: {GOOD_BINDING}}}",
     "callers[0].id: 'a/b' is not a valid id"),
    (f"callers:\n  - {{id: '..', key_sha256: {H1}}}", "is not a valid id"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}}}\n  - {{id: a, key_sha256: {H2}}}",
     "callers[1].id: duplicate id 'a': callers[0] has it too"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}}}\n  - {{id: b, key_sha256: {H1.upper()}}}",
     "callers[1].key_sha256: duplicate key hash: callers[0] has it too"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{ingest-writer: {{}}}}}}",
     "callers[0].roles.ingest-writer: not a role with an sts: block"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: {{vars: {{}}}}}}}}",
     "no binding for placeholder {user}"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: {{vars: {{user: 7}}}}}}}}",
     "callers[0].roles.mobile-uploader.vars.user: expected \"{caller}\", \"{request}\" or a fixed value as a string, got an integer"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: {{vars: {{user: 'a/b'}}}}}}}}",
     "can never widen"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: {{vars: {{user: '{{caller}}', x: y}}}}}}}}",
     "vars.x: role mobile-uploader has no placeholder {x}"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: {{vars: {{user: '{{caller}}'}}, max_duration: 3600}}}}}}",
     "max_duration: expected whole seconds from 900 to role mobile-uploader's sts.duration (900), got 3600"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: {{vars: {{user: '{{caller}}'}}, max_duration: '900'}}}}}}",
     "max_duration: expected whole seconds from 900"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: {{vars: {{user: '{{caller}}'}}, max_duration: 60}}}}}}",
     "got 60"),
    (f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {{mobile-uploader: {{varz: {{}}}}}}}}",
     "mobile-uploader.varz: unknown key"),
    (f"callers:\n  - id: a\n    id: b\n    key_sha256: {H1}\n", "duplicate key 'id'"),
    ("callers: [", "not valid YAML"),
    ("callers: !!python/object:os.system {}", "not valid YAML"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "fragment"), CALLERS_CASES)
def test_a_bad_callers_file_is_exit_2_naming_file_path_and_caller(
    tmp_path: Path, text: str, fragment: str
) -> None:
    callers = tmp_path / "callers.yaml"
    callers.write_text(text)
    result = invoke("serve", "--check", "--spec", PLATFORM, "--callers", str(callers))
    assert_clean(result)
    assert result.exit_code == 2, result.output
    line = _one_error_line(result.stderr)
    assert line.startswith(f"permgen: error: {callers}"), line
    assert fragment in line, line


@pytest.mark.parametrize(
    "data",
    [b"callers:\n  - {id: \xff}\n", b"\xef\xbb\xbf\xfe", b"\x00"],
    ids=["latin1", "bom", "nul"],
)
def test_a_callers_file_that_is_not_text_is_exit_2(tmp_path: Path, data: bytes) -> None:
    callers = tmp_path / "callers.yaml"
    callers.write_bytes(data)
    result = invoke("serve", "--check", "--spec", PLATFORM, "--callers", str(callers))
    assert result.exit_code == 2
    assert str(callers) in _one_error_line(result.stderr)


def test_the_documented_callers_file_passes_the_check(tmp_path: Path) -> None:
    callers = tmp_path / "callers.yaml"
    callers.write_text(
        "callers:\n"
        f"  - id: alice\n    key_sha256: {H1}\n    rate: 10\n    burst: 20\n"
        '    roles:\n      mobile-uploader:\n        vars: {user: "{caller}"}\n'
        "        max_duration: 900\n"
        f"  - id: batch-importer\n    key_sha256: {H2}\n"
        '    roles:\n      mobile-uploader:\n        vars: {user: "{request}"}\n'
        f"  - id: fixed\n    key_sha256: '{'0' * 64}'\n    rate: 0.5\n"
        "    roles:\n      mobile-uploader:\n        vars: {user: shared-inbox}\n"
    )
    result = invoke("serve", "--check", "--spec", PLATFORM, "--callers", str(callers))
    assert result.exit_code == 0, result.output
    assert result.stdout == f"{callers}: 3 caller(s), 3 role binding(s): ok\n"


def test_serve_with_a_bad_callers_file_exits_2_without_a_traceback(tmp_path: Path) -> None:
    callers = tmp_path / "callers.yaml"
    callers.write_text(f"callers:\n  - {{id: a, key_sha256: {H1}, roles: [mobile-uploader]}}\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PERMGEN_ENDPOINT": "http://127.0.0.1:9"}
    proc = subprocess.run(
        [sys.executable, "-m", "permgen", "serve", "--spec", PLATFORM, "--callers", str(callers)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    assert "callers[0].roles: expected a mapping of role name to binding, got a list" in (
        _one_error_line(proc.stderr)
    )


def test_an_audit_log_that_cannot_be_opened_is_exit_2(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    callers = tmp_path / "callers.yaml"
    callers.write_text(f"callers:\n  - {{id: a, key_sha256: {H1}, roles: {GOOD_BINDING}}}\n")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIx")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "y")
    result = run_cli(
        "serve",
        "--spec",
        PLATFORM,
        "--callers",
        str(callers),
        "--endpoint",
        "http://127.0.0.1:9",
        "--audit-log",
        "/nonexistent/x",
    )
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert "--audit-log /nonexistent/x: cannot open: No such file or directory" in line


def test_a_placeholder_value_must_match_fully() -> None:
    assert check_placeholder_value("user", "alice") is None
    assert check_placeholder_value("user", "alice\n") is not None
    result = run_cli("compile", PLATFORM, "--role", "mobile-uploader", "--var", "user=alice\n")
    assert result.exit_code == 2


# --------------------------------------------------------------------------- aliyun CLI config


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        (b"[]", "expected an object, got an array"),
        (b"null", "expected an object, got null"),
        (b"7", "expected an object, got a number"),
        (b'{"profiles": {}}', "profiles: expected an array, got an object"),
        (b'{"profiles": [1]}', "profiles[0]: expected an object, got a number"),
        (b'{"profiles": [{"name": 5}]}', "profiles[0].name: expected a string"),
        (b'{"current": []}', "current: expected a string, got an array"),
        (b'{"profiles": [NaN]}', "not JSON"),
        (b'{"profiles": [', "not JSON"),
        (b'{"current": "\xff"}', "not UTF-8 text"),
    ],
)
def test_a_malformed_aliyun_cli_config_is_exit_2_when_reading_credentials(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: bytes, fragment: str
) -> None:
    config = tmp_path / "config.json"
    config.write_bytes(text)
    with pytest.raises(InputError, match="^" + str(config)) as info:
        read_aliyun_config(config)
    assert fragment in str(info.value)
    with pytest.raises(InputError, match=fragment.replace("[", r"\[")):
        resolve(environ={}, config_path=config)
    monkeypatch.setenv("PERMGEN_ALIYUN_CONFIG", str(config))
    result = run_cli("plan", PLATFORM, "--endpoint", "http://127.0.0.1:9")
    assert result.exit_code == 2
    assert fragment in _one_error_line(result.stderr)
    assert config.read_bytes() == text


def test_a_profile_whose_key_is_not_a_string_is_exit_2(tmp_path: Path) -> None:
    config = tmp_path / "config.json"
    config.write_text(
        json.dumps(
            {"profiles": [{"name": "default", "access_key_id": 5, "access_key_secret": "s"}]}
        )
    )
    with pytest.raises(InputError, match="access_key_id is not a string"):
        resolve(environ={}, config_path=config)


# --------------------------------------------------------------------------- output files


def test_compile_out_to_proc_is_exit_2_and_writes_nothing() -> None:
    result = run_cli("compile", PLATFORM, "--out", "/proc/x")
    assert result.exit_code == 2
    assert "/proc/x/" in _one_error_line(result.stderr)
    assert "cannot write" in result.stderr
    assert not Path("/proc/x").exists()


def test_a_failed_write_leaves_no_file_and_no_new_directory(tmp_path: Path) -> None:
    ok = tmp_path / "new" / "deeper" / "a.json"
    with pytest.raises(InputError, match=r"^/proc/x/b\.json: cannot write"):
        atomic_write_many({ok: "{}", Path("/proc/x/b.json"): "{}"})
    assert list(tmp_path.iterdir()) == []  # the temporary file and new/deeper are gone
    with pytest.raises(InputError, match=r"^/proc/self/x/f: cannot write"):
        atomic_write("/proc/self/x/f", "x")
    target = tmp_path / "dir"
    target.mkdir()
    with pytest.raises(InputError, match="dir: cannot write: Is a directory"):
        atomic_write(target, "x")
    assert list(target.iterdir()) == []


def test_a_directory_where_an_output_file_goes_fails_before_any_rename(tmp_path: Path) -> None:
    out = tmp_path / "out"
    (out / "mobile-uploader.json").mkdir(parents=True)
    result = run_cli("compile", PLATFORM, "--out", str(out))
    assert result.exit_code == 2
    assert "mobile-uploader.json: cannot write: Is a directory" in _one_error_line(result.stderr)
    assert sorted(p.name for p in out.iterdir()) == ["mobile-uploader.json"]  # nothing renamed


def test_compile_check_with_a_non_utf8_output_file_reports_it_stale(tmp_path: Path) -> None:
    out = tmp_path / "out"
    assert run_cli("compile", PLATFORM, "--out", str(out)).exit_code == 0
    (out / "ingest-writer.json").write_bytes(b"\xff\xfe")
    result = run_cli("compile", PLATFORM, "--out", str(out), "--check")
    assert result.exit_code == 4
    assert f"stale:   {out / 'ingest-writer.json'}" in result.stdout


# --------------------------------------------------------------------------- emulator files


@pytest.mark.parametrize(
    ("data", "fragment"),
    [
        (b"[]", "(top level): expected an object, got a list"),
        (b"null", "(top level): expected an object, got null"),
        (b'{"keys": {}}', "keys: expected a list, got an object"),
        (b'{"keys": [{"key_id": 1, "secret": "s", "principal": "root"}]}', "keys[0].key_id: expected a string, got an integer"),
        (b'{"users": [], "version": 1}', "users: expected an object, got a list"),
        (b'{"bogus": 1}', "Additional properties are not allowed"),
        (b'{"counter": "3"}', "counter: expected an integer, got a string"),
        (b'{"version": 2}', "version: expected 1"),
        (
            b'{"policies": [{"name": "p", "type": "Custom", "description": "", '
            b'"versions": {"v1": "{}"}, "default": "v2"}]}',
            "policies[0].default: no version 'v2'",
        ),
        (
            b'{"policies": [{"name": "p", "type": "Custom", "description": "", '
            b'"versions": {"v1": "nope"}, "default": "v1"}]}',
            "policies[0].versions.v1",
        ),
        (b'{"attachments": [{"kind": "User", "name": "u", "policies": [["Custom"]]}]}', "attachments[0].policies[0]"),
        (b'{"counter": 1', "not JSON"),
        (b'{"keys": [{"key_id": "k", "secret": "s", "principal": "root", "expires": NaN}]}', "NaN is not a JSON value"),
        (b"\xff\xfe", "not UTF-8 text"),
    ],
)  # fmt: skip
def test_a_bad_emulator_state_file_is_exit_2(tmp_path: Path, data: bytes, fragment: str) -> None:
    state = tmp_path / "state.json"
    state.write_bytes(data)
    result = run_cli("emulator", "--state", str(state))
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert line.startswith(f"permgen: error: {state}: ")
    assert fragment in line, line
    assert state.read_bytes() == data  # not overwritten


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("[]", "(top level): expected an object, got a list"),
        ("users: [1]", ":1:9: users[0]: expected an object, got an integer"),
        ("users: [{name: a, groups: devs}]", "users[0].groups: expected a list, got a string"),
        ("faults:\n  - {action: GetPolicy, status: high}", ":2:25: faults[0].status: expected an integer, got a string"),
        ("faults:\n  - {action: GetPolicy, status: 9999}", "faults[0].status: expected a maximum of 599, got 9999"),
        ("faults:\n  - {action: GetPolicy, times: 1.5}", "faults[0].times"),
        ("faults:\n  - {action: GetPolicy, delay: soon}", "faults[0].delay"),
        ("faults:\n  - {code: Throttling}", "faults[0]: 'action' is a required property"),
        ("attachments:\n  - {policy: p, to: 'bucket:x'}", "attachments[0].to: expected a string matching ^(user|group|role):."),
        ("roles:\n  - {name: r, max_session: long}", "roles[0].max_session"),
        ("policies:\n  - {name: p, document: '{}'}", "policies[0].document: expected an object, got a string"),
        ("users:\n  - {name: a, access_keys: [{id: k}]}", "users[0].access_keys[0]: 'secret' is a required property"),
        ("groups: [[a]]", "groups[0]"),
        ("extra: 1", "Additional properties are not allowed"),
        ("users: [", "not valid YAML"),
    ],
)  # fmt: skip
def test_a_bad_emulator_seed_file_is_exit_2(tmp_path: Path, text: str, fragment: str) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_text(text)
    result = run_cli("emulator", "--seed", str(seed))
    assert result.exit_code == 2
    line = _one_error_line(result.stderr)
    assert line.startswith(f"permgen: error: {seed}"), line
    assert fragment in line, line


def test_an_emulator_seed_file_that_is_not_utf8_is_exit_2(tmp_path: Path) -> None:
    seed = tmp_path / "seed.yaml"
    seed.write_bytes(b"users: [\xff]\n")
    result = run_cli("emulator", "--seed", str(seed))
    assert result.exit_code == 2
    assert "seed.yaml: the seed file is not UTF-8 text" in _one_error_line(result.stderr)


def test_an_emulator_state_file_that_cannot_be_written_fails_at_start() -> None:
    result = run_cli("emulator", "--state", "/proc/x/state.json")
    assert result.exit_code == 2
    assert "/proc/x/state.json: cannot write" in _one_error_line(result.stderr)


@pytest.mark.parametrize("data", [b"\xff\xfe", b"{", b'{"Version": "1", "Version": "1"}'])
def test_lint_of_stdin_that_cannot_be_parsed_is_exit_2_like_a_file(
    tmp_path: Path, data: bytes
) -> None:
    from click.testing import CliRunner

    from permgen.cli import cli

    piped = CliRunner().invoke(cli, ["lint", "-"], input=data)
    path = tmp_path / "p.json"
    path.write_bytes(data)
    assert invoke("lint", str(path)).exit_code == 2
    assert piped.exit_code == 2, piped.output
    assert "<stdin>" in piped.stdout and "PG001" in piped.stdout


def test_emulator_file_errors_never_quote_a_secret(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text(json.dumps([{"key_id": "k", "secret": "TOP-SECRET-VALUE"}]))
    seed = tmp_path / "seed.yaml"
    seed.write_text("users:\n  - {name: a, access_keys: [{id: k, secret: [TOP-SECRET-VALUE]}]}\n")
    for args in (["--state", str(state)], ["--seed", str(seed)]):
        result = run_cli("emulator", *args)
        assert result.exit_code == 2
        assert "TOP-SECRET-VALUE" not in result.output, result.output
