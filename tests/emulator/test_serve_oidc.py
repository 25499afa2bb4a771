"""OIDC callers and the OSS mobile SDK contract of the token service, over real HTTP: JWTs
signed with keys made here, JWKS from a file and from a local HTTP server, the emulator
behind the SDK. Every attack of docs/token-service.md is tried and refused."""

from __future__ import annotations

import base64
import http.server
import io
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from permgen.account.sdk import SdkStsClient
from permgen.account.types import AccessKey, ClientConfig, Secret
from permgen.emulator import Backend, Emulator
from permgen.spec.load import load_spec
from permgen.sts import oidc
from permgen.sts.service import TokenService, create_app, load_callers_and_issuers
from tests.conftest import EXAMPLES, ROOT, run_cli
from tests.emulator import test_serve
from tests.emulator.test_emulator import attach_system, call, client
from tests.emulator.test_serve import ALICE_HASH, ALICE_KEY, TRUST, _check_prefix_only

_token_server = test_serve._token_server  # the module's uvicorn server (product settings)

ISS = "https://login.example.com"
WEB_ISS = "https://web.example.com"
RSA_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)
EC_KEY = ec.generate_private_key(ec.SECP256R1())
ROTATED_KEY = ec.generate_private_key(ec.SECP256R1())
OTHER_KEY = rsa.generate_private_key(public_exponent=65537, key_size=2048)  # not published


def _jwk(key: Any, kid: str) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(_public_jwk_json(key))
    doc["kid"] = kid
    return doc


def _public_jwk_json(key: Any) -> str:
    if isinstance(key, rsa.RSAPrivateKey):
        return jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key())
    return jwt.algorithms.ECAlgorithm.to_jwk(key.public_key())


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def token(
    claims: dict[str, Any] | None = None,
    key: Any = RSA_KEY,
    kid: str = "rsa-1",
    alg: str = "RS256",
    **changes: Any,
) -> str:
    now = int(time.time())
    body = {"iss": ISS, "aud": "permgen", "sub": "alice", "iat": now, "exp": now + 600}
    body.update(claims or {})
    for name, value in changes.items():
        if value is None:
            body.pop(name, None)
        else:
            body[name] = value
    return jwt.encode(body, key, algorithm=alg, headers={"kid": kid})


class Jwks(http.server.BaseHTTPRequestHandler):
    """A JWKS endpoint whose keys a test may change; it counts its requests."""

    keys: ClassVar[list[dict[str, Any]]] = []
    hits = 0

    def do_GET(self) -> None:
        type(self).hits += 1
        body = json.dumps({"keys": type(self).keys}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        pass


@pytest.fixture(scope="module")
def jwks_url() -> Iterator[str]:
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Jwks)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/jwks.json"
    server.shutdown()
    server.server_close()


class Svc:
    def __init__(self, url: str, emu: Emulator, audit: io.StringIO) -> None:
        self.url, self.emu, self.audit = url, emu, audit

    def get(
        self, path: str, auth: str | None = None, headers: dict[str, str] | None = None
    ) -> tuple[int, Any, dict[str, str]]:
        req = urllib.request.Request(self.url + path, headers=headers or {})
        if auth is not None:
            req.add_header("Authorization", auth)
        return _open(req)

    def post(self, body: Any, auth: str) -> tuple[int, Any, dict[str, str]]:
        req = urllib.request.Request(
            self.url + "/v1/tokens",
            data=json.dumps(body).encode(),
            method="POST",
            headers={"Content-Type": "application/json", "Authorization": auth},
        )
        return _open(req)


def _open(req: urllib.request.Request) -> tuple[int, Any, dict[str, str]]:
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return (
                resp.status,
                json.loads(resp.read()),
                {k.lower(): v for k, v in resp.headers.items()},
            )
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read()), {k.lower(): v for k, v in exc.headers.items()}


