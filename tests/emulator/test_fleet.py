"""A fleet of three token services sharing state on a real redis-server, over real HTTP,
minting through the SDK against the emulator: one AssumeRole per key across the fleet, a
caller's rate limit holds fleet-wide, cached credentials in Redis are encrypted, and killing
Redis mid-load loses no request that the local path can serve."""

from __future__ import annotations

import base64
import io
import json
import secrets
import shutil
import socket
import subprocess
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
from permgen.account.types import AccessKey, ClientConfig, Secret
from permgen.emulator import Backend, Emulator
from permgen.errors import InputError
from permgen.spec.load import load_spec
from permgen.sts.fleet import PREFIX, BudgetExceeded, Keyring, LocalState, RedisState
from permgen.sts.service import SERVER_LIMITS, TokenService, create_app, load_callers, new_key
from tests.conftest import EXAMPLES
from tests.emulator.test_emulator import TRUST, attach_system, call, client

ALICE_KEY, ALICE_HASH = new_key()
BOB_KEY, BOB_HASH = new_key()
CACHE_KEY = secrets.token_bytes(32)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _reply_end(data: bytes, start: int) -> int | None:
    """Where the RESP reply at ``start`` ends, or None while it is incomplete."""
    line_end = data.find(b"\r\n", start)
    if line_end < 0:
        return None
    kind, head, end = data[start : start + 1], data[start + 1 : line_end], line_end + 2
    if kind == b"$":
        size = int(head)
        return end if size < 0 else (end + size + 2 if len(data) >= end + size + 2 else None)
    if kind == b"*":
        for _ in range(max(int(head), 0)):
            found = _reply_end(data, end)
            if found is None:
                return None
            end = found
    return end


class RedisServer:
    """A redis-server of its own on a free port: no persistence, no unix socket.

    Tests run in parallel (pytest-xdist), so the free port may be taken again before
    redis-server binds it: the server that answers must be this process (its pid), else
    another port is tried; a test never talks to another test's Redis."""

    def __init__(self) -> None:
        binary = shutil.which("redis-server")
        if binary is None:
            pytest.fail(
                "redis-server is not installed: the fleet tests need it "
                "(apt-get install redis-server; .ci/run installs it)"
            )
        for _attempt in range(5):
            self.port = _free_port()
            self.url = f"redis://127.0.0.1:{self.port}/0"
            self.proc = subprocess.Popen(
                [binary, "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
                 "--appendonly", "no", "--daemonize", "no", "--loglevel", "warning"],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )  # fmt: skip
            for _ in range(300):
                if self.proc.poll() is not None:
                    break  # it could not listen: try another port
                if self.command("PING") == b"+PONG\r\n":
                    if f"process_id:{self.proc.pid}\r\n".encode() in self.command("INFO", "server"):
                        return
                    break  # another redis-server answers on this port
                time.sleep(0.01)
            self.stop()
        pytest.fail("redis-server did not start")

    def command(self, *args: str) -> bytes:
        """One command in RESP over a plain socket (no client library in the test's checks)."""
        payload = f"*{len(args)}\r\n" + "".join(f"${len(a)}\r\n{a}\r\n" for a in args)
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as s:
                s.sendall(payload.encode())
                data = b""
                while _reply_end(data, 0) is None and (chunk := s.recv(65536)):
                    data += chunk
                return data
        except OSError:
            return b""

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(timeout=10)


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    server = RedisServer()
    yield server
    server.stop()


class Instance:
    def __init__(self, name: str, url: str, service: TokenService, audit: io.StringIO) -> None:
        self.name, self.url, self.service, self.audit = name, url, service, audit


def _serve(app: Any) -> tuple[uvicorn.Server, threading.Thread, str]:
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=0, log_level="error", access_log=False, **SERVER_LIMITS
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    for _ in range(500):
        if server.started:
            break
        time.sleep(0.01)
    port = server.servers[0].sockets[0].getsockname()[1]
    return server, thread, f"http://127.0.0.1:{port}"


