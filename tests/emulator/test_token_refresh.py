"""``permgen token --exec --refresh``: the child reads renewing credentials through the
credentials-URI provider of the official ``alibabacloud-credentials`` package, over real
HTTP from permgen's loopback endpoint, and they work against the emulator.

Every credential is minted for real: Alibaba's SDK against the emulator over HTTP. permgen's
clock and the emulator's are one :class:`Clock` that the tests move."""

from __future__ import annotations

import json
import os
import select
import signal
import socket
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from aliyunsdkcore.auth.credentials import StsTokenCredential

from permgen.account.sdk import SdkStsClient
from permgen.account.types import AccessKey, ClientConfig, Secret, StsCredentials
from permgen.emulator import Backend, Emulator
from permgen.spec.load import load_spec
from permgen.sts import refresh
from permgen.sts.mint import mint
from permgen.sts.profiles import is_credential_variable, refresh_environment
from permgen.sts.refresh import CredentialServer, Refresher, refresh_margin
from tests.conftest import EXAMPLES, run_cli
from tests.emulator.test_emulator import TRUST, Clock, attach_system, call, client
from tests.emulator.test_token_exec import _permgen_with_child

SPEC = EXAMPLES / "platform.yaml"
MINT = ("token", "mobile-uploader", "--spec", str(SPEC), "--var", "user=alice")

#: The child: the official credentials chain (``Client()`` with no configuration) reads the
#: credentials three times: before the clocks move, after, and once more; each read and the
#: environment go to files in argv[1]; it waits for argv[1]/go between the first two.
CHILD = """
import json, os, sys, time
from alibabacloud_credentials.client import Client
out = sys.argv[1]
json.dump(dict(os.environ), open(os.path.join(out, "env.json"), "w"))
chain = Client()
def read(name):
    c = chain.get_credential()
    doc = {"id": c.access_key_id, "secret": c.access_key_secret, "token": c.security_token,
           "provider": c.provider_name}
    json.dump(doc, open(os.path.join(out, name + ".tmp"), "w"))
    os.rename(os.path.join(out, name + ".tmp"), os.path.join(out, name + ".json"))
read("first")
deadline = time.monotonic() + 30
while not os.path.exists(os.path.join(out, "go")) and time.monotonic() < deadline:
    time.sleep(0.02)
read("second")
read("third")
"""


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    """One clock for the emulator and permgen's credentials server."""
    shared = Clock()
    monkeypatch.setattr(refresh, "now", shared)
    return shared


@pytest.fixture
def account(clock: Clock, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Emulator, str, str]]:
    """An emulator with a user allowed to mint, its key in the environment."""
    with Emulator(Backend(clock=clock)) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="token-vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "token-vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/token-vendor")
        monkeypatch.setenv("PERMGEN_ENDPOINT", emu.url)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_ID", key.key_id)
        monkeypatch.setenv("ALIBABA_CLOUD_ACCESS_KEY_SECRET", key.secret)
        yield emu, key.key_id, key.secret


