"""The emulator's HTTP front: Alibaba Cloud's RPC protocol on 127.0.0.1.

The real SDK (aliyun-python-sdk-core) talks to it unchanged: POST with every parameter in the
query string (form-body parameters are accepted and signed too). Every request is checked the
way the cloud checks it: the HMAC-SHA1 signature, the timestamp (within 15 minutes), the nonce
(never reused while its request's timestamp is in that window; older ones are forgotten), the
AccessKeyId, and for STS credentials the SecurityToken and its expiry.
Faults (an error code, a status, a delay, a dropped connection) can be injected per action.

Whatever a client sends, it gets an answer in RAM's error shape, never a dropped connection:
a malformed request is refused with the code RAM or STS gives, a bug in a handler is an
``InternalError`` (500). A connection that sends nothing for ``idle_timeout`` seconds is
closed; over ``max_connections`` open connections, a new one is answered
``ServiceUnavailable`` (503) at once. Request bodies are at most :data:`MAX_BODY` bytes.
"""

from __future__ import annotations

import contextlib
import heapq
import json
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from permgen.emulator.backend import Backend
from permgen.emulator.oss import OssService, is_oss_request
from permgen.emulator.oss import serve as serve_oss
from permgen.emulator.signing import verify
from permgen.emulator.state import HANDLERS, RAM_VERSION, EmulatorError, now_text

MAX_SKEW = 15 * 60
#: The largest request body, in bytes: a 6,144-byte policy, percent-encoded three times over,
#: with every other parameter, fits well within it.
MAX_BODY = 64 * 1024
#: Seconds a connection may stay silent (mid-request or between requests) before it is closed.
IDLE_TIMEOUT = 10.0
#: Connections served at once; one more is answered 503 ServiceUnavailable and closed.
MAX_CONNECTIONS = 64
_LENGTH_RE = re.compile(r"[0-9]{1,12}")


@dataclass
class Fault:
    action: str
    code: str = "ServiceUnavailable"
    status: int = 503
    times: int = 1
    delay: float = 0.0
    drop: bool = False  # close the connection without an answer


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # requests are not logged
        pass

    def setup(self) -> None:
        super().setup()
        self.connection.settimeout(self.server.idle_timeout)  # reads and writes alike

    def do_GET(self) -> None:
        self._handle("GET")

    def do_POST(self) -> None:
        self._handle("POST")

    # --- OSS REST (permgen.emulator.oss): bucket APIs beside the RPC API -----------------
    def do_PUT(self) -> None:
        self._handle("PUT")

    def do_DELETE(self) -> None:
        self._handle("DELETE")

    def do_HEAD(self) -> None:
        self._handle("HEAD")

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json;charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, code: str, message: str, request_id: str) -> None:
        self._send(
            status,
            {
                "RequestId": request_id,
                "HostId": "permgen-emulator",
                "Code": code,
                "Message": message,
            },
        )

    def _handle(self, method: str) -> None:
        if is_oss_request(method, self.path, self.headers.get("Authorization") or ""):
            serve_oss(self, method, self.server.oss, self.server)
            return
        request_id = str(uuid.UUID(int=self.server.next_id()))
        try:
            params = self._params()
            result = self.server.dispatch(method, params, source_ip=self.client_address[0])
        except EmulatorError as exc:
            if exc.status in (400, 413) and exc.code.startswith("InvalidHttp"):
                self.close_connection = True  # the body cannot be skipped safely
            self._error(exc.status, exc.code, exc.message, request_id)
            return
        except _Drop:
            self.close_connection = True
            return
        except (TimeoutError, ConnectionError):
            raise  # the client went silent or away: nobody to answer
        except Exception as exc:  # a bug: still an answer, in RAM's shape, and no hang
            self.close_connection = True
            self._error(
                500,
                "InternalError",
                f"The request processing has failed ({type(exc).__name__}).",
                request_id,
            )
            return
        self._send(200, {"RequestId": request_id, **result})

    def _params(self) -> dict[str, str]:
        """The query's parameters and, for a form body, the body's (UTF-8, bounded)."""
        params = dict(parse_qsl(urlsplit(self.path).query, keep_blank_values=True))
        if self.headers.get("Transfer-Encoding"):
            raise EmulatorError(
                "InvalidHttpRequest.TransferEncoding",
                400,
                "Chunked request bodies are not supported: send a Content-Length.",
            )
        declared = (self.headers.get("Content-Length") or "0").strip()
        if not _LENGTH_RE.fullmatch(declared):
            raise EmulatorError(
                "InvalidHttpRequest.ContentLength", 400, "The Content-Length header is invalid."
            )
        length = int(declared)
        if length > MAX_BODY:
            raise EmulatorError(
                "InvalidHttpRequest.BodyTooLarge",
                413,
                f"The request body is over {MAX_BODY} bytes.",
            )
        if length:
            body = self.rfile.read(length).decode("utf-8", errors="replace")
            if "x-www-form-urlencoded" in (self.headers.get("Content-Type") or ""):
                params.update(parse_qsl(body, keep_blank_values=True))
        return params