@pytest.fixture
def fleet(redis_server: RedisServer, tmp_path: Path) -> Iterator[tuple[list[Instance], Emulator]]:
    with Emulator(Backend()) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/vendor")
        spec = load_spec(EXAMPLES / "platform.yaml")
        callers = tmp_path / "callers.yaml"
        callers.write_text(
            f"callers:\n"
            f"  - {{id: alice, key_sha256: {ALICE_HASH}, rate: 1000, burst: 1000, roles: {{mobile-uploader: {{vars: {{user: '{{request}}'}}}}}}}}\n"
            f"  - {{id: bob, key_sha256: {BOB_HASH}, rate: 0.001, burst: 6, roles: {{mobile-uploader: {{vars: {{user: '{{caller}}'}}}}}}}}\n"
        )
        keyring = Keyring([CACHE_KEY])
        instances, servers = [], []
        for n in range(3):
            name = f"node-{n}"
            sts = SdkStsClient(
                AccessKey(key.key_id, Secret(key.secret)), ClientConfig(endpoint=emu.url)
            )
            # a timeout above the production default: on this shared 2-core machine a
            # Redis answer can take longer than 100 ms, which would (correctly) send the
            # instance local and mint once more than the exact counts below expect
            state = RedisState(
                redis_server.url,
                keyring,
                name,
                local=LocalState(budget=50),
                budget=80,
                # generous: on a loaded machine a slow answer must not send an instance to
                # its local path, which these tests do not mean to exercise (others do)
                timeout=5.0,
                wait_for_peer=20.0,
            )
            audit = io.StringIO()
            service = TokenService(
                spec, load_callers(callers, spec), sts, audit=audit, state=state, instance=name
            )
            server, thread, url = _serve(create_app(service))
            servers.append((server, thread))
            instances.append(Instance(name, url, service, audit))
        yield instances, emu
        for server, _ in servers:
            server.should_exit = True
        for _, thread in servers:
            thread.join(timeout=10)


def _post(url: str, body: Any, key: str = ALICE_KEY) -> tuple[int, dict[str, Any]]:
    req = urllib.request.Request(
        url + "/v1/tokens",
        data=json.dumps(body).encode(),
        method="POST",
        headers={"Content-Type": "application/json", "Authorization": f"Bearer {key}"},
    )
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as exc:
        with exc:
            return exc.code, json.loads(exc.read())


def _get(url: str) -> tuple[int, str]:
    with urllib.request.urlopen(url, timeout=10) as resp:
        return resp.status, resp.read().decode()


def _spread(instances: list[Instance], bodies: list[Any], key: str = ALICE_KEY) -> list[Any]:
    """Requests spread round-robin over the instances, 12 at a time."""
    with ThreadPoolExecutor(12) as pool:
        jobs = [
            pool.submit(_post, instances[i % len(instances)].url, body, key)
            for i, body in enumerate(bodies)
        ]
        return [j.result() for j in jobs]


def test_one_assume_role_per_key_across_the_fleet(
    fleet: tuple[list[Instance], Emulator], redis_server: RedisServer
) -> None:
    instances, emu = fleet
    before = emu.calls.get("AssumeRole", 0)
    users = [f"u{n}" for n in range(5)]
    bodies = [{"role": "mobile-uploader", "vars": {"user": users[n % 5]}} for n in range(90)]
    results = _spread(instances, bodies)
    assert [status for status, _ in results] == [200] * 90
    # five distinct keys: five AssumeRole calls for the whole fleet, one credential per key
    assert emu.calls["AssumeRole"] - before == 5
    per_user: dict[str, set[str]] = {}
    for body, (_, doc) in zip(bodies, results, strict=True):
        per_user.setdefault(body["vars"]["user"], set()).add(doc["access_key_id"])
    assert all(len(ids) == 1 for ids in per_user.values()) and len(per_user) == 5
    minted = sum(i.service.metrics.issued.get("minted", 0) for i in instances)
    served_from_fleet = sum(i.service.metrics.issued.get("fleet", 0) for i in instances)
    assert minted == 5 and served_from_fleet >= 2  # every instance served keys it did not mint
    # the audit log says which instance served and which one minted
    records = [json.loads(line) for i in instances for line in i.audit.getvalue().splitlines()]
    assert len(records) == 90
    assert {r["instance"] for r in records} == {"node-0", "node-1", "node-2"}
    for r in records:
        assert r["minted_by"] in {"node-0", "node-1", "node-2"}
        if r["source"] == "minted":
            assert r["minted_by"] == r["instance"] and not r["cache_hit"]
        else:
            assert r["cache_hit"] and r["source"] in {"cache", "fleet"}
    assert sorted(r["source"] for r in records).count("minted") == 5
    # the credentials in Redis are encrypted: no secret or key id in the stored records
    names = redis_server.command("KEYS", PREFIX + "tok:*").split(b"\r\n")
    stored = [n.decode() for n in names if n.startswith(PREFIX.encode())]
    assert len(stored) == 5
    for name in stored:
        raw = redis_server.command("GET", name)
        for _, doc in results:
            assert doc["access_key_secret"].encode() not in raw
            assert doc["security_token"].encode() not in raw
            assert doc["access_key_id"].encode() not in raw
        assert b'"kid"' in raw
    # the metrics carry the instance as a label
    _, text = _get(instances[0].url + "/metrics")
    assert 'permgen_instance_info{instance="node-0"} 1' in text
    assert 'permgen_redis_errors_total{instance="node-0"} 0' in text