def _wait_for(path: Path, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise AssertionError(f"{path.name} never appeared")
        time.sleep(0.02)


def _caller(emu: Emulator, creds: dict[str, str]) -> dict[str, Any]:
    """GetCallerIdentity through the SDK, signed with these credentials."""
    credential = StsTokenCredential(creds["id"], creds["secret"], creds["token"])
    return call(client(emu, None, None, credential), "GetCallerIdentity", product="Sts")


def test_the_child_gets_new_credentials_across_a_refresh(
    account: tuple[Emulator, str, str], clock: Clock, tmp_path: Path
) -> None:
    emu, key_id, secret = account
    margin = refresh_margin(900)
    assert margin == 450

    def move_the_clocks() -> None:  # while permgen and the child run
        _wait_for(tmp_path / "first.json")
        clock.now += 900 - margin + 30  # 30 s inside the margin: the next read re-mints
        (tmp_path / "go").write_text("")

    mover = threading.Thread(target=move_the_clocks, daemon=True)
    mover.start()
    started = time.monotonic()
    result = run_cli(*MINT, "--exec", "--refresh", "--", sys.executable, "-c", CHILD, str(tmp_path))
    elapsed = time.monotonic() - started
    mover.join(5)
    assert result.exit_code == 0, result.output
    first, second, third = (
        json.loads((tmp_path / f"{n}.json").read_text()) for n in ("first", "second", "third")
    )
    # read through the URI provider of the official chain, not from static variables
    assert first["provider"] == second["provider"] == "default/credential_uri"
    assert first["id"].startswith("STS.") and second["id"].startswith("STS.")
    assert second["id"] != first["id"] and second["token"] != first["token"]
    assert third == second  # no new AssumeRole while the new ones are fresh
    assert emu.calls["AssumeRole"] == 2
    # the renewed credentials work, as the role's session
    me = _caller(emu, second)
    assert me["IdentityType"] == "AssumedRoleUser"
    assert me["Arn"] == "acs:ram::1234567890123456:role/oss-uploader/permgen-mobile-uploader-alice"
    assert emu.backend.keys[second["id"]].principal.startswith("role/oss-uploader/")
    # the child's environment: the URI and the chain's earlier sources switched off, no key
    env = json.loads((tmp_path / "env.json").read_text())
    uri = env["ALIBABA_CLOUD_CREDENTIALS_URI"]
    assert uri.startswith(f"http://127.0.0.1:{uri.split(':')[2].split('/')[0]}/")
    assert {n for n in env if is_credential_variable(n)} == set(refresh_environment(uri))
    assert env["ALIBABA_CLOUD_CLI_PROFILE_DISABLED"] == "true"
    assert all(key_id not in v and secret not in v for v in env.values())
    # nothing secret on permgen's output: not the URI's token, not a minted secret
    token = uri.rsplit("/", 1)[1]
    assert len(token) >= 43
    for hidden in (token, first["secret"], first["token"], second["secret"], second["token"]):
        assert hidden not in result.output
    assert f"renewed: {second['id']}" in result.output
    # the endpoint is gone once the child has ended
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(uri, timeout=2)
    print(f"refresh round trip: {elapsed:.2f} s for permgen, the child and 2 AssumeRole")


def test_refresh_needs_exec(account: tuple[Emulator, str, str]) -> None:
    emu, _, _ = account
    result = run_cli(*MINT, "--refresh")
    assert result.exit_code == 2, result.output
    assert "--refresh works only with --exec" in result.output
    assert result.output.count("\n") == 1
    assert "AssumeRole" not in emu.calls


def test_signals_still_reach_the_child_with_the_server_running(
    account: tuple[Emulator, str, str], tmp_path: Path
) -> None:
    """The server's threads start with the forwarded signals blocked: SIGTERM to permgen
    reaches the child (exit 143), and the endpoint is gone afterwards."""
    emu, key_id, secret = account
    proc, child = _permgen_with_child(tmp_path, key_id, secret, emu.url, "--refresh")
    os.kill(proc.pid, signal.SIGTERM)
    _, stderr = proc.communicate(timeout=30)
    assert Path(child["out"] + ".got").read_text() == "SIGTERM"
    assert proc.returncode == 143, stderr
    assert b"Traceback" not in stderr
    with pytest.raises(ProcessLookupError):
        os.kill(int(child["pid"]), 0)


# --------------------------------------------------------------------------- the endpoint


@pytest.fixture
def served(
    account: tuple[Emulator, str, str],
) -> Iterator[tuple[Emulator, CredentialServer, list[str]]]:
    """permgen's credentials server in this process, minting through the SDK against the
    emulator; yields (emulator, server, the lines it logged)."""
    emu, key_id, secret = account
    spec = load_spec(SPEC)
    sts = SdkStsClient(AccessKey(key_id, Secret(secret)), ClientConfig(endpoint=emu.url))
    values = {"user": "alice"}

    def again() -> StsCredentials:
        return mint(spec, "mobile-uploader", values, sts).credentials

    lines: list[str] = []
    refresher = Refresher(again(), again, duration=900, log=lines.append)
    with CredentialServer(refresher) as server:
        yield emu, server, lines


def _get(url: str, host: str | None = None, method: str = "GET") -> tuple[int, dict[str, Any]]:
    request = urllib.request.Request(url, method=method)
    if host is not None:
        request.add_header("Host", host)
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read() or b"{}")