CALLERS = """\
issuers:
  - id: app-login
    issuer: https://login.example.com     # must equal the token's iss
    audience: permgen                     # must be in the token's aud
    jwks: jwks.json                       # a file (relative to the callers file) or an https URL
  - id: web-login
    issuer: https://web.example.com
    audience: permgen
    jwks: {jwks_url}
    algorithms: [ES256]
callers:
  - id: mobile-users
    issuer: app-login
    rate: 1
    burst: 3
    roles:
      mobile-uploader:
        vars: {{user: "{{claim:sub}}"}}
        max_duration: 900
  - id: web-users
    issuer: web-login
    roles:
      mobile-uploader:
        vars: {{user: "{{claim:email}}"}}
  - id: alice
    key_sha256: {alice_hash}
    roles:
      mobile-uploader:
        vars: {{user: "{{request}}"}}
"""


def _write_callers(tmp_path: Path, jwks_url: str) -> Path:
    (tmp_path / "jwks.json").write_text(
        json.dumps({"keys": [_jwk(RSA_KEY, "rsa-1"), _jwk(EC_KEY, "ec-1")]})
    )
    callers = tmp_path / "callers.yaml"
    callers.write_text(CALLERS.format(jwks_url=jwks_url, alice_hash=ALICE_HASH))
    return callers


@pytest.fixture
def svc(tmp_path: Path, jwks_url: str, _token_server: tuple[str, Any]) -> Iterator[Svc]:
    url, mounted = _token_server
    Jwks.keys = [_jwk(EC_KEY, "web-1")]
    Jwks.hits = 0
    with Emulator(Backend()) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/vendor")
        spec = load_spec(EXAMPLES / "platform.yaml")
        callers, issuers = load_callers_and_issuers(_write_callers(tmp_path, jwks_url), spec)
        sts = SdkStsClient(
            AccessKey(key.key_id, Secret(key.secret)), ClientConfig(endpoint=emu.url)
        )
        audit = io.StringIO()
        service = TokenService(spec, callers, sts, audit=audit, issuers=issuers)
        mounted.app = create_app(service)
        yield Svc(url, emu, audit)
        mounted.app = None


def test_a_jwt_caller_gets_a_token_for_its_subjects_prefix(svc: Svc) -> None:
    status, body, headers = svc.post({"role": "mobile-uploader"}, f"Bearer {token()}")
    assert status == 200, body
    assert body["session_name"] == "permgen-mobile-uploader-alice"
    _check_prefix_only(svc.emu.backend.last_session_policy, "alice")
    # an EC key of the same issuer, and the GET the SDKs use, with a lowercase scheme
    status, body, headers = svc.get(
        "/v1/sts/mobile-uploader", f"bearer {token(key=EC_KEY, kid='ec-1', alg='ES256', sub='bob')}"
    )
    assert status == 200 and body["StatusCode"] == 200, body
    assert headers["cache-control"] == "no-store"
    _check_prefix_only(svc.emu.backend.last_session_policy, "bob")


def test_api_keys_keep_working_beside_jwts(svc: Svc) -> None:
    status, body, _ = svc.get("/v1/sts/mobile-uploader?user=carol", f"Bearer {ALICE_KEY}")
    assert status == 200, body
    _check_prefix_only(svc.emu.backend.last_session_policy, "carol")
    status, body, _ = svc.post(
        {"role": "mobile-uploader", "vars": {"user": "dave"}}, f"BEARER {ALICE_KEY}"
    )
    assert status == 200, body
    _check_prefix_only(svc.emu.backend.last_session_policy, "dave")
    for duration in (3600, 60):  # over the role's sts.duration (900), under STS's minimum
        status, body, _ = svc.post(
            {"role": "mobile-uploader", "vars": {"user": "dave"}, "duration": duration},
            f"Bearer {ALICE_KEY}",
        )
        assert (status, body["error"]) == (
            400,
            f"duration {duration} is outside 900 to 900 seconds (role mobile-uploader's sts.duration)",
        )


