"""Every command's file inputs, mutated: exit 2 with one clear line, or a well-formed result.

For each kind of input file (role spec YAML, policy JSON, the serve callers file, the aliyun
CLI and ossutil configs, the emulator's --state and --seed files) hypothesis starts from a
valid file and mutates it: byte flips, truncation, inserted non-UTF-8 bytes, a value of the
wrong type (or a dropped key) somewhere in a valid document, and whole-file replacements
(empty, ``[]``, ``null``, a huge string). Whatever comes out must be either a clean bad-input
exit (2, ``permgen: error: ...`` on one line, no traceback, no output file left behind) or,
when the mutation happens to be valid, a well-formed result.

The CLI runs in process (click's CliRunner); the token configs and the emulator's start-up
files go through the functions the CLI calls (the end-to-end cases, with a real mint against
the emulator, are in tests/emulator/test_bad_inputs.py).
"""

from __future__ import annotations

import base64
import configparser
import copy
import hashlib
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner, Result
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from permgen.account.credentials import read_aliyun_config, resolve
from permgen.account.types import Secret, StsCredentials
from permgen.errors import InputError
from permgen.policy.model import parse_policy
from permgen.spec.load import load_spec
from permgen.spec.types import check_placeholder_value
from permgen.sts.profiles import read_ossutil_config, write_aliyun_profile, write_ossutil_profile
from permgen.sts.service import load_callers
from tests.conftest import EXAMPLES

PLATFORM = EXAMPLES / "platform.yaml"
FUZZ = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)

# --------------------------------------------------------------------------- valid seeds

SPEC = """\
version: 1
defaults:
  account: "1234567890123456"
roles:
  reader:
    template: reader
    grants:
      - bucket: corp-data
        prefixes: ["exports/"]
  uploader:
    template: temporary-uploader
    grants:
      - bucket: user-uploads
        prefixes: ["incoming/{user}/"]
    sts:
      role_arn: "acs:ram::1234567890123456:role/oss-uploader"
      duration: 900
"""

POLICY = {
    "Version": "1",
    "Statement": [
        {
            "Effect": "Allow",
            "Action": ["oss:GetObject", "oss:ListObjects"],
            "Resource": ["acs:oss:*:*:b/exports/*", "acs:oss:*:*:b"],
            "Condition": {"IpAddress": {"acs:SourceIp": ["203.0.113.0/24"]}},
        },
        {"Effect": "Deny", "Action": "oss:DeleteObject", "Resource": "acs:oss:*:*:b/*"},
    ],
}


def _fixed_key(seed: str) -> tuple[str, str]:
    """A key of new_key()'s shape and its digest, the same in every process that collects
    these tests (parametrized ids carry them)."""
    key = "pgk_" + base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()).decode().rstrip(
        "="
    )
    return key, hashlib.sha256(key.encode()).hexdigest()


_, HASH_A = _fixed_key("fuzz-a")
_, HASH_B = _fixed_key("fuzz-b")
CALLERS = {
    "callers": [
        {
            "id": "alice",
            "key_sha256": HASH_A,
            "rate": 10,
            "burst": 20,
            "roles": {"mobile-uploader": {"vars": {"user": "{caller}"}, "max_duration": 900}},
        },
        {
            "id": "batch",
            "key_sha256": HASH_B,
            "roles": {"mobile-uploader": {"vars": {"user": "{request}"}}},
        },
    ]
}

ALIYUN = {
    "current": "default",
    "profiles": [
        {
            "name": "default",
            "mode": "AK",
            "access_key_id": "LTAIexample",
            "access_key_secret": "example-secret",
            "region_id": "cn-hangzhou",
        },
        {"name": "other", "mode": "StsToken", "access_key_id": "STS.x", "sts_token": "t"},
    ],
    "meta_path": "",
}

