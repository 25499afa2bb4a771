"""``permgen import``: write a spec from the account's custom policies (read-only)."""

from __future__ import annotations

from pathlib import Path

import click

from permgen.cli._account import account_options, allow_root_option, ram_client
from permgen.cli._common import batch, handle_errors
from permgen.errors import ExitCode, InputError, PermgenError


@click.command("import")
@click.option(
    "--out",
    "out",
    required=True,
    type=click.Path(dir_okay=False, path_type=Path),
    help="The spec file to write (atomically).",
)
@click.option("--force", is_flag=True, help="Overwrite --out if it exists.")
@click.option(
    "--raw",
    is_flag=True,
    help="Keep every policy's statements as a raw policy: role (no template matching).",
)
@account_options
@allow_root_option
@handle_errors
@batch
def command(
    out: Path,
    force: bool,
    raw: bool,
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
    allow_root: bool,
) -> int:
    """Read the account's custom policies and write a spec to --out: a template role where
    a built-in template compiles to a proven-equivalent policy, else a raw policy: role;
    attachments as attach: lists; system policies listed in comments. Every role says
    adopt: true, so plan right after import shows no changes. Changes nothing in the
    account.

    Exit codes: 0; 1 cloud error (or the spec would not be equivalent: nothing written);
    2 bad input (--out exists without --force).
    """
    from permgen._internal.fileio import atomic_write
    from permgen.account.importer import import_account, render_spec, summary, verify

    if out.exists() and not force:
        raise InputError(f"{out} exists; give --force to overwrite it")
    client = ram_client(
        endpoint, region, profile, access_key_id, access_key_secret, allow_root=allow_root
    )
    imported = import_account(client, recognise_templates=not raw)
    if not imported.roles:
        raise PermgenError(
            "the account has no custom policy permgen can import; nothing was written"
            + (
                f" ({len(imported.skipped)} skipped: {imported.skipped[0][0]})"
                if imported.skipped
                else ""
            )
        )
    text = render_spec(imported, source=f"account at {endpoint}" if endpoint else "the account")
    problems = verify(imported, text)
    if problems:
        raise PermgenError(
            f"{problems[0]}; nothing was written"
            + (f" ({len(problems)} roles)" if len(problems) > 1 else ""),
        )
    atomic_write(out, text)
    for line in summary(imported):
        click.echo(line, err=True)
    click.echo(f"wrote {out}: {len(imported.roles)} roles", err=True)
    return int(ExitCode.OK)
