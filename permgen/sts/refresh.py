"""Credentials that refresh for a long-running ``permgen token --exec --refresh`` command.

permgen serves the minted credentials on a loopback HTTP endpoint in the shape of the
credentials-URI provider of Alibaba's credentials chain (``alibabacloud-credentials``,
``provider/uri.py``: ``GET`` the URI in ``ALIBABA_CLOUD_CREDENTIALS_URI``; status 200 and a
JSON object with ``Code: "Success"``, ``AccessKeyId``, ``AccessKeySecret``,
``SecurityToken`` and ``Expiration`` as ``%Y-%m-%dT%H:%M:%SZ``; any other status or
``Code`` is an error). The provider fetches again once its copy is within 15 minutes of
``Expiration``, so an SDK-based child picks up new credentials without restarting.

* **Who can use it.** The server listens on ``127.0.0.1`` only, on a port the system
  chooses, and answers only ``GET /<token>``, where the token is 32 random bytes
  (:func:`secrets.token_urlsafe`); any other path is 404, compared in constant time. A
  ``Host`` header other than ``127.0.0.1[:port]`` is refused (403): a web page that
  rebinds a name to 127.0.0.1 cannot read it through a browser. The token is never logged
  or printed; it is in the child's environment, which other users cannot read
  (``/proc/PID/environ`` is readable by the same user and root only).
* **When it re-mints.** On a request, when less than :func:`refresh_margin` of the
  credentials' lifetime remains: AssumeRole again with the same role, session policy,
  session name and duration. One request mints at a time (single-flight): the others wait
  for it and serve its result.
* **When minting fails.** The old credentials are served until they expire (a failed
  attempt is not retried for :data:`RETRY_AFTER` seconds); once they have expired, the
  answer is 503 with ``Code: "CredentialsExpired"``, which the provider reports as an error.
  Each failure is one line on stderr (the error, never a secret).
"""

from __future__ import annotations

import calendar
import hmac
import json
import secrets
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

from permgen.account.types import StsCredentials
from permgen.errors import PermgenError

#: The clock (seconds since the epoch); tests move it.
now: Callable[[], float] = time.time
#: Seconds between attempts to mint again after one failed.
RETRY_AFTER = 10.0
#: The credentials-URI provider treats credentials as stale this long before ``Expiration``
#: (``alibabacloud_credentials/provider/uri.py``, ``_get_stale_time``).
PROVIDER_STALE_WINDOW = 15 * 60
#: Seconds a connection may stay idle before the server drops it.
REQUEST_TIMEOUT = 10.0
#: The address the endpoint binds to.
HOST = "127.0.0.1"
_EXPIRATION_FORMAT = "%Y-%m-%dT%H:%M:%SZ"