OSSUTIL = """\
[default]
accessKeyID = LTAIexample
accessKeySecret = example-secret
region = cn-hangzhou

[profile other]
accessKeyID = LTAIother
accessKeySecret = other-secret
region = cn-beijing
"""

SEED = {
    "users": [
        {
            "name": "alice",
            "groups": ["devs"],
            "access_keys": [{"id": "LTAI-alice-test-key", "secret": "alice-test-secret"}],
        }
    ],
    "groups": ["auditors"],
    "roles": [{"name": "oss-uploader", "max_session": 7200}],
    "policies": [{"name": "reader", "description": "Read b", "document": POLICY}],
    "attachments": [
        {"policy": "reader", "to": "group:devs"},
        {"policy": "AliyunRAMReadOnlyAccess", "type": "System", "to": "user:alice"},
    ],
    "faults": [{"action": "GetPolicy", "code": "Throttling", "status": 400, "times": 1}],
}


def _state() -> dict[str, Any]:
    from permgen.emulator.files import prepare

    backend, _ = prepare(None, None)
    backend.seed(copy.deepcopy(SEED))
    return backend.dump()


STATE = _state()

# --------------------------------------------------------------------------- mutations

#: Values of the wrong type (or hostile ones) to put somewhere in a valid document.
WEIRD: list[Any] = [
    None,
    [],
    {},
    0,
    -1,
    1.5,
    True,
    "",
    "x",
    "*",
    "a/b",
    "{caller}",
    "é\u202e",
    "x" * 5000,
    [1, "a"],
    {"k": [None]},
    2**70,
    10**400,
    -(10**400),
    float("inf"),
]

#: Whole files that are not the document at all.
WHOLE: list[bytes] = [
    b"",
    b"[]",
    b"null",
    b"{}",
    b"0",
    b'"x"',
    b"\xff\xfe\x00\x01",
    b"\xef\xbb\xbf",
    b"x" * 100_000,
    b'"' + b"y" * 100_000 + b'"',
    b"[" * 50,
    b"{{{{",
    b"- - - -",
    b"[section]\nkey\n",
    b"\x00" * 64,
]


def whole_files(test: Callable[..., None]) -> Callable[..., None]:
    """Run ``test`` on every file of :data:`WHOLE` too, not only when hypothesis draws one."""
    for data in WHOLE:
        test = example(data=data)(test)
    return test


def _paths(doc: Any, prefix: tuple[Any, ...] = ()) -> Iterator[tuple[Any, ...]]:
    """Every path to a value inside ``doc`` (the document itself excluded)."""
    if isinstance(doc, dict):
        items: Any = doc.items()
    elif isinstance(doc, list):
        items = enumerate(doc)
    else:
        return
    for key, value in items:
        yield (*prefix, key)
        yield from _paths(value, (*prefix, key))


def _replace(doc: Any, path: tuple[Any, ...], value: Any, drop: bool) -> Any:
    out = copy.deepcopy(doc)
    node = out
    for part in path[:-1]:
        node = node[part]
    if drop:
        del node[path[-1]]
    else:
        node[path[-1]] = value
    return out


@st.composite
def mutated(
    draw: st.DrawFn, base: bytes, doc: Any = None, dump: Callable[[Any], str] | None = None
) -> bytes:
    """``base`` (a valid file) mutated one way or several."""
    kinds = ["flip", "truncate", "insert", "whole", "lines"]
    if doc is not None:
        kinds += ["retype", "retype", "retype"]
    kind = draw(st.sampled_from(kinds))
    if kind == "whole":
        return draw(st.sampled_from(WHOLE))
    if kind == "retype":
        assert dump is not None
        paths = list(_paths(doc))
        path = paths[draw(st.integers(0, len(paths) - 1))]
        drop = draw(st.booleans()) and not isinstance(path[-1], int)
        new = _replace(doc, path, draw(st.sampled_from(WEIRD)), drop)
        return dump(new).encode("utf-8")
    data = bytearray(base)
    if kind == "truncate":
        return bytes(data[: draw(st.integers(0, len(data)))])
    if kind == "lines":  # drop or repeat a line: duplicate keys, unbalanced brackets
        lines = bytes(data).splitlines(keepends=True)
        i = draw(st.integers(0, len(lines) - 1))
        if draw(st.booleans()):
            del lines[i]
        else:
            lines.insert(i, lines[i])
        return b"".join(lines)
    for _ in range(draw(st.integers(1, 4))):
        at = draw(st.integers(0, len(data)))
        if kind == "flip" and at < len(data):
            data[at] = draw(st.integers(0, 255))
        else:
            data[at:at] = draw(
                st.sampled_from([b"\xff", b"\xc3", b"\x00", b"\t", b"'", b'"', b":", b"- ", b"{"])
            )
    return bytes(data)


