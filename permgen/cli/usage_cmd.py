"""``permgen usage``: right-size the roles of a spec from access logs and ActionTrail."""

from __future__ import annotations

from typing import Any

import click

from permgen.cli._common import batch, handle_errors
from permgen.errors import InputError


def _time(value: str | None, option: str) -> int | None:
    if value is None:
        return None
    from permgen.usage.logs import parse_iso_time

    try:
        return parse_iso_time(value if "T" in value else value + "T00:00:00Z")
    except ValueError as exc:
        raise InputError(f"{option}: {exc}") from None


def _keys(path: str | None) -> tuple[dict[str, str], dict[str, list[str]]]:
    """``--keys FILE``: YAML or JSON ``{keys: {KEYID: user:NAME|role:NAME}, groups: {G: [users]}}``."""
    if path is None:
        return {}, {}
    import yaml

    try:
        with open(path, encoding="utf-8") as fh:
            data: Any = yaml.safe_load(fh.read(1 << 20))
    except OSError as exc:
        raise InputError(f"--keys {path}: cannot read: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise InputError(f"--keys {path}: not valid YAML: {str(exc).splitlines()[0]}") from None
    if not isinstance(data, dict):
        raise InputError(f"--keys {path}: expected a mapping with 'keys' (and 'groups')")
    keys = data.get("keys") or {}
    groups = data.get("groups") or {}
    if not isinstance(keys, dict) or not isinstance(groups, dict):
        raise InputError(f"--keys {path}: 'keys' and 'groups' must be mappings")
    for k, v in keys.items():
        if not isinstance(v, str) or not v.startswith(("user:", "role:")):
            raise InputError(f"--keys {path}: keys.{k}: expected 'user:NAME' or 'role:NAME'")
    for g, members in groups.items():
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise InputError(f"--keys {path}: groups.{g}: expected a list of user names")
    return {str(k): v for k, v in keys.items()}, {str(g): m for g, m in groups.items()}


@click.command("usage")
@click.option("--spec", "spec_path", required=True, help="The role spec to right-size.")
@click.option(
    "--logs",
    "logs",
    multiple=True,
    required=True,
    type=click.Path(exists=True, dir_okay=False),
    help="A log file: OSS logging, an SLS oss_access_log export, or ActionTrail events (.gz too). Repeat for more.",
)
@click.option(
    "--keys",
    "keys_path",
    help="YAML/JSON: keys: {KEYID: user:NAME|role:NAME}, groups: {NAME: [users]}.",
)
@click.option("--role", "roles", multiple=True, help="Only this role (repeatable).")
@click.option("--since", help="Only requests at or after this time (ISO 8601 date or time, UTC).")
@click.option("--until", help="Only requests before this time.")
@click.option(
    "--min-days",
    type=click.FloatRange(min=0),
    default=14,
    show_default=True,
    help="Propose nothing unless the logs cover at least this many days.",
)
@click.option(
    "--jobs",
    type=click.IntRange(min=1, max=64),
    default=1,
    show_default=True,
    help="Worker processes.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option("--out", "out", help="Write the proposed spec (YAML) here.")
@handle_errors
@batch
def command(
    spec_path: str,
    logs: tuple[str, ...],
    keys_path: str | None,
    roles: tuple[str, ...],
    since: str | None,
    until: str | None,
    min_days: float,
    jobs: int,
    fmt: str,
    out: str | None,
) -> int:
    """Which grants of each role were used, and a narrower spec proven to be a subset.

    Reads OSS access logs (built-in logging files or SLS exports) and ActionTrail events,
    maps each request to its RAM action, resource and principal, and for each role reports
    every action and prefix with its count and last use. Where some were not used, it
    proposes a narrower role (prefixes narrowed to the folders used, unused options turned
    off) that the exact diff proves allows nothing new, and that still allows every used
    request. Exit 0 (also when something could be narrowed), 2 on bad input.
    """
    from permgen._internal.fileio import atomic_write, check_writable
    from permgen.spec.load import load_spec
    from permgen.usage.report import render
    from permgen.usage.rightsize import Window, collect, proposed_spec_text, rightsize

    spec = load_spec(spec_path)
    if out:
        check_writable(out)
    keys, groups = _keys(keys_path)
    window = Window(_time(since, "--since"), _time(until, "--until"))
    account = next((r.account for r in spec.roles.values()), "*")
    usage = collect(list(logs), keys=keys, account=account, window=window, jobs=jobs)
    report = rightsize(spec, usage, roles=roles or None, groups=groups, min_days=min_days)
    click.echo(render(report, fmt))
    if out:
        atomic_write(out, proposed_spec_text(spec, report, out))
    return 0
