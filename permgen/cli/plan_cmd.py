"""``permgen plan``: what apply would change in the account (read-only)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click

from permgen.cli._account import (
    account_options,
    allow_root_option,
    bucket_allowances,
    bucket_flag_options,
)
from permgen.cli._common import batch, handle_errors
from permgen.errors import ExitCode, UsageError


def plan_json(planned: object) -> dict[str, object]:
    from permgen.account.sync import Plan

    assert isinstance(planned, Plan)
    return {
        "changes": [a.to_json() for a in planned.actions],
        "refused": list(planned.refused),
        "missing_principals": [m.to_json() for m in planned.missing],
        "in_sync": planned.empty,
        "warnings": list(planned.warnings),
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
    out += [f"! warning: {w}" for w in planned.warnings]
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


NO_CHANGES = "no changes: the account matches the spec"


def show(planned: object, fmt: str, buckets: object = None) -> None:
    """Print the plan; ``buckets``: the plan of the spec's ``buckets:`` (a BucketPlan), if any."""
    from permgen.account.bucket_sync import BucketPlan

    assert buckets is None or isinstance(buckets, BucketPlan)
    if fmt == "json":
        doc = plan_json(planned)
        if buckets is not None:
            doc["buckets"] = buckets.to_json()
            doc["in_sync"] = bool(doc["in_sync"]) and buckets.empty
        click.echo(json.dumps(doc, indent=2))
        return
    lines = plan_lines(planned)
    if buckets is not None and not buckets.empty:
        lines = [line for line in lines if line != NO_CHANGES] + buckets.lines()
    for line in lines:
        click.echo(line)


def plan_all(
    spec: Path,
    allow: dict[str, tuple[str, ...]],
    account: tuple[Any, ...],
    *,
    prune: bool,
    allow_root: bool,
) -> tuple[Any, Any, Any, Any]:
    """(RAM client, RAM plan, OSS client or None, bucket plan or None) for ``spec``."""
    from permgen.account.sync import plan_account
    from permgen.cli._account import oss_client, ram_client
    from permgen.spec.compile import compile_file

    compiled = compile_file(spec)  # bad input is reported before the account is reached
    client = ram_client(*account, allow_root=allow_root)
    planned = plan_account(compiled, client, prune=prune)
    unused = sorted({b for names in allow.values() for b in names} - set(compiled.spec.buckets))
    if unused:
        raise UsageError(f"--allow-...: the spec has no bucket {unused[0]!r}")
    if not compiled.spec.buckets:
        return client, planned, None, None
    from permgen.account.bucket_sync import plan_buckets

    oss = oss_client(*account)
    region = account[1]
    buckets = plan_buckets(compiled, oss, client.user_id, allow=allow, location=f"oss-{region}")
    return client, planned, oss, buckets


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
@bucket_flag_options
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
    **allow: tuple[str, ...],
) -> int:
    """Compare SPEC with the account and show what apply would do. Changes nothing.

    With a buckets: section, also each bucket's protections and policy (through OSS);
    a change that weakens a protection shows as refused unless its --allow-... flag
    names the bucket.

    Exit codes: 0; 4 drift with --detailed-exitcode; 1 cloud error; 2 bad input.
    """
    account = (endpoint, region, profile, access_key_id, access_key_secret)
    _, planned, _, buckets = plan_all(
        spec, bucket_allowances(allow), account, prune=prune, allow_root=allow_root
    )
    show(planned, fmt, buckets)
    in_sync = planned.empty and (buckets is None or buckets.empty)
    return int(ExitCode.DRIFT) if detailed_exitcode and not in_sync else int(ExitCode.OK)
