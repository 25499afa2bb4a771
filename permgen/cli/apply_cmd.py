"""``permgen apply``: create or update policies and attachments in the account."""

from __future__ import annotations

from pathlib import Path

import click

from permgen.cli._account import account_options, ram_client
from permgen.cli._common import batch, handle_errors
from permgen.errors import ExitCode


@click.command("apply")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--prune",
    is_flag=True,
    help="Also detach permgen-managed policies from principals the spec no longer lists.",
)
@account_options
@handle_errors
@batch
def command(
    spec: Path,
    yes: bool,
    prune: bool,
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
) -> int:
    """Make the account match SPEC: shows the plan, asks, then carries it out in a safe order
    (policies first, then attachments, detachments last). Safe to run again after a failure.

    Exit codes: 0; 1 cloud error (what was done before it is said); 2 bad input.
    """
    from permgen.cli.plan_cmd import compute, show
    from permgen.errors import CloudError
    from permgen.sync import Plan, apply

    client = ram_client(endpoint, region, profile, access_key_id, access_key_secret)
    planned = compute(spec, prune, client)
    assert isinstance(planned, Plan)
    show(planned, "text")
    if planned.empty:
        return int(ExitCode.OK)
    if not yes and not click.confirm("apply these changes?", default=False):
        click.echo("nothing changed", err=True)
        return int(ExitCode.OK)
    try:
        done = apply(client, planned)
    except CloudError:
        click.echo(
            "permgen: stopped by an error; the changes before it were made, run apply again to finish",
            err=True,
        )
        raise
    click.echo(f"applied {len(done)} change(s)")
    return int(ExitCode.OK)
