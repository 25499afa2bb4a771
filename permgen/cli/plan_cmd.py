"""``permgen plan``: what apply would change in the account (read-only)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from permgen.cli._account import account_options, ram_client
from permgen.cli._common import batch, handle_errors
from permgen.errors import ExitCode


def compute(spec: Path, prune: bool, client: object) -> object:
    from permgen.compiler import compile_file
    from permgen.sync import desired_state, plan, read_current

    desired = desired_state(compile_file(spec))
    current = read_current(client, [d.name for d in desired])  # type: ignore[arg-type]
    return plan(desired, current, prune=prune)


def show(planned: object, fmt: str) -> None:
    from permgen.sync import Plan

    assert isinstance(planned, Plan)
    if fmt == "json":
        click.echo(
            json.dumps(
                {
                    "changes": [a.to_json() for a in planned.actions],
                    "refused": list(planned.refused),
                },
                indent=2,
            )
        )
        return
    for name in planned.refused:
        click.echo(f"! policy {name} exists but was not created by permgen; it is left alone")
    if planned.empty:
        click.echo("no changes: the account matches the spec")
    for a in planned.actions:
        click.echo(a.describe())


@click.command("plan")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--prune",
    is_flag=True,
    help="Also plan detaching permgen-managed policies from principals the spec no longer lists.",
)
@click.option(
    "--detailed-exitcode", is_flag=True, help="Exit 4 when there are changes (drift), 0 when none."
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@account_options
@handle_errors
@batch
def command(
    spec: Path,
    prune: bool,
    detailed_exitcode: bool,
    fmt: str,
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
) -> int:
    """Compare SPEC with the account and show what apply would do. Changes nothing.

    Exit codes: 0; 4 drift with --detailed-exitcode; 1 cloud error; 2 bad input.
    """
    planned = compute(
        spec, prune, ram_client(endpoint, region, profile, access_key_id, access_key_secret)
    )
    show(planned, fmt)
    from permgen.sync import Plan

    assert isinstance(planned, Plan)
    return int(ExitCode.DRIFT) if detailed_exitcode and not planned.empty else int(ExitCode.OK)