def test_a_callers_rate_limit_holds_across_the_fleet(
    fleet: tuple[list[Instance], Emulator],
) -> None:
    instances, _ = fleet
    results = _spread(instances, [{"role": "mobile-uploader"}] * 18, key=BOB_KEY)
    statuses = sorted(status for status, _ in results)
    # burst 6 and (nearly) no refill: 6 of 18 requests pass, wherever they land
    assert statuses == [200] * 6 + [429] * 12


def test_killing_redis_mid_load_loses_no_request(
    fleet: tuple[list[Instance], Emulator], redis_server: RedisServer
) -> None:
    instances, emu = fleet
    _, health = _get(instances[1].url + "/healthz")
    assert json.loads(health) == {"status": "ok"}
    bodies = [{"role": "mobile-uploader", "vars": {"user": f"k{n % 8}"}} for n in range(240)]
    killer = threading.Timer(0.05, redis_server.stop)
    killer.start()
    start = time.monotonic()
    results = _spread(instances, bodies)
    elapsed = time.monotonic() - start
    killer.join()
    assert redis_server.proc.poll() is not None  # Redis died during the load
    assert [status for status, _ in results] == [200] * 240
    assert elapsed < 30
    # after Redis died, each instance minted at most once per key on its own
    assert emu.calls["AssumeRole"] <= 8 * 3
    # degraded, still 200 so a load balancer keeps sending traffic; the metrics count it
    for inst in instances:
        t0 = time.monotonic()
        status, health = _get(inst.url + "/healthz")
        assert time.monotonic() - t0 < 2.0  # no request hangs on Redis
        assert status == 200 and json.loads(health) == {
            "status": "degraded",
            "redis": "unreachable",
        }
    errors = [i.service.metrics.fleet.redis_errors for i in instances]  # type: ignore[union-attr]
    assert all(n >= 1 for n in errors)
    _, text = _get(instances[2].url + "/metrics")
    assert 'permgen_redis_errors_total{instance="node-2"} 0' not in text
    # new keys are still minted directly while Redis is down
    status, doc = _post(instances[0].url, {"role": "mobile-uploader", "vars": {"user": "late"}})
    assert status == 200 and not doc["cached"]


def test_the_local_budget_bounds_assume_role_while_redis_is_down(
    fleet: tuple[list[Instance], Emulator], redis_server: RedisServer
) -> None:
    instances, emu = fleet
    redis_server.stop()
    inst = instances[0]
    inst.service.local.budget = 3
    inst.service.clock = lambda: 1_900_000_000.25  # one second for all six requests
    before = emu.calls.get("AssumeRole", 0)
    results = [
        _post(inst.url, {"role": "mobile-uploader", "vars": {"user": f"b{n}"}}) for n in range(6)
    ]
    assert [status for status, _ in results] == [200] * 3 + [503] * 3
    assert emu.calls["AssumeRole"] - before == 3
    for _, doc in results[3:]:
        assert doc["error"] == "AssumeRole budget of this second spent"
    # a key it minted is still served from its cache within the spent budget
    assert _post(inst.url, {"role": "mobile-uploader", "vars": {"user": "b0"}})[1]["cached"]


def test_the_fleet_budget_is_shared(
    fleet: tuple[list[Instance], Emulator], redis_server: RedisServer
) -> None:
    instances, emu = fleet
    for inst in instances:
        inst.service.state.budget = 4  # type: ignore[attr-defined]
        inst.service.clock = lambda: 1_900_000_100.5  # every request in one second
    before = emu.calls.get("AssumeRole", 0)
    bodies = [{"role": "mobile-uploader", "vars": {"user": f"g{n}"}} for n in range(12)]
    statuses = [s for s, _ in _spread(instances, bodies)]
    # 4 AssumeRole calls in the second across the fleet; the other 8 are 503 Retry-After 1
    assert sorted(statuses) == [200] * 4 + [503] * 8
    assert emu.calls["AssumeRole"] - before == 4
    rejected = sum(i.service.metrics.fleet.budget_rejections for i in instances)  # type: ignore[union-attr]
    assert rejected == 8


