"""``permgen emulator``: run the local RAM + STS API."""

from __future__ import annotations

import contextlib
import signal
import sys

import click

from permgen.cli._common import handle_errors


@click.command("emulator")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    default=0,
    show_default=True,
    help="Port on 127.0.0.1; 0 picks a free one.",
)
@click.option(
    "--host",
    default="127.0.0.1",
    show_default=True,
    help="Address to listen on (keep it on loopback).",
)
@click.option(
    "--state",
    "state_file",
    type=click.Path(dir_okay=False),
    help="Keep the account in this file: loaded at start, written (atomically, 0600) after every change.",
)
@click.option(
    "--seed",
    "seed_file",
    type=click.Path(dir_okay=False, exists=True),
    help="YAML of users, groups, roles, policies, attachments, access keys and faults to create at start.",
)
@handle_errors
def command(port: int, host: str, state_file: str | None, seed_file: str | None) -> int:
    """Serve one emulated account (1234567890123456) until interrupted.

    At start it prints shell lines to point permgen and the Alibaba SDKs at it:
    export PERMGEN_ENDPOINT=..., PERMGEN_OSS_ENDPOINT=..., ALIBABA_CLOUD_ACCESS_KEY_ID=..., ALIBABA_CLOUD_ACCESS_KEY_SECRET=...
    (an administrator key that exists only in the emulator).
    """
    from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET, Emulator
    from permgen.emulator.files import prepare
    from permgen.errors import InputError

    backend, faults = prepare(state_file, seed_file)
    if state_file:  # written now, so a path that cannot be written fails at start
        import json

        from permgen._internal.fileio import write_secret_file

        write_secret_file(state_file, json.dumps(backend.dump(), indent=1))
    try:
        emulator = Emulator(backend, host=host, port=port, state_file=state_file)
    except OSError as exc:
        raise InputError(f"cannot listen on {host}:{port}: {exc.strerror or exc}") from None
    for f in faults:
        emulator.inject(
            f["action"],
            f.get("code", "ServiceUnavailable"),
            int(f.get("status", 503)),
            times=int(f.get("times", 1)),
            delay=float(f.get("delay", 0)),
            drop=bool(f.get("drop", False)),
        )
    click.echo(f"export PERMGEN_ENDPOINT={emulator.url}")
    click.echo(f"export PERMGEN_OSS_ENDPOINT={emulator.url}")  # OSS REST, path-style
    click.echo(f"export ALIBABA_CLOUD_ACCESS_KEY_ID={ADMIN_KEY_ID}")
    click.echo(f"export ALIBABA_CLOUD_ACCESS_KEY_SECRET={ADMIN_KEY_SECRET}")
    sys.stdout.flush()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()
    return 0