class _Drop(Exception):
    pass


#: Seconds between the checks a thread-started emulator makes for a stop request.
POLL_INTERVAL = 0.01


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    request_queue_size = 128  # connections waiting to be accepted (answered or refused at once)

    def __init__(
        self,
        address: tuple[str, int],
        backend: Backend,
        *,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__(address, _Handler)
        self.backend = backend
        self.idle_timeout = idle_timeout
        self.max_connections = max_connections
        self.open_connections = 0
        self.lock = threading.Lock()
        self.wall_clock = wall_clock
        # Nonces seen, with the Timestamp of the request that used them. One is forgotten once
        # that Timestamp is more than MAX_SKEW in the past: a replay of that request is then
        # refused for its Timestamp, so the set stays as large as one window of traffic.
        self.nonces: dict[str, float] = {}
        self.nonce_expiry: list[tuple[float, str]] = []  # a heap of (stamp, nonce)
        self.faults: list[Fault] = []
        self.counter = 0
        self.calls: dict[str, int] = {}
        self.state_file: str | None = None
        self.oss = OssService(backend, self.lock)  # the OSS side's buckets

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.lock:
            full = self.open_connections >= self.max_connections
            if not full:
                self.open_connections += 1
        if full:
            self._refuse(request)
            return
        try:
            super().process_request(request, client_address)
        except BaseException:
            self._release()
            raise

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            self._release()

    def _release(self) -> None:
        with self.lock:
            self.open_connections -= 1

    def _refuse(self, request: socket.socket) -> None:
        """Answer 503 ServiceUnavailable on a connection over the limit, and close it."""
        body = json.dumps(
            {
                "RequestId": str(uuid.UUID(int=self.next_id())),
                "HostId": "permgen-emulator",
                "Code": "ServiceUnavailable",
                "Message": "The request has failed due to a temporary failure of the server.",
            }
        ).encode()
        head = (
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json;charset=utf-8\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        ).encode()
        try:
            request.settimeout(1.0)
            request.sendall(head + body)
        except OSError:
            pass
        self.shutdown_request(request)

    def next_id(self) -> int:
        with self.lock:
            self.counter += 1
            return self.counter

    def _authenticate(self, method: str, params: dict[str, str]) -> Any:
        backend = self.backend
        for required in (
            "AccessKeyId",
            "Signature",
            "Timestamp",
            "SignatureNonce",
            "Action",
            "Version",
        ):
            if not params.get(required):
                raise EmulatorError(
                    "MissingParameter",
                    400,
                    f"The input parameter {required} that is mandatory for processing this request is not supplied.",
                )
        if params.get("SignatureMethod") != "HMAC-SHA1" or params.get("SignatureVersion") != "1.0":
            raise EmulatorError(
                "InvalidParameter", 400, "Only HMAC-SHA1 signatures, version 1.0, are supported."
            )
        key = backend.keys.get(params["AccessKeyId"])
        if key is None:
            raise EmulatorError(
                "InvalidAccessKeyId.NotFound", 404, "Specified access key is not found."
            )
        try:
            stamp = (
                datetime.strptime(params["Timestamp"], "%Y-%m-%dT%H:%M:%SZ")
                .replace(tzinfo=UTC)
                .timestamp()
            )
        except ValueError:
            raise EmulatorError(
                "InvalidTimeStamp.Format",
                400,
                "Specified time stamp or date value is not well formatted.",
            ) from None
        now = self.wall_clock()
        if abs(stamp - now) > MAX_SKEW:  # request stamps are wall-clock time
            raise EmulatorError(
                "InvalidTimeStamp.Expired", 400, "Specified time stamp or date value is expired."
            )
        ok, sts = verify(method, params, key.secret)
        if not ok:
            raise EmulatorError(
                "SignatureDoesNotMatch",
                400,
                "Specified signature is not matched with our calculation. server string to sign is:"
                + sts,
            )
        if key.token is not None:
            if params.get("SecurityToken") != key.token:
                raise EmulatorError(
                    "InvalidSecurityToken.MismatchWithAccessKey",
                    400,
                    "Specified SecurityToken mismatch with the AccessKey.",
                )
            if key.expires is not None and backend.clock() >= key.expires:
                raise EmulatorError(
                    "InvalidSecurityToken.Expired", 400, "Specified SecurityToken is expired."
                )
        with self.lock:
            expiry = self.nonce_expiry
            while expiry and expiry[0][0] < now - MAX_SKEW:
                _stamp, old = heapq.heappop(expiry)
                del self.nonces[old]
            nonce = params["SignatureNonce"]
            if nonce in self.nonces:
                raise EmulatorError(
                    "SignatureNonceUsed", 400, "Specified signature nonce was used already."
                )
            self.nonces[nonce] = stamp
            heapq.heappush(expiry, (stamp, nonce))
        return key

    def dispatch(
        self, method: str, params: dict[str, str], source_ip: str = "127.0.0.1"
    ) -> dict[str, Any]:
        key = self._authenticate(method, params)
        action = params["Action"]
        handler = HANDLERS.get((params["Version"], action))
        if handler is None:
            raise EmulatorError(
                "InvalidAction.NotFound",
                400,
                f"Specified api is not found: {action} ({params['Version']}).",
            )
        fault = self._take_fault(action)
        if fault is not None:
            if fault.delay:
                time.sleep(fault.delay)
            if fault.drop:
                raise _Drop()
            if fault.code:
                raise EmulatorError(fault.code, fault.status, f"Injected fault: {fault.code}.")
        with self.lock:
            self.calls[action] = self.calls.get(action, 0) + 1
            self.backend.request_context = {
                "acs:SourceIp": source_ip,
                "acs:SecureTransport": "false",  # the emulator speaks plain HTTP
                "acs:CurrentTime": now_text(self.backend.clock()),
            }
            try:
                if params["Version"] == RAM_VERSION:
                    self.backend.authorize_ram(action, params, key)
                result: dict[str, Any] = getattr(self.backend, handler)(params, key)
            finally:
                self.backend.request_context = {}
            if self.state_file and not action.startswith(("Get", "List")):
                from permgen._internal.fileio import (
                    write_secret_file,  # the state holds the keys' secrets
                )

                write_secret_file(self.state_file, json.dumps(self.backend.dump(), indent=1))
        return result

    def _take_fault(self, action: str) -> Fault | None:
        with self.lock:
            for fault in self.faults:
                if fault.action in (action, "*") and fault.times > 0:
                    fault.times -= 1
                    return fault
        return None


class Emulator:
    """A running emulator: ``Emulator().start()`` serves on 127.0.0.1 (port 0 = any free one)."""

    def __init__(
        self,
        backend: Backend | None = None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        state_file: str | None = None,
        idle_timeout: float = IDLE_TIMEOUT,
        max_connections: int = MAX_CONNECTIONS,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self.backend = backend or Backend()
        self._server = _Server(
            (host, port),
            self.backend,
            idle_timeout=idle_timeout,
            max_connections=max_connections,
            wall_clock=wall_clock,
        )
        self._server.state_file = state_file
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def oss(self) -> OssService:
        """The OSS side: its buckets (``oss.buckets``), on the same account and clock."""
        return self._server.oss

    @property
    def open_connections(self) -> int:
        """Connections being served now (each holds a thread)."""
        return self._server.open_connections

    @property
    def nonces_kept(self) -> int:
        """How many signature nonces are remembered now (those of the last MAX_SKEW)."""
        return len(self._server.nonces)

    @property
    def calls(self) -> dict[str, int]:
        return dict(self._server.calls)

    def inject(
        self,
        action: str,
        code: str = "ServiceUnavailable",
        status: int = 503,
        *,
        times: int = 1,
        delay: float = 0.0,
        drop: bool = False,
    ) -> None:
        """Make the next ``times`` calls of ``action`` ("*" = any) fail this way."""
        with self._server.lock:
            self._server.faults.append(Fault(action, code, status, times, delay, drop))

    def start(self) -> Emulator:
        # A short poll interval: stop() waits for the serving loop to notice the shutdown
        # request, which with socketserver's default (0.5 s) made every stop take that long.
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL},
            name="permgen-emulator",
            daemon=True,
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        # Wake the serving loop now instead of at its next poll (up to POLL_INTERVAL, paid by
        # every test that starts an emulator): a listening socket shut for reading is
        # readable at once and its accept() fails, which socketserver ignores, so the loop
        # only spins until shutdown() below has set its request. The socket is closed right
        # after anyway, and no connection reaches a handler in between.
        with contextlib.suppress(OSError):
            self._server.socket.shutdown(socket.SHUT_RD)
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Emulator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


__all__ = ["IDLE_TIMEOUT", "MAX_BODY", "MAX_CONNECTIONS", "Emulator", "Fault"]
