"""The token service over real HTTP (uvicorn), backed by the emulator through the SDK."""

from __future__ import annotations

import base64
import hashlib
import io
import json
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from permgen.account.sdk import SdkStsClient
from permgen.account.types import ClientConfig
from permgen.emulator import Backend, Emulator
from permgen.policy.model import parse_policy
from permgen.semantics import Evaluator, Request
from permgen.spec.load import load_spec
from permgen.sts.service import SERVER_LIMITS, TokenService, create_app, load_callers
from tests.conftest import EXAMPLES
from tests.emulator.test_emulator import attach_system, call, client

TRUST = json.dumps(
    {
        "Version": "1",
        "Statement": [
            {
                "Effect": "Allow",
                "Action": "sts:AssumeRole",
                "Principal": {"RAM": ["acs:ram::1234567890123456:root"]},
            }
        ],
    }
)


def _fixed_key(seed: str) -> tuple[str, str]:
    """A key of new_key()'s shape and its digest, the same in every process that collects
    these tests (parametrized ids carry them)."""
    key = "pgk_" + base64.urlsafe_b64encode(hashlib.sha256(seed.encode()).digest()).decode().rstrip(
        "="
    )
    return key, hashlib.sha256(key.encode()).hexdigest()


ALICE_KEY, ALICE_HASH = _fixed_key("alice")
BOB_KEY, BOB_HASH = _fixed_key("bob")


class Service:
    def __init__(self, url: str, emu: Emulator, audit: io.StringIO) -> None:
        self.url, self.emu, self.audit = url, emu, audit

    def post(
        self, body: Any, key: str | None = ALICE_KEY, raw: bytes | None = None
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        data = raw if raw is not None else json.dumps(body).encode()
        req = urllib.request.Request(
            self.url + "/v1/tokens",
            data=data,
            method="POST",
            headers={"Content-Type": "application/json"},
        )
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        return _open(req)

    def get(self, path: str, key: str | None = ALICE_KEY) -> tuple[int, Any, dict[str, str]]:
        req = urllib.request.Request(self.url + path)
        if key:
            req.add_header("Authorization", f"Bearer {key}")
        return _open(req)


def _open(req: urllib.request.Request) -> tuple[int, Any, dict[str, str]]:
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            text = resp.read().decode()
            return (
                resp.status,
                (json.loads(text) if "json" in resp.headers.get("content-type", "") else text),
                dict(resp.headers),
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read()), dict(exc.headers)


class _Mounted:
    """The ASGI app a test's token service runs as; the server serves whichever is mounted."""

    def __init__(self) -> None:
        self.app: Any = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)


