"""The token service refuses what could drive it into the ground, over real HTTP: bodies
over the limit (declared or chunked, stopped while streaming), slow bodies, deep JSON, long
numbers, NaN and Infinity. Never a 500, never a dropped connection without an answer."""

from __future__ import annotations

import json
import socket
import time
from typing import Any
from urllib.parse import urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from permgen.sts.service import MAX_BODY
from tests.emulator import test_serve
from tests.emulator.test_serve import ALICE_KEY, Service

service = test_serve.service  # the fixture: a token service on uvicorn, the emulator behind
_token_server = test_serve._token_server  # the uvicorn server it mounts its app in


def _connect(svc: Service) -> socket.socket:
    url = urlsplit(svc.url)
    sock = socket.create_connection((url.hostname or "127.0.0.1", url.port or 80), timeout=5)
    return sock


def _head(extra: str = "") -> bytes:
    return (
        "POST /v1/tokens HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
        f"Authorization: Bearer {ALICE_KEY}\r\n{extra}\r\n"
    ).encode()


def _response(sock: socket.socket) -> tuple[int, dict[str, Any], bytes]:
    """Status, JSON body and whatever followed (b"" when the server closed)."""
    data = b""
    while b"\r\n\r\n" not in data:
        more = sock.recv(65536)
        assert more, f"closed without an answer: {data!r}"
        data += more
    head, _, rest = data.partition(b"\r\n\r\n")
    length = int(
        next(
            v
            for k, _, v in (h.partition(b":") for h in head.split(b"\r\n")[1:])
            if k.lower() == b"content-length"
        )
    )
    while len(rest) < length:
        more = sock.recv(65536)
        assert more
        rest += more
    return int(head.split()[1]), json.loads(rest[:length]), rest[length:]


def _closed(sock: socket.socket) -> bool:
    try:
        while True:
            more = sock.recv(65536)
            if not more:
                return True
    except (ConnectionResetError, TimeoutError):
        return False


def test_a_chunked_body_over_the_limit_is_refused_before_it_ends(service: Service) -> None:
    # 20 KiB in one chunk, and the body never ends: reading it all first would wait forever
    sock = _connect(service)
    chunk = b"x" * (20 * 1024)
    sock.sendall(_head("Transfer-Encoding: chunked\r\n") + b"%x\r\n%s\r\n" % (len(chunk), chunk))
    start = time.perf_counter()
    status, body, _ = _response(sock)
    assert status == 413 and body == {"error": f"body over {MAX_BODY} bytes", "status": 413}
    assert time.perf_counter() - start < 3
    assert _closed(sock)  # the sender cannot go on: the connection is closed
    sock.close()


def test_a_huge_chunked_body_is_cut_off_early(service: Service) -> None:
    # the reproduction: 300 chunks of 1 MiB; the server answers and closes long before
    sock = _connect(service)
    sock.settimeout(5)
    sock.sendall(_head("Transfer-Encoding: chunked\r\n"))
    mib = b"y" * (1 << 20)
    sent = 0
    try:
        for _ in range(300):
            sock.sendall(b"100000\r\n" + mib + b"\r\n")
            sent += 1
    except (BrokenPipeError, ConnectionResetError, TimeoutError):
        pass
    # loopback socket buffers hold a few MiB at most: the server stopped reading early
    assert sent < 64, sent
    sock.close()


def test_a_declared_length_over_the_limit_is_refused_unread(service: Service) -> None:
    sock = _connect(service)
    sock.sendall(_head(f"Content-Length: {300 << 20}\r\n") + b"{")
    status, _body, _ = _response(sock)
    assert status == 413
    assert _closed(sock)
    sock.close()


def test_a_bad_content_length_is_400(service: Service) -> None:
    for value in ["-1", "abc", "1,2", "0x10", "²"]:
        sock = _connect(service)
        sock.sendall(_head(f"Content-Length: {value}\r\n".encode().decode("latin-1")))
        data = sock.recv(65536)
        assert data.startswith(b"HTTP/1.1 400"), (value, data)
        sock.close()


def test_a_request_head_over_16_kib_is_400(service: Service) -> None:
    sock = _connect(service)
    sock.sendall(_head("X-Padding: " + "p" * (17 * 1024) + "\r\n"))
    assert sock.recv(65536).startswith(b"HTTP/1.1 400")
    sock.close()


def test_a_slow_body_is_given_up_with_408(
    service: Service, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("permgen.sts.service.BODY_TIMEOUT", 0.3)
    sock = _connect(service)
    sock.sendall(_head("Content-Length: 100\r\n") + b'{"role": ')
    status, body, _ = _response(sock)
    assert status == 408 and "0.3 s" in body["error"]
    sock.close()


BREAKERS = [
    (b"[" * 8000 + b"]" * 8000, "nested more than 8 deep"),  # the reproduction: 16 KiB
    (b'{"role": "mobile-uploader", "vars": ' + b"{" * 9 + b"}" * 10, "nested"),
    (b'{"role": "mobile-uploader", "duration": ' + b"9" * 5000 + b"}", "5000 characters"),
    (b'{"role": "mobile-uploader", "duration": NaN}', "NaN"),
    (b'{"role": "mobile-uploader", "duration": -Infinity}', "Infinity"),
    (b'{"role": "mobile-uploader", "duration": 1e999}', "integer"),
    (b'{"role": "mobile-uploader", "duration": 900.0}', "integer"),
    (b'{"role": "\xff"}', "not JSON"),
]


def test_bodies_that_would_break_the_decoder_are_400(service: Service) -> None:
    for raw, needle in BREAKERS:
        status, body, _ = service.post(None, raw=raw)
        assert status == 400 and needle in body["error"], (raw[:60], body)
    # a lone surrogate is valid JSON; quoting it back must not break the answer
    status, body, _ = service.post(None, raw=b'{"role": "\\ud800"}')
    assert status == 403 and "\\ud800" in body["error"], body


#: JSON text of one value: ordinary ones, and the ones that broke decoders
_json_leaf = st.one_of(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(max_size=8)).map(json.dumps),
    st.sampled_from(["NaN", "Infinity", "-Infinity", "1e999", "9" * 5000, "-0.0", '"\\ud800"']),
)


def _nest(depth: int, leaf: str) -> str:
    return "[" * depth + leaf + "]" * depth


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    role=st.one_of(st.just('"mobile-uploader"'), _json_leaf),
    vars_=st.one_of(
        st.just("{}"),
        st.integers(0, 100).map(lambda d: '{"user": ' + _nest(d, '"x"') + "}"),
        _json_leaf.map(lambda v: '{"user": ' + v + "}"),
    ),
    duration=st.one_of(_json_leaf, st.integers(0, 100).map(lambda d: _nest(d, "900"))),
)
def test_no_body_gets_a_500_or_a_dropped_connection(  # the property, over real HTTP
    service: Service, role: str, vars_: str, duration: str
) -> None:
    raw = f'{{"role": {role}, "vars": {vars_}, "duration": {duration}}}'.encode()
    status, body, _ = service.post(None, raw=raw)
    assert status in (200, 400, 403, 413, 429), (status, body)
    assert status == 200 or set(body) == {"error", "status"}