def _hs256_with_the_public_key() -> str:
    """Key confusion: HS256 keyed with the RSA public key's PEM (PyJWT refuses to make it,
    so it is put together by hand)."""
    pem = RSA_KEY.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    import hashlib
    import hmac

    now = int(time.time())
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": "rsa-1"}).encode())
    claims = _b64(
        json.dumps({"iss": ISS, "aud": "permgen", "sub": "alice", "exp": now + 600}).encode()
    )
    signature = hmac.new(pem, f"{header}.{claims}".encode(), hashlib.sha256).digest()
    return f"{header}.{claims}.{_b64(signature)}"


def _alg_none() -> str:
    now = int(time.time())
    header = _b64(json.dumps({"alg": "none", "typ": "JWT", "kid": "rsa-1"}).encode())
    claims = _b64(
        json.dumps({"iss": ISS, "aud": "permgen", "sub": "alice", "exp": now + 600}).encode()
    )
    return f"{header}.{claims}."


NOW = int(time.time())
ATTACKS = [
    ("expired", lambda: token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200), 401, "expired"),
    ("expired beyond the skew", lambda: token(exp=int(time.time()) - 61), 401, "expired"),
    ("not yet valid", lambda: token(nbf=int(time.time()) + 3600), 401, "not valid yet"),
    ("wrong audience", lambda: token(aud="someone-else"), 401, "audience"),
    ("no audience", lambda: token(aud=None), 401, "aud"),
    ("wrong issuer", lambda: token(iss="https://evil.example.com"), 401, "issuer"),
    ("no expiry", lambda: token(exp=None), 401, "exp"),
    ("alg none", _alg_none, 401, "algorithm"),
    ("key confusion HS256", _hs256_with_the_public_key, 401, "algorithm"),
    ("RS256 under an EC kid", lambda: token(kid="ec-1"), 401, "does not fit"),
    ("unknown kid", lambda: token(kid="nope"), 401, "kid"),
    ("unpublished key, known kid", lambda: token(key=OTHER_KEY), 401, "do not verify"),
    ("oversized", lambda: token(pad="x" * 9000), 401, "over 8 KiB"),
    ("garbage", lambda: "eyJ.x.y", 401, "well-formed"),
    ("sub *", lambda: token(sub="*"), 403, "claim sub"),
    ("sub ..", lambda: token(sub=".."), 403, "claim sub"),
    ("sub a/b", lambda: token(sub="a/b"), 403, "claim sub"),
    ("sub ../bob", lambda: token(sub="../bob"), 403, "claim sub"),
    ("sub empty", lambda: token(sub=""), 403, "claim sub"),
    ("sub with a newline", lambda: token(sub="alice\n"), 403, "claim sub"),
    ("sub cyrillic look-alike", lambda: token(sub="\u0430lice"), 403, "claim sub"),
    ("sub fullwidth", lambda: token(sub="\uff41lice"), 403, "claim sub"),
    ("sub ${}", lambda: token(sub="${x}"), 403, "claim sub"),
    ("sub over 64", lambda: token(sub="a" * 65), 403, "claim sub"),
    ("sub a number", lambda: token(sub=5), 401, "do not verify"),
    ("no sub", lambda: token(sub=None), 403, "no sub claim"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("make", "status", "fragment"),
    [pytest.param(m, s, f, id=name) for name, m, s, f in ATTACKS],
)
def test_attacks_are_refused(svc: Svc, make: Any, status: int, fragment: str) -> None:
    tok = make()
    for got, body, _ in (
        svc.post({"role": "mobile-uploader"}, f"Bearer {tok}"),
        svc.get("/v1/sts/mobile-uploader", f"Bearer {tok}"),
    ):
        assert got == status, body
        text = body.get("error") or body.get("ErrorMessage")
        assert fragment in text, text
        assert "AccessKeyId" not in body and "access_key_id" not in body
    assert svc.emu.calls.get("AssumeRole", 0) == 0
    # every refusal is audited: who and why, never the token
    records = [json.loads(line) for line in svc.audit.getvalue().splitlines()]
    assert [r["refused"] for r in records] == [status, status]
    # a POST's body (and so its role) is read only once the caller is known
    assert records[1]["role"] == "mobile-uploader"
    assert records[0]["role"] == ("mobile-uploader" if status == 403 else None)
    assert tok not in svc.audit.getvalue()
    if status == 403:
        assert records[0]["caller"] == "mobile-users"