def test_the_endpoint_answers_only_its_path_on_loopback(
    served: tuple[Emulator, CredentialServer, list[str]],
) -> None:
    _, server, _ = served
    assert server.address[0] == "127.0.0.1"
    base = f"http://127.0.0.1:{server.port}"
    token = server.uri.rsplit("/", 1)[1]
    assert token not in repr(server)
    status, body = _get(server.uri)
    assert status == 200 and body["Code"] == "Success"
    assert set(body) == {"Code", "AccessKeyId", "AccessKeySecret", "SecurityToken", "Expiration"}
    for path in ("/", "/x", f"/{token[:-1]}", f"/{token}x", f"/{token}/", f"/{token}?a=1"):
        status, body = _get(base + path)
        assert (status, body["Code"]) == (404, "NotFound"), path
        assert "AccessKeyId" not in body
    status, body = _get(server.uri, host="attacker.example")  # a rebound name
    assert (status, "AccessKeyId" in body) == (403, False)
    status, _ = _get(server.uri, method="POST")
    assert status == 405


def test_minting_is_single_flight(
    served: tuple[Emulator, CredentialServer, list[str]], clock: Clock
) -> None:
    emu, server, _ = served
    before = emu.calls["AssumeRole"]
    clock.now += 900 - refresh_margin(900) + 1
    answers: list[tuple[int, dict[str, Any]]] = []
    threads = [threading.Thread(target=lambda: answers.append(_get(server.uri))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert len(answers) == 8 and {status for status, _ in answers} == {200}
    assert len({body["AccessKeyId"] for _, body in answers}) == 1
    assert emu.calls["AssumeRole"] == before + 1


def test_old_credentials_are_served_while_minting_fails_then_an_error(
    served: tuple[Emulator, CredentialServer, list[str]], clock: Clock
) -> None:
    from alibabacloud_credentials.exceptions import CredentialException
    from alibabacloud_credentials.provider.uri import URLCredentialsProvider

    emu, server, lines = served
    _, old = _get(server.uri)
    # the minting user loses sts:AssumeRole: AssumeRole is refused for real from now on
    admin = client(emu)
    call(
        admin,
        "DetachPolicyFromUser",
        PolicyType="System",
        PolicyName="AliyunSTSAssumeRoleAccess",
        UserName="token-vendor",
    )
    clock.now += 900 - refresh_margin(900) + 1  # inside the margin: minting is tried
    status, body = _get(server.uri)
    assert (status, body["AccessKeyId"]) == (200, old["AccessKeyId"])
    assert server.refresher.failures == 1
    assert lines and "could not renew the credentials" in lines[-1]
    assert old["AccessKeySecret"] not in "".join(lines)
    _get(server.uri)  # within RETRY_AFTER: not tried again
    assert server.refresher.failures == 1
    clock.now += server.refresher.margin  # past Expiration
    status, body = _get(server.uri)
    assert (status, body["Code"]) == (503, "CredentialsExpired")
    assert "AccessKeyId" not in body
    # and the official provider reports it as an error
    with pytest.raises(CredentialException, match="http_code=503"):
        URLCredentialsProvider(uri=server.uri).get_credentials()


def test_many_clients_connecting_at_once_wait_for_no_tcp_retry(
    served: tuple[Emulator, CredentialServer, list[str]],
) -> None:
    """A child's SDK clients may all refresh at once: 64 connections opened together are all
    accepted at once (with socketserver's backlog of 5, some waited out a 1 s SYN retry)."""
    _, server, _ = served
    where = urlsplit(server.uri)
    assert where.hostname is not None and where.port is not None
    socks = [socket.socket() for _ in range(64)]
    try:
        for s in socks:
            s.setblocking(False)
            s.connect_ex((where.hostname, where.port))
        start = time.monotonic()
        pending = list(socks)
        while pending and time.monotonic() - start < 0.9:
            _, writable, _ = select.select([], pending, [], 0.05)
            pending = [s for s in pending if s not in writable]
        assert not pending, f"{len(pending)} of 64 connections still waiting after 0.9 s"
    finally:
        for s in socks:
            s.close()