def _yaml(doc: Any) -> str:
    return yaml.safe_dump(doc, sort_keys=False, allow_unicode=True)


def _json(doc: Any) -> str:
    return json.dumps(doc, indent=2, ensure_ascii=False)


# --------------------------------------------------------------------------- checks


def invoke(*args: str) -> Result:
    from permgen.cli import cli

    return CliRunner().invoke(cli, list(args), catch_exceptions=True)


def assert_clean(
    result: Result, allowed: tuple[int, ...] = (0, 2), *, error_line: bool = True
) -> None:
    """No exception escaped, a documented exit code, and exit 2 is a ``permgen: error`` line
    (lint reports an unreadable input as a finding in its report instead)."""
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise AssertionError(f"exception escaped: {result.exception!r}") from result.exception
    assert "Traceback" not in result.output
    assert result.exit_code in allowed, (result.exit_code, result.output[-2000:])
    if result.exit_code == 2 and error_line:
        first, *more = result.stderr.splitlines()
        assert first.startswith("permgen: error: "), first[:300]
        # a spec with several problems lists the others, indented, below the first
        assert all(line.startswith("  ") for line in more), result.stderr[-2000:]


#: The secrets in the seed files above: no error message may quote one.
SECRETS = ("example-secret", "other-secret", "alice-test-secret")


def assert_no_secret(message: str) -> None:
    for secret in (*SECRETS, *(k["secret"] for k in STATE["keys"])):
        assert secret not in message, message


@pytest.fixture(scope="module")
def work() -> Iterator[Path]:
    with tempfile.TemporaryDirectory(prefix="permgen-fuzz-") as d:
        yield Path(d)


# --------------------------------------------------------------------------- spec YAML


@FUZZ
@whole_files
@given(data=mutated(SPEC.encode(), yaml.safe_load(SPEC), _yaml))
def test_compile_a_mutated_spec(work: Path, data: bytes) -> None:
    spec = work / "spec.yaml"
    spec.write_bytes(data)
    out = work / "out" / "policies"
    result = invoke("compile", str(spec), "--out", str(out))
    assert_clean(result)
    try:
        if result.exit_code == 0:
            written = sorted(out.iterdir())
            assert written, "exit 0 but no file written"
            for f in written:
                assert f.suffix == ".json", f.name  # no temporary file left over
                parse_policy(f.read_text("utf-8"))
        else:
            assert str(spec) in result.stderr
            assert not out.exists() or not any(out.iterdir()), "a failed compile wrote files"
            assert not out.parent.exists() or not any(out.parent.iterdir())
    finally:
        import shutil

        shutil.rmtree(work / "out", ignore_errors=True)


@FUZZ
@whole_files
@given(data=mutated(SPEC.encode(), yaml.safe_load(SPEC), _yaml))
def test_lint_a_mutated_spec(work: Path, data: bytes) -> None:
    spec = work / "lint-spec.yaml"
    spec.write_bytes(data)
    result = invoke("lint", str(spec), "--format", "json")
    _check_lint(result, spec)