def test_a_request_cannot_choose_a_claim_bound_value(svc: Svc) -> None:
    status, body, _ = svc.get("/v1/sts/mobile-uploader?user=bob", f"Bearer {token()}")
    assert status == 403 and body["ErrorCode"] == "AccessDenied", body
    status, body, _ = svc.post(
        {"role": "mobile-uploader", "vars": {"user": "bob"}}, f"Bearer {token()}"
    )
    assert status == 403, body


def test_a_jwks_url_is_fetched_once_and_again_on_a_new_kid(svc: Svc) -> None:
    web = {"iss": WEB_ISS, "email": "eve@example.com"}
    assert (
        svc.get("/v1/sts/mobile-uploader", f"Bearer {token(web, EC_KEY, 'web-1', 'ES256')}")[0]
        == 200
    )
    _check_prefix_only(svc.emu.backend.last_session_policy, "eve@example.com")
    assert Jwks.hits == 1
    # the issuer rotates: a token with the new kid makes one fetch, then verifies
    Jwks.keys = [_jwk(EC_KEY, "web-1"), _jwk(ROTATED_KEY, "web-2")]
    rotated = token({**web, "email": "fay@example.com"}, ROTATED_KEY, "web-2", "ES256")
    status, body, _ = svc.get("/v1/sts/mobile-uploader", f"Bearer {rotated}")
    assert status == 200, body
    assert Jwks.hits == 2
    # made-up kids do not make the service hammer the issuer: at most one fetch per interval
    for i in range(5):
        bad = token(web, ROTATED_KEY, f"made-up-{i}", "ES256")
        assert svc.get("/v1/sts/mobile-uploader", f"Bearer {bad}")[0] == 401
    assert Jwks.hits == 2
    # this issuer allows ES256 only: an RS256 token with its iss is refused
    status, body, _ = svc.get("/v1/sts/mobile-uploader", f"Bearer {token(web)}")
    assert status == 401 and "RS256" in body["ErrorMessage"]


def test_the_sdk_get_contract(svc: Svc) -> None:
    # the app's session JWT as a cookie: what the SDKs' plain GET can carry
    status, body, headers = svc.get(
        "/v1/sts/mobile-uploader", headers={"Cookie": f"permgen_token={token(sub='gil')}"}
    )
    assert status == 200, body
    assert list(body) == [
        "StatusCode",
        "AccessKeyId",
        "AccessKeySecret",
        "SecurityToken",
        "Expiration",
    ]
    assert body["AccessKeyId"].startswith("STS.") and body["Expiration"].endswith("Z")
    assert headers["cache-control"] == "no-store"
    # errors in the same shape, with the HTTP status as StatusCode
    for path, auth, status, code in [
        ("/v1/sts/mobile-uploader", None, 401, "InvalidToken"),
        ("/v1/sts/mobile-uploader", "Bearer pgk_wrong", 401, "InvalidToken"),
        ("/v1/sts/ingest-writer", f"Bearer {ALICE_KEY}", 403, "AccessDenied"),
        ("/v1/sts/mobile-uploader", f"Bearer {ALICE_KEY}", 400, "InvalidRequest"),
        ("/v1/sts/mobile-uploader?user=a%2Fb", f"Bearer {ALICE_KEY}", 400, "InvalidRequest"),
        ("/v1/sts/mobile-uploader?user=a&user=b", f"Bearer {ALICE_KEY}", 400, "InvalidRequest"),
        ("/v1/sts/mobile-uploader?user=a&other=b", f"Bearer {ALICE_KEY}", 403, "AccessDenied"),
    ]:
        got, body, headers = svc.get(path, auth)
        assert (got, body["StatusCode"], body["ErrorCode"]) == (status, status, code), body
        assert set(body) == {"StatusCode", "ErrorCode", "ErrorMessage"}
        assert headers["cache-control"] == "no-store"
        assert "--" not in body["ErrorMessage"]  # no command-line flags in HTTP errors
    got, body, _ = svc.get("/v1/sts/mobile-uploader", f"Bearer {ALICE_KEY}")
    assert (
        body["ErrorMessage"]
        == "a value for user is required (vars.user in a POST body, ?user= on a GET)"
    )


