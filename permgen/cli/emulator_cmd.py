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
@handle_errors
def command(port: int, host: str) -> int:
    """Serve one emulated account (1234567890123456) until interrupted.

    At start it prints shell lines to point permgen and the Alibaba SDKs at it:
    export PERMGEN_ENDPOINT=..., ALIBABA_CLOUD_ACCESS_KEY_ID=..., ALIBABA_CLOUD_ACCESS_KEY_SECRET=...
    (an administrator key that exists only in the emulator).
    """
    from permgen.emulator import ADMIN_KEY_ID, ADMIN_KEY_SECRET, Emulator

    emulator = Emulator(host=host, port=port)
    click.echo(f"export PERMGEN_ENDPOINT={emulator.url}")
    click.echo(f"export ALIBABA_CLOUD_ACCESS_KEY_ID={ADMIN_KEY_ID}")
    click.echo(f"export ALIBABA_CLOUD_ACCESS_KEY_SECRET={ADMIN_KEY_SECRET}")
    sys.stdout.flush()

    def stop(signum: int, frame: object) -> None:
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, stop)
    with contextlib.suppress(KeyboardInterrupt):
        emulator.serve_forever()
    return 0