@pytest.fixture(scope="module")
def _token_server() -> Iterator[tuple[str, _Mounted]]:
    """One uvicorn server for a module, with each test's own app mounted in it: stopping
    uvicorn waits for its 0.1 s main-loop tick and a fixed 0.1 s in shutdown, which per test
    added seconds of waiting to the suite. The server settings are the product's."""
    mounted = _Mounted()
    server = uvicorn.Server(
        uvicorn.Config(
            mounted,
            host="127.0.0.1",
            port=0,
            log_level="error",
            access_log=False,
            lifespan="off",  # create_app has no lifespan handlers
            **SERVER_LIMITS,
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(200):
        if server.started:
            break
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield f"http://127.0.0.1:{port}", mounted
    server.should_exit = True
    thread.join(timeout=10)


@pytest.fixture
def service(tmp_path: Path, _token_server: tuple[str, _Mounted]) -> Iterator[Service]:
    url, mounted = _token_server
    with Emulator(Backend()) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/vendor")
        callers = tmp_path / "callers.yaml"
        callers.write_text(
            f"callers:\n"
            f"  - {{id: alice, key_sha256: {ALICE_HASH}, rate: 50, burst: 50, roles: {{mobile-uploader: {{vars: {{user: '{{caller}}'}}}}}}}}\n"
            f"  - {{id: bob, key_sha256: {BOB_HASH}, rate: 1, burst: 2, roles: {{mobile-uploader: {{vars: {{user: '{{request}}'}}}}}}}}\n"
        )
        spec = load_spec(EXAMPLES / "platform.yaml")
        from permgen.account.types import AccessKey, Secret

        sts = SdkStsClient(
            AccessKey(key.key_id, Secret(key.secret)), ClientConfig(endpoint=emu.url)
        )
        audit = io.StringIO()
        mounted.app = create_app(TokenService(spec, load_callers(callers, spec), sts, audit=audit))
        yield Service(url, emu, audit)
        mounted.app = None
        # every token minted in a test: its session policy allows nothing outside one prefix
        for text in emu.backend.session_policies:
            resources = {r for st in parse_policy(text).statements for r in st.resources}
            (prefix,) = {r.split("/incoming/")[1].split("/")[0] for r in resources}
            _check_prefix_only(text, prefix)


def _allows_only_prefix(emu: Emulator, user: str) -> None:
    _check_prefix_only(emu.backend.last_session_policy, user)


def _check_prefix_only(text: str, user: str) -> None:
    ev = Evaluator([parse_policy(text)])
    ctx = {"acs:SecureTransport": "true"}
    base = "acs:oss:*:1234567890123456:user-uploads/incoming/"
    assert ev.allows(Request("oss:PutObject", f"{base}{user}/x.jpg", ctx))
    for other in ("bob", "alice", "x", ""):
        if other != user:
            assert not ev.allows(Request("oss:PutObject", f"{base}{other}/x.jpg", ctx))
    assert not ev.allows(Request("oss:GetObject", f"{base}{user}/x.jpg", ctx))
    assert not ev.allows(Request("oss:DeleteObject", f"{base}{user}/x.jpg", ctx))


def test_a_token_for_the_callers_own_prefix_and_the_cache(service: Service) -> None:
    status, body, headers = service.post({"role": "mobile-uploader"})
    assert status == 200, body
    assert (
        body["access_key_id"].startswith("STS.")
        and body["session_name"] == "permgen-mobile-uploader-alice"
    )
    assert headers.get("cache-control") == "no-store"
    _allows_only_prefix(service.emu, "alice")
    again = service.post({"role": "mobile-uploader"})[1]
    assert again["cached"] is True and again["access_key_id"] == body["access_key_id"]
    assert service.emu.calls["AssumeRole"] == 1
    records = [json.loads(line) for line in service.audit.getvalue().splitlines()]
    assert [r["cache_hit"] for r in records] == [False, True]
    assert all(
        body["access_key_secret"] not in line and body["security_token"] not in line
        for line in service.audit.getvalue().splitlines()
    )


def test_concurrent_requests_for_one_key_make_one_assume_role(service: Service) -> None:
    with ThreadPoolExecutor(8) as pool:
        results = list(pool.map(lambda _: service.post({"role": "mobile-uploader"})[0], range(16)))
    assert results == [200] * 16
    assert service.emu.calls["AssumeRole"] == 1


def test_the_compat_endpoint(service: Service) -> None:
    status, body, _ = service.get("/v1/sts/mobile-uploader")
    assert status == 200
    assert set(body) == {
        "StatusCode",
        "AccessKeyId",
        "AccessKeySecret",
        "SecurityToken",
        "Expiration",
    }
    assert body["StatusCode"] == 200


@pytest.mark.parametrize(
    ("key", "body", "status"),
    [
        (None, {"role": "mobile-uploader"}, 401),
        ("pgk_wrong", {"role": "mobile-uploader"}, 401),
        (ALICE_KEY, {"role": "ingest-writer"}, 403),
        (
            ALICE_KEY,
            {"role": "mobile-uploader", "vars": {"user": "bob"}},
            403,
        ),  # alice's user is bound to her id
        (BOB_KEY, {"role": "mobile-uploader", "vars": {"user": "*"}}, 400),
        (BOB_KEY, {"role": "mobile-uploader", "vars": {"user": "a/b"}}, 400),
        (BOB_KEY, {"role": "mobile-uploader", "vars": {"user": ".."}}, 400),
        (BOB_KEY, {"role": "mobile-uploader", "vars": {"user": "${x}"}}, 400),
        (BOB_KEY, {"role": "mobile-uploader", "vars": {"user": ""}}, 400),
        (BOB_KEY, {"role": "mobile-uploader", "vars": {"user": "x" * 65}}, 400),
        (BOB_KEY, {"role": "mobile-uploader", "vars": {"user": "bob\n"}}, 400),
        (BOB_KEY, {"role": "mobile-uploader", "vars": {"user": "x" * 64 + "\n"}}, 400),
        (BOB_KEY, {"role": "mobile-uploader"}, 400),
        (ALICE_KEY, {"nope": 1}, 400),
        (ALICE_KEY, {"role": "mobile-uploader", "duration": "900"}, 400),
    ],
)
def test_bad_requests_and_attacks(
    service: Service, key: str | None, body: Any, status: int
) -> None:
    got, doc, headers = service.post(body, key=key)
    assert got == status, doc
    assert "access_key_id" not in doc
    if status == 401:
        assert headers.get("www-authenticate") == "Bearer"


def test_malformed_and_oversized_bodies(service: Service) -> None:
    assert service.post(None, raw=b"{not json")[0] == 400
    assert service.post(None, raw=b"x" * (17 * 1024))[0] == 413


def test_a_caller_can_choose_only_what_the_binding_allows(service: Service) -> None:
    status, body, _ = service.post(
        {"role": "mobile-uploader", "vars": {"user": "bob"}}, key=BOB_KEY
    )
    assert status == 200, body
    _allows_only_prefix(service.emu, "bob")


def test_rate_limit_answers_429_with_retry_after(service: Service) -> None:
    codes = [
        service.post({"role": "mobile-uploader", "vars": {"user": "bob"}}, key=BOB_KEY)[0]
        for _ in range(4)
    ]
    assert codes[:2] == [200, 200]
    assert 429 in codes[2:]
    status, _, headers = service.post(
        {"role": "mobile-uploader", "vars": {"user": "bob"}}, key=BOB_KEY
    )
    assert status == 429 and int(headers["retry-after"]) >= 1


def test_sts_failures_map_to_5xx(
    service: Service, zero_backoff: list[tuple[str, int, str]]
) -> None:
    service.emu.inject("AssumeRole", "Throttling.User", 400, times=10)
    status, body, _ = service.post({"role": "mobile-uploader"})
    assert status == 503 and "Throttling" in body["error"]
    assert [attempt for _, attempt, _ in zero_backoff] == [1, 2, 3]  # retried, then 503


def test_health_and_metrics(service: Service) -> None:
    assert service.get("/healthz", key=None)[1] == {"status": "ok"}
    service.post({"role": "mobile-uploader"})
    status, text, _ = service.get("/metrics", key=None)
    assert status == 200
    assert 'permgen_requests_total{status="200"} 1' in text
    assert "permgen_assume_role_total 1" in text


def test_the_openapi_description_is_valid_and_matches_the_routes() -> None:
    import yaml
    from openapi_spec_validator import validate

    from tests.conftest import ROOT

    doc = yaml.safe_load((ROOT / "docs" / "token-service.openapi.yaml").read_text())
    validate(doc)
    assert set(doc["paths"]) == {"/v1/tokens", "/v1/sts/{role}", "/healthz", "/metrics"}


def test_a_token_response_has_the_documented_fields(service: Service) -> None:
    import yaml

    from tests.conftest import ROOT

    doc = yaml.safe_load((ROOT / "docs" / "token-service.openapi.yaml").read_text())
    body = service.post({"role": "mobile-uploader"})[1]
    assert set(body) == set(doc["components"]["schemas"]["Token"]["required"])


def test_callers_file_errors() -> None:
    from permgen.errors import InputError

    spec = load_spec(EXAMPLES / "platform.yaml")

    def bad(text: str, fragment: str, tmp: Path) -> None:
        p = tmp / "c.yaml"
        p.write_text(text)
        with pytest.raises(InputError, match=fragment):
            load_callers(p, spec)

    import tempfile

    with tempfile.TemporaryDirectory() as d:
        tmp = Path(d)
        bad("callers: []\n", "no callers", tmp)
        bad("callers:\n  - {id: a, key_sha256: zz, roles: {}}\n", "SHA-256", tmp)
        bad(
            f"callers:\n  - {{id: a, key_sha256: {ALICE_HASH}, roles: {{ingest-writer: {{}}}}}}\n",
            "sts: block",
            tmp,
        )
        bad(
            f"callers:\n  - {{id: a, key_sha256: {ALICE_HASH}, roles: {{mobile-uploader: {{vars: {{}}}}}}}}\n",
            r"placeholder \{user\}",
            tmp,
        )
        bad(
            f"callers:\n  - {{id: a, key_sha256: {ALICE_HASH}, roles: {{mobile-uploader: {{vars: {{user: 'a/b'}}}}}}}}\n",
            "can never widen",
            tmp,
        )


def test_serve_shuts_down_gracefully_on_sigterm(tmp_path: Path) -> None:
    import os
    import signal
    import subprocess
    import sys

    from tests.conftest import ROOT

    callers = tmp_path / "callers.yaml"
    callers.write_text(
        f"callers:\n  - {{id: alice, key_sha256: {ALICE_HASH}, roles: {{mobile-uploader: {{vars: {{user: '{{caller}}'}}}}}}}}\n"
    )
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "PERMGEN_ENDPOINT": "http://127.0.0.1:9",
        "ALIBABA_CLOUD_ACCESS_KEY_ID": "LTAIx",
        "ALIBABA_CLOUD_ACCESS_KEY_SECRET": "y",
    }
    port = 19000 + os.getpid() % 1000
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "permgen",
            "serve",
            "--spec",
            str(EXAMPLES / "platform.yaml"),
            "--callers",
            str(callers),
            "--port",
            str(port),
        ],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                    r.read()
                break
            except OSError:
                time.sleep(0.1)
        else:
            pytest.fail("the service did not start")
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
        if proc.stderr:
            proc.stderr.close()


def test_serve_new_key_and_usage() -> None:
    from tests.conftest import run_cli

    out = run_cli("serve", "--new-key")
    lines = dict(line.split(": ", 1) for line in out.output.strip().splitlines())
    import hashlib

    assert hashlib.sha256(lines["key"].encode()).hexdigest() == lines["key_sha256"]
    assert run_cli("serve").exit_code == 2