def test_a_jwt_callers_rate_limit_is_per_subject(svc: Svc) -> None:
    for _ in range(3):  # burst 3
        assert svc.get("/v1/sts/mobile-uploader", f"Bearer {token(sub='hal')}")[0] == 200
    status, body, headers = svc.get("/v1/sts/mobile-uploader", f"Bearer {token(sub='hal')}")
    assert status == 429 and body["ErrorCode"] == "Throttling" and int(headers["retry-after"]) >= 1
    assert svc.get("/v1/sts/mobile-uploader", f"Bearer {token(sub='ida')}")[0] == 200


# ----------------------------------------------------------------------------- callers file

ISSUER = (
    "issuers:\n  - {{id: app, issuer: 'https://i', audience: permgen, jwks: jwks.json{extra}}}\n"
)
JWT_CALLER = (
    "  - {{id: m, issuer: {issuer}, roles: {{mobile-uploader: {{vars: {{user: '{value}'}}}}}}}}\n"
)
BAD_ISSUERS = [
    (ISSUER.format(extra=", algorithms: [none]"), "algorithms[0]: 'none' is not accepted"),
    (ISSUER.format(extra=", algorithms: [HS256]"), "never none or HS*"),
    (ISSUER.format(extra=", algorithms: []"), "expected a non-empty list of algorithms"),
    (ISSUER.format(extra=", clock_skew: 3600"), "clock_skew: expected whole seconds from 0 to 300, got 3600"),
    (ISSUER.format(extra=", colour: red"), "issuers[0].colour: unknown key"),
    (ISSUER.format(extra="").replace("jwks.json", "missing.json"), "issuers[0].jwks: cannot read"),
    (ISSUER.format(extra="").replace("jwks.json", "http://example.com/k"), "must be https"),
    (ISSUER.format(extra="").replace("jwks.json", "bad.json"), "issuers[0].jwks: "),
    (ISSUER.format(extra="").replace("jwks.json", "private.json"), "is a private key"),
    (ISSUER.format(extra="") + ISSUER.format(extra="")[9:], "issuers[1].id: duplicate issuer id 'app'"),
    ("issuers: 5\n", "issuers: expected a list of issuers, got an integer"),
]  # fmt: skip
BAD_CALLERS = [
    (JWT_CALLER.format(issuer="nope", value="{claim:sub}"), "callers[0].issuer: expected the id of an issuer"),
    (JWT_CALLER.format(issuer="app", value="{claim:sub}") * 2, "callers[1].id: duplicate id 'm'"),
    (JWT_CALLER.format(issuer="app", value="{claim:sub}")
     + JWT_CALLER.format(issuer="app", value="{claim:sub}").replace("id: m", "id: n"),
     "callers[1].issuer: issuer 'app' is named by callers[0] too"),
    (JWT_CALLER.format(issuer="app", value="{claim:a b}"), "is not a claim reference"),
    (f"  - {{id: k, key_sha256: {ALICE_HASH}, roles: {{mobile-uploader: {{vars: {{user: '{{claim:sub}}'}}}}}}}}\n",
     "{claim:sub} needs a caller with issuer:"),
    (f"  - {{id: k, key_sha256: {ALICE_HASH}, issuer: app}}\n", "not both"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("text", "fragment"),
    [(t, f) for t, f in BAD_ISSUERS]
    + [(ISSUER.format(extra="") + "callers:\n" + t, f) for t, f in BAD_CALLERS],
)
def test_bad_issuers_and_jwt_callers_are_exit_2(tmp_path: Path, text: str, fragment: str) -> None:
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [_jwk(EC_KEY, "k")]}))
    (tmp_path / "bad.json").write_text('{"keys": 5}')
    private = json.loads(jwt.algorithms.ECAlgorithm.to_jwk(EC_KEY))
    (tmp_path / "private.json").write_text(json.dumps({"keys": [{**private, "kid": "p"}]}))
    if "callers:" not in text:
        text += "callers:\n" + JWT_CALLER.format(issuer="app", value="{claim:sub}")
    callers = tmp_path / "callers.yaml"
    callers.write_text(text)
    result = run_cli(
        "serve", "--check", "--spec", str(EXAMPLES / "platform.yaml"), "--callers", str(callers)
    )
    assert result.exit_code == 2, result.output
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and str(callers) in lines[0] and fragment in lines[0], lines


