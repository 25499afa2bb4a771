"""``permgen apply``: create or update policies and attachments in the account."""

from __future__ import annotations

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
from permgen.errors import ExitCode


@click.command("apply")
@click.argument("spec", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.option(
    "--prune",
    is_flag=True,
    help="Also detach permgen-managed policies from principals the spec no longer lists, and "
    "detach and delete those whose role left the spec.",
)
@account_options
@bucket_flag_options
@allow_root_option
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
    allow_root: bool,
    **allow: tuple[str, ...],
) -> int:
    """Make the account match SPEC: shows the plan, asks, then carries it out in a safe order
    (policies first, then attachments, detachments and deletions last). Safe to run again
    after a failure.

    Refuses before its first write when a principal the spec names does not exist or a
    policy of a role's name is not permgen's.

    With a buckets: section, also syncs each bucket's protections and policy, after the
    RAM changes. It never suspends versioning, aborts a retention policy, removes a
    replication or overwrite-protection rule or deletes a bucket policy unless the
    matching --allow-... flag names that bucket: without it, it refuses before any write.

    Exit codes: 0; 1 cloud error (what was done before it and what is left are said); 2 bad
    input, a missing principal or a conflict.
    """
    from permgen.account.bucket_sync import apply_buckets
    from permgen.account.sync import Change, apply
    from permgen.cli.plan_cmd import plan_all, show
    from permgen.errors import PermgenError

    account = (endpoint, region, profile, access_key_id, access_key_secret)
    client, planned, oss, buckets = plan_all(
        spec, bucket_allowances(allow), account, prune=prune, allow_root=allow_root
    )
    show(planned, "text", buckets)
    if planned.empty and (buckets is None or buckets.empty):
        return int(ExitCode.OK)
    if planned.blocked:
        apply(client, planned)  # raises the refusal (InputError) before any write
    if buckets is not None and buckets.blocked:
        apply_buckets(oss, buckets)  # raises the refusal (InputError) before any write
    if not yes and not click.confirm("apply these changes?", default=False):
        click.echo("nothing changed", err=True)
        return int(ExitCode.OK)
    done: list[Change] = []
    try:
        apply(client, planned, done)
    except PermgenError:
        left = planned.actions[len(done) :]
        click.echo(
            f"permgen: stopped by an error after {len(done)} of {len(planned.actions)} change(s); "
            "run apply again to finish",
            err=True,
        )
        for a in done:
            click.echo(f"  done: {a.describe()}", err=True)
        for a in left:
            click.echo(f"  left: {a.describe()}", err=True)
        raise
    bucket_done: list[Any] = []
    if buckets is not None:
        try:
            apply_buckets(oss, buckets, bucket_done)
        except PermgenError:
            left = buckets.changes[len(bucket_done) :]
            click.echo(
                f"permgen: stopped by an error after {len(done)} policy change(s) and "
                f"{len(bucket_done)} of {len(buckets.changes)} bucket change(s); run apply "
                "again to finish",
                err=True,
            )
            for c in left:
                click.echo(f"  left: {c.describe()}", err=True)
            raise
    click.echo(f"applied {len(done) + len(bucket_done)} change(s)")
    return int(ExitCode.OK)