def _check_lint(result: Result, path: Path) -> None:
    assert_clean(result, (0, 2, 3), error_line=False)
    report = json.loads(result.stdout)
    if result.exit_code != 0:
        assert str(path) in result.stdout, report


TEMPLATE = (EXAMPLES / "templates" / "bucket-config-reader.json.j2").read_bytes()


@FUZZ
@whole_files
@given(data=mutated(TEMPLATE))
def test_compile_with_a_mutated_user_template(work: Path, data: bytes) -> None:
    # a directory of its own each time: user templates are loaded once per directory
    templates = Path(tempfile.mkdtemp(prefix="templates-", dir=work))
    (templates / "bucket-config-reader.json.j2").write_bytes(data)
    spec = work / "template-spec.yaml"
    spec.write_text(PLATFORM.read_text().replace("templates: templates", f"templates: {templates}"))
    result = invoke("compile", str(spec), "--role", "bucket-auditor")
    assert_clean(result)
    if result.exit_code == 0:
        parse_policy(result.stdout)
    else:
        assert "bucket-config-reader" in result.stderr


# --------------------------------------------------------------------------- policy JSON


@FUZZ
@whole_files
@given(data=mutated(_json(POLICY).encode(), POLICY, _json))
def test_lint_diff_and_explain_a_mutated_policy(work: Path, data: bytes) -> None:
    good = work / "good.json"
    good.write_text(_json(POLICY))
    bad = work / "mutated.json"
    bad.write_bytes(data)
    _check_lint(invoke("lint", str(bad), "--format", "json"), bad)
    diff = invoke("diff", str(good), str(bad))
    assert_clean(diff)
    explain = invoke(
        "explain",
        str(bad),
        "--action",
        "oss:GetObject",
        "--resource",
        "acs:oss:*:*:b/exports/k",
        "--context",
        "acs:SourceIp=203.0.113.9",
        "--format",
        "json",
    )
    assert_clean(explain)
    if explain.exit_code == 0:
        decision = json.loads(explain.stdout)["decision"]
        assert decision in ("allow", "explicit_deny", "implicit_deny")
    for result in (diff, explain):
        if result.exit_code == 2:
            assert str(bad) in result.stderr


# --------------------------------------------------------------------------- callers file


@FUZZ
@whole_files
@given(data=mutated(_yaml(CALLERS).encode(), CALLERS, _yaml))
def test_serve_check_a_mutated_callers_file(work: Path, data: bytes) -> None:
    callers = work / "callers.yaml"
    callers.write_bytes(data)
    result = invoke("serve", "--check", "--spec", str(PLATFORM), "--callers", str(callers))
    assert_clean(result)
    if result.exit_code == 2:
        assert str(callers) in result.stderr
        return
    assert result.stdout.strip().endswith(": ok")
    spec = load_spec(PLATFORM)
    loaded = load_callers(callers, spec)
    assert len({c.id for c in loaded}) == len(loaded)
    assert len({c.key_hash for c in loaded}) == len(loaded)
    for c in loaded:
        assert check_placeholder_value("caller", c.id) is None
        assert len(c.key_hash) == 32
        assert isinstance(c.rate, float) and c.rate > 0
        assert isinstance(c.burst, int) and c.burst >= 1
        for b in c.bindings.values():
            role = spec.roles[b.role]
            assert role.sts is not None
            assert set(b.values) == set(role.placeholders)
            for name, value in b.values.items():
                assert value in ("{caller}", "{request}") or not check_placeholder_value(
                    name, value
                )
            assert b.max_duration is None or 900 <= b.max_duration <= role.sts.duration


# --------------------------------------------------------------------------- token configs

CREDS = StsCredentials(
    "STS.minted", Secret("minted-secret"), Secret("minted-token"), "2026-01-01T00:00:00Z"
)


