"""``permgen audit``: who can destroy which data for good (read-only)."""

from __future__ import annotations

import importlib
from pathlib import Path

import click

from permgen.cli._account import account_options, allow_root_option
from permgen.cli._common import batch_uncollected, handle_errors, jobs_option
from permgen.errors import ExitCode, PermgenError, UsageError

FORMATS = ["text", "json", "markdown", "sarif", "html"]


@click.command("audit")
@click.option(
    "--snapshot",
    "snapshot_file",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Audit this snapshot file instead of reading the account (offline, reproducible).",
)
@click.option(
    "--save-snapshot",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write what was read from the account to this file (JSON; no secrets).",
)
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="text", show_default=True)
@click.option(
    "--fail-on",
    default="",
    metavar="KIND,...",
    help="Exit 3 when a finding of one of these kinds is reported (docs/commands/audit.md).",
)
@jobs_option("large accounts (each decides a share of the buckets)")
@click.option(
    "--oss-endpoint",
    envvar="PERMGEN_OSS_ENDPOINT",
    help="An emulator's OSS URL (env PERMGEN_OSS_ENDPOINT); default: the real cloud.",
)
@account_options
@allow_root_option
@handle_errors
@batch_uncollected
def command(
    snapshot_file: Path | None,
    save_snapshot: Path | None,
    fmt: str,
    fail_on: str,
    jobs: int,
    oss_endpoint: str | None,
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
    allow_root: bool,
) -> int:
    """Report who can destroy which data for good: delete or overwrite objects that nothing
    keeps a copy of, purge versions, remove protections, escalate to those, or reach buckets
    from outside the account. Reads the account (RAM and every bucket) or a --snapshot.
    Changes nothing.

    Exit codes: 0; 3 a finding of a --fail-on kind; 1 cloud error; 2 bad input (a bad
    snapshot, root credentials without --allow-root-credentials).
    """
    from permgen.account import audit as engine
    from permgen.account.audit_output import RENDERERS, to_json_bytes

    kinds = engine.fail_kinds(fail_on)
    if snapshot_file is not None:
        if save_snapshot is not None:
            raise UsageError("--save-snapshot reads the account; it cannot go with --snapshot")
        snapshot = engine.load_snapshot(str(snapshot_file))
    else:
        from permgen.account.oss_sdk import SdkOssClient
        from permgen.account.sdk import SdkRamClient
        from permgen.account.types import ClientConfig
        from permgen.cli._account import account_caller

        caller, config, identity = account_caller(
            endpoint, region, profile, access_key_id, access_key_secret, allow_root=allow_root
        )
        oss_config = ClientConfig(endpoint=oss_endpoint or endpoint, region=region)
        snapshot = engine.read_snapshot(
            SdkRamClient(caller, config), SdkOssClient(caller, oss_config), identity.account_id
        )
        if save_snapshot is not None:
            engine.save_snapshot(snapshot, str(save_snapshot))
    from permgen._internal.parallel import default_jobs

    report = engine.audit(snapshot, jobs=jobs or default_jobs())
    if fmt == "html":
        click.echo(_html(report), nl=False)
    elif fmt == "json":
        click.echo(to_json_bytes(report), nl=False)  # bytes: no second copy as text
    else:
        click.echo(RENDERERS[fmt](report), nl=False)
    failed = sorted(report.kinds() & kinds)
    if failed:
        click.echo(f"permgen: audit check failed: findings of kind {', '.join(failed)}", err=True)
        return int(ExitCode.CHECK_FAILED)
    return int(ExitCode.OK)


def _html(report: object) -> str:
    """The self-contained HTML report: ``permgen.account.audit_report.html(report)``."""
    name = "permgen.account.audit_report"
    try:
        module = importlib.import_module(name)
    except ModuleNotFoundError as exc:
        if exc.name != name:
            raise
        raise PermgenError(f"--format html: this build has no HTML report ({name})") from None
    text: str = module.html(report)
    return text
