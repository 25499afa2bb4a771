"""``permgen diff``: the exact semantic difference between two policy sets."""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import click

from permgen.cli._account import account_options, allow_root_option
from permgen.cli._common import (
    batch,
    fail_on_risk_option,
    handle_errors,
    missing_key_option,
    parse_risks,
)
from permgen.errors import ExitCode, UsageError


@click.command("diff")
@click.argument("old", metavar="OLD|SPEC")
@click.argument("new", required=False, metavar="[NEW]")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
)
@click.option(
    "--fail-on-new-access", is_flag=True, help="Exit 3 when NEW allows any request OLD denies."
)
@fail_on_risk_option
@click.option("--role", help="With SPEC and --principal: the role to compare.")
@click.option(
    "--principal",
    help="user:NAME, role:NAME or group:NAME: compare a role with what the principal has in the account.",
)
@missing_key_option
@account_options
@allow_root_option
@handle_errors
@batch
def command(
    old: str,
    new: str | None,
    fmt: str,
    fail_on_new_access: bool,
    fail_on_risk: str,
    role: str | None,
    principal: str | None,
    missing_key: str,
    endpoint: str | None,
    region: str,
    profile: str | None,
    access_key_id: str | None,
    access_key_secret: str | None,
    allow_root: bool,
) -> int:
    """Semantic diff: what NEW allows that OLD denies (new access), and the reverse.

    \b
    permgen diff OLD NEW                       two policy files (or -)
    permgen diff SPEC --role R --principal P   a role against a principal in the account

    Exact over every request (action x resource x condition keys), with an example request
    for each difference, the statement responsible and its risk classes. Against a principal,
    new access is what the role would add and removed access what the principal has today
    beyond the role (its own policies and, for a user, its groups').
    Two bucket policies (statements with a Principal) are diffed per class of callers:
    each principal either names, anyone else, and the bucket owner.
    Exit codes: 0; 3 new access with --fail-on-new-access, or with a risk class of
    --fail-on-risk; 2 bad input; 1 cloud error.
    """
    from permgen.semantics import MissingKey, diff_policies
    from permgen.semantics.render import diff_json, diff_markdown, diff_text

    risks = parse_risks(fail_on_risk)
    if principal is not None or role is not None:
        if new is not None or principal is None or role is None:
            raise UsageError(
                "compare a role with a principal as: permgen diff SPEC --role R --principal user:NAME"
            )
        from permgen.account.sync import principal_policies
        from permgen.account.types import Principal
        from permgen.cli._account import ram_client
        from permgen.spec.compile import compile_file

        try:
            who = Principal.parse(principal)
        except ValueError as exc:
            raise UsageError(f"--principal: {exc}") from None
        role_policy = compile_file(old, roles=[role]).roles[role].policy
        client = ram_client(
            endpoint, region, profile, access_key_id, access_key_secret, allow_root=allow_root
        )
        old_label, new_label = f"{who} today", f"{old}#{role}"
        old_set, new_set = principal_policies(client, who), [role_policy]
    else:
        if new is None:
            raise UsageError("give two policy files: permgen diff OLD NEW")
        from permgen.cli._policies import read_bucket_policy, read_policies

        bucket_sides = read_bucket_policy(old), read_bucket_policy(new)
        if any(side is not None for side in bucket_sides):
            return _bucket_diff(
                old, new, bucket_sides, fmt, fail_on_new_access, risks, MissingKey(missing_key)
            )

        old_label, new_label = old, new
        old_set, new_set = read_policies(old), read_policies(new)
    result = diff_policies(old_set, new_set, missing_key=MissingKey(missing_key))
    if fmt == "json":
        click.echo(json.dumps(diff_json(result, old=old_label, new=new_label), indent=2))
    elif fmt == "markdown":
        click.echo(diff_markdown(result, old=old_label, new=new_label), nl=False)
    else:
        click.echo(diff_text(result, old=old_label, new=new_label), nl=False)
    return _gate(result, fail_on_new_access, risks)


def _bucket_diff(
    old: str,
    new: str,
    sides: tuple[Any, Any],
    fmt: str,
    fail_on_new_access: bool,
    risks: Any,
    missing_key: Any,
) -> int:
    """``diff OLD NEW`` of two bucket policies: per class of callers (docs/commands/diff.md)."""
    from permgen.semantics.bucket_diff import diff_bucket_policies
    from permgen.semantics.render import bucket_diff_text

    if any(side is None for side in sides):
        which = old if sides[0] is None else new
        raise UsageError(
            f"{which} is not a bucket policy (no Principal) but the other file is: diff two "
            "bucket policies, or two identity policies"
        )
    result = diff_bucket_policies(sides[0], sides[1], missing_key=missing_key)
    if fmt == "json":
        click.echo(json.dumps({"old": old, "new": new, **result.to_json()}, indent=2))
    elif fmt == "markdown":
        click.echo("```\n" + bucket_diff_text(result, old=old, new=new) + "```")
    else:
        click.echo(bucket_diff_text(result, old=old, new=new), nl=False)
    return _gate(result, fail_on_new_access, risks)


def _gate(result: Any, fail_on_new_access: bool, risks: Sequence[str]) -> int:
    """The exit code of ``--fail-on-new-access`` and ``--fail-on-risk`` for ``result``."""
    if fail_on_new_access and result.new_access:
        return int(ExitCode.CHECK_FAILED)
    risky = [r for r in result.risks() if r in risks]
    if risky:
        click.echo(
            "permgen: diff check failed: new access with risk "
            + ", ".join(r for r in risks if r in risky),
            err=True,
        )
        return int(ExitCode.CHECK_FAILED)
    return int(ExitCode.OK)