@FUZZ
@whole_files
@given(data=mutated(_json(ALIYUN).encode(), ALIYUN, _json))
def test_a_mutated_aliyun_cli_config(work: Path, data: bytes) -> None:
    path = work / "config.json"
    path.write_bytes(data)
    try:
        config = read_aliyun_config(path)
    except InputError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        assert_no_secret(str(exc))
        assert path.read_bytes() == data  # nothing written
        try:
            resolve(environ={}, config_path=path)
        except InputError as again:
            assert str(again).startswith(str(path))
        else:
            raise AssertionError("resolve read a config that read_aliyun_config refused")
        return
    assert config is not None
    # reading credentials from it: a key, or a clear error
    try:
        key = resolve(environ={}, config_path=path)
        assert isinstance(key.access_key_id, str) and key.access_key_id
        assert isinstance(key.access_key_secret.reveal(), str)
    except InputError as exc:
        assert str(exc).startswith(str(path))
        assert_no_secret(str(exc))
    others = [p.get("name") for p in config.get("profiles", []) if p.get("name") != "permgen"]
    write_aliyun_profile(path, "permgen", CREDS, "cn-hangzhou", existing=config)
    written = json.loads(path.read_text("utf-8"))
    names = [p.get("name") for p in written["profiles"]]
    assert names == [*others, "permgen"]
    assert written["profiles"][-1]["sts_token"] == "minted-token"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


@FUZZ
@whole_files
@given(data=mutated(OSSUTIL.encode()))
def test_a_mutated_ossutil_config(work: Path, data: bytes) -> None:
    path = work / "ossutilconfig"
    path.write_bytes(data)
    try:
        parser = read_ossutil_config(path)
    except InputError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        assert_no_secret(str(exc))
        assert path.read_bytes() == data
        return
    others = [s for s in parser.sections() if s != "profile permgen"]
    write_ossutil_profile(path, "permgen", CREDS, "cn-hangzhou", existing=parser)
    again = configparser.ConfigParser(interpolation=None)
    again.optionxform = str  # type: ignore[assignment,method-assign]
    again.read_string(path.read_text("utf-8"))
    assert again.sections() == [*others, "profile permgen"]
    assert again["profile permgen"]["stsToken"] == "minted-token"


# --------------------------------------------------------------------------- emulator files


@FUZZ
@whole_files
@given(data=mutated(_json(STATE).encode(), STATE, _json))
def test_a_mutated_emulator_state_file(work: Path, data: bytes) -> None:
    from permgen.emulator.files import prepare

    path = work / "state.json"
    path.write_bytes(data)
    try:
        backend, _ = prepare(str(path), None)
    except InputError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        assert_no_secret(str(exc))
        return
    dumped = json.loads(json.dumps(backend.dump()))
    path.write_text(json.dumps(dumped))
    again, _ = prepare(str(path), None)  # what it writes, it reads back
    assert again.dump() == dumped


@FUZZ
@whole_files
@given(data=mutated(_yaml(SEED).encode(), SEED, _yaml))
def test_a_mutated_emulator_seed_file(work: Path, data: bytes) -> None:
    from permgen.emulator.files import load_seed, prepare

    path = work / "seed.yaml"
    path.write_bytes(data)
    try:
        backend, faults = prepare(None, str(path))
    except InputError as exc:
        assert str(exc).startswith(str(path)) and "\n" not in str(exc)
        assert_no_secret(str(exc))
        return
    for f in faults:  # what the CLI passes to Emulator.inject
        assert isinstance(f["action"], str)
        assert isinstance(f.get("code", ""), str)
        status, times = f.get("status", 503), f.get("times", 1)
        assert type(status) is int and 100 <= status <= 599
        assert type(times) is int and times >= 0
        assert isinstance(f.get("delay", 0.0), (int, float)) and 0 <= f.get("delay", 0.0) <= 600
        assert isinstance(f.get("drop", False), bool)
    assert set(backend.users) == {u["name"] for u in load_seed(path).get("users", [])}