def refresh_margin(duration: int) -> int:
    """Seconds before expiry at which the server mints again: ``max(60, duration/10,
    min(PROVIDER_STALE_WINDOW + 60, duration/2))``. For durations of 32 minutes and more,
    fresh credentials have more than the provider's 15-minute window left, so the child
    keeps them instead of asking again at every call; for shorter ones, half the
    lifetime."""
    return max(60, duration // 10, min(PROVIDER_STALE_WINDOW + 60, duration // 2))


def expiry(creds: StsCredentials) -> float:
    """``Expiration`` (UTC, ``%Y-%m-%dT%H:%M:%SZ``) as seconds since the epoch."""
    return float(calendar.timegm(time.strptime(creds.expiration, _EXPIRATION_FORMAT)))


def document(creds: StsCredentials) -> dict[str, str]:
    """The JSON the credentials-URI provider reads."""
    return {
        "Code": "Success",
        "AccessKeyId": creds.access_key_id,
        "AccessKeySecret": creds.access_key_secret.reveal(),
        "SecurityToken": creds.security_token.reveal(),
        "Expiration": time.strftime(_EXPIRATION_FORMAT, time.gmtime(expiry(creds))),
    }


class Refresher:
    """The current credentials, minted again when less than the margin remains
    (single-flight); the old ones while minting fails, until they expire."""

    def __init__(
        self,
        first: StsCredentials,
        mint_again: Callable[[], StsCredentials],
        *,
        duration: int,
        log: Callable[[str], None] = lambda line: None,
    ) -> None:
        self._current = first
        self._mint_again = mint_again
        self.margin = refresh_margin(duration)
        self._log = log
        self._lock = threading.Lock()
        self._next_attempt = 0.0
        #: AssumeRole calls made after the first one, and how many failed.
        self.mints = 0
        self.failures = 0

    def current(self) -> StsCredentials | None:
        """Credentials that have not expired, or None."""
        with self._lock:  # one request mints; the others wait here and see its result
            clock = now()
            creds = self._current
            if expiry(creds) - clock < self.margin and clock >= self._next_attempt:
                self.mints += 1
                try:
                    creds = self._current = self._mint_again()
                except Exception as exc:  # served on the old ones; said on stderr
                    self.failures += 1
                    self._next_attempt = clock + RETRY_AFTER
                    reason = str(exc) if isinstance(exc, PermgenError) else type(exc).__name__
                    self._log(f"permgen: could not renew the credentials: {reason}")
                else:
                    self._log(
                        f"permgen: renewed: {creds.access_key_id}, expires {creds.expiration}"
                    )
            return creds if expiry(creds) > now() else None


class CredentialServer:
    """The loopback endpoint. Binds when created (so :attr:`uri` is known); serves in a
    background thread between ``__enter__`` and ``__exit__``."""

    def __init__(self, refresher: Refresher) -> None:
        self.refresher = refresher
        self._token = secrets.token_urlsafe(32)
        self._httpd = _QuietServer((HOST, 0), _handler_class(self))
        self._httpd.daemon_threads = True
        self.port: int = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def uri(self) -> str:
        """The URL to give the child (it holds the token: never log it)."""
        return f"http://{HOST}:{self.port}/{self._token}"

    @property
    def address(self) -> tuple[str, int]:
        host, port = self._httpd.server_address[:2]
        return str(host), int(port)

    def __repr__(self) -> str:  # never the token
        return f"CredentialServer(port={self.port})"

    def answer(self, path: str, host: str | None) -> tuple[int, dict[str, Any]]:
        """The status and JSON body for ``GET path`` with this ``Host`` header."""
        if not hmac.compare_digest(path.encode(), f"/{self._token}".encode()):
            return 404, {"Code": "NotFound", "Message": "no such path"}
        if host not in (HOST, f"{HOST}:{self.port}"):
            return 403, {"Code": "Forbidden", "Message": f"Host must be {HOST}"}
        creds = self.refresher.current()
        if creds is None:
            message = "the credentials expired and permgen could not renew them"
            return 503, {"Code": "CredentialsExpired", "Message": message}
        return 200, document(creds)

    def __enter__(self) -> CredentialServer:
        # close() waits for the serving loop to look for the shutdown request: a short poll
        # keeps the command's exit (and each test's teardown) prompt
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},
            name="permgen-credentials-uri",
            daemon=True,
        )
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        if self._thread is not None:
            self._httpd.shutdown()
            self._thread.join()
            self._thread = None
        self._httpd.server_close()


class _QuietServer(ThreadingHTTPServer):
    #: connections waiting to be accepted: a child's SDK clients may all refresh at once (the
    #: default of 5 made an eighth client wait out a one-second TCP retry)
    request_queue_size = 128

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # a client that went away: no traceback on the command's stderr


def _handler_class(server: CredentialServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        timeout = REQUEST_TIMEOUT
        server_version = "permgen"
        sys_version = ""

        def do_GET(self) -> None:
            status, body = server.answer(self.path, self.headers.get("Host"))
            self._send(status, body)

        def _refuse(self) -> None:
            self._send(405, {"Code": "MethodNotAllowed", "Message": "only GET"})

        do_POST = do_PUT = do_DELETE = do_PATCH = do_HEAD = do_OPTIONS = _refuse

        def _send(self, status: int, body: dict[str, Any]) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.send_header("Cache-Control", "no-store")
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)

        def log_message(self, format: str, *args: Any) -> None:
            pass  # the request line holds the token: nothing is logged

    return Handler


__all__ = [
    "HOST",
    "PROVIDER_STALE_WINDOW",
    "RETRY_AFTER",
    "CredentialServer",
    "Refresher",
    "document",
    "expiry",
    "refresh_margin",
]
