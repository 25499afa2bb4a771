"""``permgen serve``: the token-vending HTTP service."""

from __future__ import annotations

import signal
import socket
import sys
from pathlib import Path
from typing import Any

import click

from permgen.cli._account import account_options
from permgen.cli._common import handle_errors
from permgen.errors import UsageError


@click.command("serve")
@click.option(
    "--spec", "spec_path", type=click.Path(dir_okay=False, path_type=Path), help="The role spec."
)
@click.option(
    "--callers",
    "callers_path",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The callers file (YAML): ids, key hashes, role bindings.",
)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True)
@click.option(
    "--audit-log",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Append JSON-lines audit records here (default: stderr).",
)
@click.option(
    "--new-key",
    is_flag=True,
    help="Print a new API key and its SHA-256 for the callers file, and exit.",
)
@click.option(
    "--check",
    is_flag=True,
    help="Check the spec and the callers file, print a summary and exit (serves nothing).",
)
@click.option(
    "--redis",
    "redis_url",
    metavar="URL",
    help="Share the token cache, single flight, rate limits and the AssumeRole budget with "
    "the other instances on this Redis (redis://HOST:PORT/DB). Needs a cache key.",
)
@click.option(
    "--cache-key-file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="AES-256 keys for the cached credentials in Redis, base64, one a line, current "
    "first (default: $PERMGEN_CACHE_KEY, comma-separated).",
)
@click.option(
    "--instance-id",
    metavar="ID",
    help="This instance's name in audit records and metrics (default: hostname:pid).",
)
@click.option(
    "--assume-role-budget",
    type=click.IntRange(1, 100_000),
    default=80,
    show_default=True,
    help="With --redis: AssumeRole calls per second across the fleet (STS allows 100 per account).",
)
@click.option(
    "--local-budget",
    type=click.IntRange(1, 100_000),
    default=20,
    show_default=True,
    help="With --redis: AssumeRole calls per second this instance makes while Redis is "
    "unreachable.",
)
@click.option(
    "--redis-timeout",
    type=click.FloatRange(0.01, 5.0),
    default=0.25,
    show_default=True,
    help="Seconds a Redis call may take before the instance serves locally.",
)
@account_options
@handle_errors
def command(
    spec_path: Path | None,
    callers_path: Path | None,
    host: str,
    port: int,
    audit_log: Path | None,
    new_key: bool,
    check: bool,
    redis_url: str | None,
    cache_key_file: Path | None,
    instance_id: str | None,
    assume_role_budget: int,
    local_budget: int,
    redis_timeout: float,
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
) -> int:
    """Serve short-lived STS credentials over HTTP to authenticated callers.

    \b
    POST /v1/tokens      {"role": ..., "vars": {...}, "duration": ...}
    GET  /v1/sts/ROLE    the shape OSS mobile SDKs' auth-server providers read
    GET  /healthz, GET /metrics (Prometheus)
    See docs/token-service.md.
    """
    if new_key:
        from permgen.sts.service import new_key as make

        key, digest = make()
        click.echo(f"key: {key}\nkey_sha256: {digest}")
        return 0
    if spec_path is None or callers_path is None:
        raise UsageError("permgen serve needs --spec and --callers (or --new-key)")
    from permgen.spec.load import load_spec
    from permgen.sts.service import load_callers_and_issuers

    if redis_url is not None and not redis_url.startswith(("redis://", "rediss://")):
        raise UsageError("--redis: expected a redis:// or rediss:// URL")
    if redis_url is not None:
        from permgen.sts.fleet import Keyring

        keyring = Keyring.load(cache_key_file)  # bad keys fail before anything is served
    spec = load_spec(spec_path)
    callers, issuers = load_callers_and_issuers(callers_path, spec)
    if check:
        bindings = sum(len(c.bindings) for c in callers)
        click.echo(f"{callers_path}: {len(callers)} caller(s), {bindings} role binding(s): ok")
        return 0
    from permgen.account.credentials import resolve
    from permgen.account.sdk import SdkStsClient
    from permgen.account.types import ClientConfig
    from permgen.errors import InputError
    from permgen.sts.service import TokenService, create_app

    sts = SdkStsClient(
        resolve(access_key_id=access_key_id, access_key_secret=access_key_secret, profile=profile),
        ClientConfig(endpoint=endpoint, region=region),
    )
    try:
        audit = audit_log.open("a", encoding="utf-8") if audit_log else sys.stderr
    except OSError as exc:
        raise InputError(f"--audit-log {audit_log}: cannot open: {exc.strerror}") from None
    sock = _bind(host, port)
    from permgen.sts.fleet import LocalState, RedisState, TokenState, default_instance_id

    instance = instance_id or default_instance_id()
    state: TokenState | None = None
    if redis_url is not None:
        state = RedisState(
            redis_url,
            keyring,
            instance,
            local=LocalState(budget=local_budget),
            budget=assume_role_budget,
            timeout=redis_timeout,
        )
    app = create_app(
        TokenService(
            spec, callers, sts, audit=audit, issuers=issuers, state=state, instance=instance
        )
    )
    # uvicorn shuts down gracefully on SIGTERM, then raises the signal again; a handler that
    # does nothing turns that into a clean exit 0
    signal.signal(signal.SIGTERM, lambda signum, frame: None)
    _serve(app, sock)
    return 0


def _bind(host: str, port: int) -> socket.socket:
    """The listening socket, bound before the server starts so that a port in use or a
    host that is not an address of this machine is one line and exit 1."""
    from permgen.errors import PermgenError

    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except OSError as exc:
        raise PermgenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    family, kind, proto, _, address = infos[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(2048)
    except OSError as exc:
        sock.close()
        raise PermgenError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    sock.set_inheritable(True)
    return sock


def _serve(app: Any, sock: socket.socket) -> None:
    """Run uvicorn on ``sock``; print the listening line once it accepts connections."""
    import uvicorn

    from permgen.sts.service import SERVER_LIMITS

    class Server(uvicorn.Server):
        async def startup(self, sockets: list[socket.socket] | None = None) -> None:
            await super().startup(sockets=sockets)
            if self.started:
                host, port = sock.getsockname()[:2]
                shown = f"[{host}]" if ":" in host else host
                click.echo(f"permgen serve: listening on http://{shown}:{port}")
                sys.stdout.flush()

    config = uvicorn.Config(
        app,
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=10,
        **SERVER_LIMITS,
    )
    Server(config).run(sockets=[sock])