def test_the_documented_callers_file_checks(tmp_path: Path) -> None:
    callers = _write_callers(tmp_path, "https://web.example.com/jwks.json")
    result = run_cli(
        "serve", "--check", "--spec", str(EXAMPLES / "platform.yaml"), "--callers", str(callers)
    )
    assert result.exit_code == 0, result.output
    assert result.output.strip().endswith("3 caller(s), 3 role binding(s): ok")


def test_jwks_urls_are_https_or_loopback() -> None:
    assert oidc.jwks_location_problem("https://login.example.com/jwks") is None
    assert oidc.jwks_location_problem("http://127.0.0.1:8000/jwks") is None
    assert oidc.jwks_location_problem("http://login.example.com/jwks")
    assert oidc.jwks_location_problem("ftp://login.example.com/jwks")
    assert oidc.jwks_location_problem("keys/jwks.json") is None  # a file


# ----------------------------------------------------------------------------- serve itself


def _serve(args: list[str], tmp_path: Path) -> subprocess.Popen[str]:
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
    spec = str(EXAMPLES / "platform.yaml")
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "permgen",
            "serve",
            "--spec",
            spec,
            "--callers",
            str(callers),
            *args,
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def test_serve_says_where_it_listens_and_a_busy_port_is_exit_1(tmp_path: Path) -> None:
    import signal

    first = _serve(["--port", "0"], tmp_path)
    try:
        assert first.stdout is not None
        line = first.stdout.readline().strip()
        assert line.startswith("permgen serve: listening on http://127.0.0.1:"), line
        port = int(line.rsplit(":", 1)[1])
        assert port > 0
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as r:
            assert json.loads(r.read()) == {"status": "ok"}
        second = _serve(["--port", str(port)], tmp_path)
        out, err = second.communicate(timeout=30)
        assert second.returncode == 1
        assert err.strip() == (
            f"permgen: error: cannot listen on 127.0.0.1:{port}: Address already in use"
        )
        assert "listening" not in out
        first.send_signal(signal.SIGTERM)
        assert first.wait(timeout=15) == 0
    finally:
        if first.poll() is None:
            first.kill()
        first.communicate()