def test_cache_keys_rotate_and_bad_keys_are_refused(tmp_path: Path) -> None:
    old, new = secrets.token_bytes(32), secrets.token_bytes(32)
    record = Keyring([old]).encrypt(b"plain", b"permgen:tok:a")
    rotated = Keyring([new, old])
    assert rotated.decrypt(record, b"permgen:tok:a") == b"plain"  # the previous key decrypts
    assert json.loads(rotated.encrypt(b"x", b"n"))["kid"] == rotated.current  # the new encrypts
    assert Keyring([new]).decrypt(record, b"permgen:tok:a") is None  # retired: a miss
    assert rotated.decrypt(record, b"permgen:tok:b") is None  # moved to another key: refused
    assert b"plain" not in record and old.hex() not in repr(rotated)
    env = {
        "PERMGEN_CACHE_KEY": f"{base64.b64encode(new).decode()},{base64.b64encode(old).decode()}"
    }
    assert Keyring.load(None, env).current == rotated.current
    keyfile = tmp_path / "keys"
    keyfile.write_text(f"# current first\n{base64.b64encode(new).decode()}\n")
    assert Keyring.load(keyfile, {}).current == rotated.current
    with pytest.raises(InputError, match=r"\$PERMGEN_CACHE_KEY: key 1 is 16 bytes, expected 32"):
        Keyring.load(None, {"PERMGEN_CACHE_KEY": base64.b64encode(b"k" * 16).decode()})
    with pytest.raises(InputError, match="--redis needs a cache key"):
        Keyring.load(None, {})
    keyfile.write_text("not base64!\n")
    with pytest.raises(InputError, match=r"--cache-key-file .*keys: key 1 is not base64"):
        Keyring.load(keyfile, {})


def test_serve_with_redis_needs_a_valid_cache_key(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os
    import sys

    from tests.conftest import ROOT, run_cli

    callers = tmp_path / "callers.yaml"
    callers.write_text(f"callers:\n  - {{id: alice, key_sha256: {ALICE_HASH}}}\n")
    args = ["serve", "--spec", "examples/platform.yaml", "--callers", str(callers)]
    args += ["--redis", "redis://127.0.0.1:1/0", "--port", "0"]
    # the real process once (exit code and stderr as a user sees them) ...
    env = {k: v for k, v in os.environ.items() if k != "PERMGEN_CACHE_KEY"}
    out = subprocess.run(
        [sys.executable, "-m", "permgen", *args],
        capture_output=True, text=True, cwd=ROOT, env=env, timeout=60,
    )  # fmt: skip
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert "--redis needs a cache key: set PERMGEN_CACHE_KEY" in out.stderr
    # ... and the other refusals in process (run_cli fails on a traceback too)
    monkeypatch.chdir(ROOT)
    short = base64.b64encode(b"k" * 16).decode()
    monkeypatch.setenv("PERMGEN_CACHE_KEY", short)
    result = run_cli(*args)
    assert result.exit_code == 2 and "key 1 is 16 bytes, expected 32" in result.stderr
    assert short not in result.output  # a key is never shown
    monkeypatch.delenv("PERMGEN_CACHE_KEY")
    result = run_cli(*args[:-4], "--redis", "localhost:6379", "--port", "0")
    assert result.exit_code == 2
    assert "--redis: expected a redis:// or rediss:// URL" in result.stderr


def test_a_slow_redis_sends_the_instance_local_after_three_timeouts() -> None:
    """A 'Redis' that accepts connections and never answers: every call gives up after the
    timeout, the third timeout in a row marks Redis unreachable, and then no call waits."""
    import asyncio

    with socket.socket() as blackhole:
        blackhole.bind(("127.0.0.1", 0))
        blackhole.listen(64)
        port = blackhole.getsockname()[1]
        state = RedisState(
            f"redis://127.0.0.1:{port}/0",
            Keyring([CACHE_KEY]),
            "slow",
            local=LocalState(budget=1),
            timeout=0.05,
        )

        async def run() -> list[tuple[float, float, bool]]:
            out = []
            for _ in range(5):
                start = time.monotonic()
                wait = await state.allow("bob", 1.0, 2, 1000.0)
                out.append((time.monotonic() - start, wait, state.degraded))
            await state.spend(1000.0)  # the local budget: 1 a second
            with pytest.raises(BudgetExceeded):
                await state.spend(1000.5)
            await state.close()
            return out

        calls = asyncio.run(run())
    # each of the first three waits out the timeout; the rate limit falls back to the local
    # bucket (burst 2: two pass, then wait)
    assert [round(w, 3) for _, w, _ in calls] == [0.0, 0.0, 1.0, 1.0, 1.0]
    assert [d for _, _, d in calls] == [False, False, True, True, True]
    assert all(0.04 <= t < 1.0 for t, _, _ in calls[:3])
    assert all(t < 0.02 for t, _, _ in calls[3:])  # unreachable: no call waits on Redis
    assert state.counters.redis_errors == 3
