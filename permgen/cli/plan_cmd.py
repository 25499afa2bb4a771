"""``permgen plan``: what apply would change in the account (read-only)."""

from __future__ import annotations

import json
from pathlib import Path

import click

from permgen.cli._account import account_options, allow_root_option, ram_client
from permgen.cli._common import batch, handle_errors
from permgen.errors import ExitCode


def plan_json(planned: object) -> dict[str, object]:
    from permgen.account.sync import Plan

    assert isinstance(planned, Plan)
    return {
        "changes": [a.to_json() for a in planned.actions],
        "refused": list(planned.refused),
        "missing_principals": [m.to_json() for m in planned.missing],
        "in_sync": planned.empty,
    }


def plan_lines(planned: object) -> list[str]:
    """The plan as text: conflicts and missing principals first, then one line per change
    (with, for a new policy version, what it adds and removes)."""
    from permgen.account.sync import Plan
    from permgen.review.report import item_line

    assert isinstance(planned, Plan)
    out = []
    for name in planned.refused:
        out.append(
            f"! conflict: policy {name} exists but was not created by permgen "
            "(no [permgen] marker); it is left alone and apply refuses to run"
        )
    for m in planned.missing:
        out.append(
            f"! {m.principal} does not exist in the account (attach: of role "
            f"{', '.join(m.roles)}); apply refuses to run"
        )
    if planned.empty:
        out.append("no changes: the account matches the spec")
    for a in planned.actions:
        out.append(a.describe())
        if a.kind != "update-policy":
            continue
        if a.diff is None:
            out.append("    the account's default version does not parse; it is replaced")
            continue
        if a.diff.removed_access:
            out.append(
                f"    the account's version allows {len(a.diff.removed_access)} region(s) the "
                "spec does not (widened outside permgen?); apply removes:"
            )
        out += [f"      - {item_line(i)}" for i in a.diff.removed_access]
        if a.diff.new_access:
            out.append("    apply grants:")
        out += [f"      + {item_line(i)}" for i in a.diff.new_access]
    return out


def show(planned: object, fmt: str) -> None:
    if fmt == "json":
        click.echo(json.dumps(plan_json(planned), indent=2))
        return
    for line in plan_lines(planned):
        click.echo(line)


@click.command("plan")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option(
    "--prune",
    is_flag=True,
    help="Also plan detaching permgen-managed policies from principals the spec no longer "
    "lists, and detaching and deleting those whose role left the spec.",
)
@click.option(
    "--detailed-exitcode",
    is_flag=True,
    help="Exit 4 when the account differs from the spec (changes, a conflict or a missing "
    "principal), 0 when it matches.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@account_options
@allow_root_option
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
    allow_root: bool,
) -> int:
    """Compare SPEC with the account and show what apply would do. Changes nothing.

    Exit codes: 0; 4 drift with --detailed-exitcode; 1 cloud error; 2 bad input.
    """
    from permgen.account.sync import plan_account
    from permgen.spec.compile import compile_file

    compiled = compile_file(spec)  # bad input is reported before the account is reached
    client = ram_client(
        endpoint, region, profile, access_key_id, access_key_secret, allow_root=allow_root
    )
    planned = plan_account(compiled, client, prune=prune)
    show(planned, fmt)
    return int(ExitCode.DRIFT) if detailed_exitcode and not planned.empty else int(ExitCode.OK)