def test_a_duration_over_the_roles_max_session_is_a_clear_502(
    tmp_path: Path, _token_server: tuple[str, Any]
) -> None:
    url, mounted = _token_server
    spec_path = tmp_path / "platform.yaml"
    shutil.copytree(EXAMPLES / "templates", tmp_path / "templates")  # the spec's own templates
    text = (EXAMPLES / "platform.yaml").read_text()
    spec_path.write_text(
        text.replace(
            'role/oss-uploader"\n      duration: 900', 'role/oss-uploader"\n      duration: 7200'
        )
    )
    spec = load_spec(spec_path)
    assert spec.roles["mobile-uploader"].sts.duration == 7200  # type: ignore[union-attr]
    callers = tmp_path / "callers.yaml"
    callers.write_text(
        f"callers:\n  - {{id: alice, key_sha256: {ALICE_HASH}, roles: {{mobile-uploader: {{vars: {{user: '{{caller}}'}}}}}}}}\n"
    )
    with Emulator(Backend()) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/vendor")
        sts = SdkStsClient(
            AccessKey(key.key_id, Secret(key.secret)), ClientConfig(endpoint=emu.url)
        )
        callers_list, issuers = load_callers_and_issuers(callers, spec)
        mounted.app = create_app(TokenService(spec, callers_list, sts, issuers=issuers))
        try:
            svc = Svc(url, emu, io.StringIO())
            status, body, _ = svc.post({"role": "mobile-uploader"}, f"Bearer {ALICE_KEY}")
            assert status == 502
            assert body["error"] == (
                "STS: InvalidParameter.DurationSeconds: the session duration 7200 s is over the "
                "RAM role's MaxSessionDuration of 3600 s (lower the role's sts.duration, or "
                "raise MaxSessionDuration)"
            )
            status, body, _ = svc.get("/v1/sts/mobile-uploader", f"Bearer {ALICE_KEY}")
            assert (status, body["ErrorCode"]) == (502, "STSError")
            assert "7200 s" in body["ErrorMessage"] and "3600 s" in body["ErrorMessage"]
        finally:
            mounted.app = None


def test_the_callers_file_of_the_docs_checks(tmp_path: Path) -> None:
    text = (ROOT / "docs" / "token-service.md").read_text()
    block = text.split("## OIDC callers", 1)[1].split("```yaml\n", 1)[1].split("```", 1)[0]
    (tmp_path / "jwks.json").write_text(json.dumps({"keys": [_jwk(RSA_KEY, "rsa-1")]}))
    callers = tmp_path / "callers.yaml"
    callers.write_text(block)
    result = run_cli(
        "serve", "--check", "--spec", str(EXAMPLES / "platform.yaml"), "--callers", str(callers)
    )
    assert result.exit_code == 0, result.output
    spec = load_spec(EXAMPLES / "platform.yaml")
    (caller,), issuers = load_callers_and_issuers(callers, spec)
    assert caller.issuer == "app-login" and caller.key_hash is None
    assert issuers["app-login"].algorithms == ("RS256", "ES256")
    assert dict(caller.bindings["mobile-uploader"].values) == {"user": "{claim:sub}"}


def test_token_without_var_says_what_to_give(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", "LTAIx")
    monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", "y")
    monkeypatch.setenv("PERMGEN_ENDPOINT", "http://127.0.0.1:9")  # never reached
    result = run_cli("token", "mobile-uploader", "--spec", str(EXAMPLES / "platform.yaml"))
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "permgen: error: role mobile-uploader: a token needs a value for each placeholder; "
        "give --var user=VALUE (no --var was given)"
    )


def test_plan_warns_of_a_duration_over_the_roles_max_session(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:

    spec = tmp_path / "platform.yaml"
    shutil.copytree(EXAMPLES / "templates", tmp_path / "templates")
    text = (EXAMPLES / "platform.yaml").read_text()
    spec.write_text(
        text.replace('oss-uploader"\n      duration: 900', 'oss-uploader"\n      duration: 7200')
    )
    with Emulator(Backend()) as emu:
        admin = client(emu)
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
        from tests.conftest import operator_key

        key_id, secret = operator_key(emu.backend)  # plan refuses the account's root key
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key_id)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", secret)
        warning = (
            "role mobile-uploader: sts.duration 7200 s is over RAM role oss-uploader's "
            "MaxSessionDuration of 3600 s: STS would refuse every token (lower sts.duration "
            "or raise MaxSessionDuration)"
        )
        out = run_cli("plan", str(spec))
        assert out.exit_code == 0, out.output
        assert f"! warning: {warning}" in out.output.splitlines()
        doc = json.loads(run_cli("plan", str(spec), "--format", "json").output)
        assert doc["warnings"] == [warning]
        # the example's 900 s fits: no warning
        doc = json.loads(
            run_cli("plan", str(EXAMPLES / "platform.yaml"), "--format", "json").output
        )
        assert doc["warnings"] == []
