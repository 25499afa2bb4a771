"""A SignatureDoesNotMatch answer quotes the server's string to sign, which holds the
caller's SecurityToken: permgen never prints it, whatever the server says, and says which
parameters differed instead. The SDK's own loggers never print credentials either.

The requests are real: Alibaba's SDK, over HTTP, to the emulator; in the first test through
a forwarder that adds a parameter on the way (as a rewriting proxy would), so the
emulator's string to sign differs from the SDK's."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import quote

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from permgen.account.sdk import SdkLogFilter, server_message
from permgen.emulator import Backend, Emulator
from permgen.emulator.signing import string_to_sign
from tests.conftest import EXAMPLES, run_cli
from tests.emulator.test_emulator import TRUST, Clock, attach_system, call, client

SPEC = str(EXAMPLES / "platform.yaml")
MINT = ("token", "mobile-uploader", "--spec", SPEC, "--var", "user=alice")


@pytest.fixture
def sts_caller(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Emulator, dict[str, str]]]:
    """An emulator, and STS credentials (with a SecurityToken) to call it with."""
    with Emulator(Backend(clock=Clock())) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/vendor")
        vendor = client(emu, key.key_id, key.secret)
        creds = call(
            vendor,
            "AssumeRole",
            "Sts",
            RoleArn="acs:ram::1234567890123456:role/oss-uploader",
            RoleSessionName="caller",
            DurationSeconds="900",
        )["Credentials"]
        env = {
            "ALIBABA_CLOUD_ACCESS_KEY_ID": creds["AccessKeyId"],
            "ALIBABA_CLOUD_ACCESS_KEY_SECRET": creds["AccessKeySecret"],
            "ALIBABA_CLOUD_SECURITY_TOKEN": creds["SecurityToken"],
        }
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        yield emu, env


class _Rewriter(BaseHTTPRequestHandler):
    """Forwards every request to the emulator with one more query parameter."""

    target = ""

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        req = urllib.request.Request(
            self.target + self.path + "&Rewritten=1", data=body, method="POST"
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as resp:
                status, data = resp.status, resp.read()
        except urllib.error.HTTPError as exc:
            status, data = exc.code, exc.read()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_signature_does_not_match_never_prints_the_string_to_sign(
    sts_caller: tuple[Emulator, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    emu, env = sts_caller
    handler = type("Rewriter", (_Rewriter,), {"target": emu.url})
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(
        target=server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
    )  # shutdown() waits for the next poll: 10 ms, not socketserver's 0.5 s
    thread.start()
    try:
        monkeypatch.setenv("PERMGEN_ENDPOINT", f"http://127.0.0.1:{server.server_address[1]}")
        result = run_cli(*MINT)
    finally:
        server.shutdown()
        server.server_close()
    assert result.exit_code == 1, result.output
    out = result.output
    assert "SignatureDoesNotMatch" in out
    assert "parameters only the server saw: Rewritten" in out
    assert env["ALIBABA_CLOUD_SECURITY_TOKEN"] not in out
    assert env["ALIBABA_CLOUD_ACCESS_KEY_SECRET"] not in out
    assert "string to sign" not in out.lower() and "POST&%2F&" not in out
    assert out.count("\n") == 1


def test_the_sdks_debug_log_never_prints_credentials(
    sts_caller: tuple[Emulator, dict[str, str]],
) -> None:
    """``DEBUG=sdk`` makes aliyunsdkcore log every request URL (with the SecurityToken) on
    its own stderr handler; permgen's filter drops those records."""
    emu, env = sts_caller
    proc = subprocess.run(
        [sys.executable, "-m", "permgen", *MINT, "--format", "json"],
        env={
            **os.environ,
            "PYTHONPATH": str(EXAMPLES.parent),
            "PERMGEN_ENDPOINT": emu.url,
            "DEBUG": "sdk",
        },
        capture_output=True,
        text=True,
        timeout=60,
    )
    # the STS caller's role has no permission policy: the call is refused, with its
    # request and response both passing through the SDK's logger
    assert proc.returncode == 1, proc.stderr
    assert "NoPermission" in proc.stderr
    assert env["ALIBABA_CLOUD_SECURITY_TOKEN"] not in proc.stderr
    assert env["ALIBABA_CLOUD_SECURITY_TOKEN"] not in proc.stdout
    assert "Signature=" not in proc.stderr


# --------------------------------------------------------------------------- properties

_VALUE = st.text(min_size=0, max_size=40)
_NAME = st.from_regex(r"[A-Z][A-Za-z]{0,15}", fullmatch=True)


@settings(max_examples=150, deadline=None)
@given(
    params=st.dictionaries(_NAME, _VALUE, max_size=6),
    token=st.from_regex(r"CAIS[A-Za-z0-9+/=]{8,60}", fullmatch=True),
    secret=st.from_regex(r"[A-Za-z0-9]{12,30}", fullmatch=True),
    extra=st.dictionaries(_NAME, _VALUE, max_size=3),
    prefix=st.sampled_from(
        [
            "Specified signature is not matched with our calculation. server string to sign is:",
            "Signature mismatch; StringToSign: ",
            "string-to-sign=",
        ]
    ),
)
def test_a_server_message_never_shows_the_string_to_sign_or_a_secret(
    params: dict[str, str], token: str, secret: str, extra: dict[str, str], prefix: str
) -> None:
    mine = {**params, "SecurityToken": token, "AccessKeyId": "STS.k"}
    theirs = {**mine, **extra}
    message = prefix + string_to_sign("POST", theirs)
    shown = server_message(
        "SignatureDoesNotMatch", message, string_to_sign("POST", mine), (secret, token)
    )
    assert token not in shown and quote(token, safe="") not in shown
    assert "&%2F&" not in shown and "string" not in shown.lower()
    for name in extra.keys() - mine.keys():
        if secret not in name:  # a name that holds the secret is masked too: secrets first
            assert name in shown  # what differed is named
    # and a message that happens to contain the secret is masked, whatever the code
    assert secret not in server_message(
        "InternalError", f"oops {secret} {token}", "", (secret, token)
    )


@settings(max_examples=100, deadline=None)
@given(
    token=st.from_regex(r"CAIS[A-Za-z0-9]{8,60}", fullmatch=True),
    level=st.sampled_from([10, 20, 30, 40]),
)
def test_sdk_log_records_never_carry_a_token(token: str, level: int) -> None:
    import logging

    texts = [
        f"ServerException: SignatureDoesNotMatch server string to sign is:POST&%2F&SecurityToken%3D{token}",
        f"Request received. Params: {{'SecurityToken': '{token}'}}",
        f'Response-body: {{"Credentials": {{"SecurityToken": "{token}"}}}}',
        f"> POST http://h/?SecurityToken={token}&Signature=x",
    ]
    for text in texts:
        record = logging.LogRecord("aliyunsdkcore.client", level, __file__, 1, "%s", (text,), None)
        if SdkLogFilter().filter(record):
            assert token not in record.getMessage()


def test_a_signature_mismatch_without_the_server_string_is_one_line(
    sts_caller: tuple[Emulator, dict[str, str]], monkeypatch: pytest.MonkeyPatch
) -> None:
    """A SignatureDoesNotMatch that quotes no string to sign: permgen's own wording."""
    emu, _ = sts_caller
    monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
    emu.inject("AssumeRole", "SignatureDoesNotMatch", 400, times=1)
    result = run_cli(*MINT)
    assert result.exit_code == 1
    assert "SignatureDoesNotMatch" in result.output
    assert "does not match the server's calculation" in result.output
    assert result.output.count("\n") == 1
