"""``permgen explain``: decide one request against policies, and say which statements decided."""

from __future__ import annotations

import json

import click

from permgen.cli._common import batch, handle_errors, missing_key_option
from permgen.errors import ExitCode, UsageError


@click.command("explain")
@click.argument("policies", nargs=-1, required=True, metavar="POLICY...")
@click.option("--action", required=True, help="The action, e.g. oss:GetObject.")
@click.option("--resource", required=True, help="The resource ARN, e.g. acs:oss:*:*:bucket/key.")
@click.option(
    "--context",
    "context",
    multiple=True,
    metavar="KEY=VALUE",
    help="A condition key of the request, e.g. acs:SourceIp=203.0.113.9 (repeatable).",
)
@click.option(
    "--session-policy",
    "session",
    multiple=True,
    metavar="FILE",
    help="Decide as an STS token: this session policy AND the POLICY files.",
)
@click.option(
    "--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True
)
@click.option(
    "--expect",
    type=click.Choice(["allow", "deny"]),
    help="Exit 3 unless the decision is this (deny = explicit or implicit).",
)
@missing_key_option
@handle_errors
@batch
def command(
    policies: tuple[str, ...],
    action: str,
    resource: str,
    context: tuple[str, ...],
    session: tuple[str, ...],
    fmt: str,
    expect: str | None,
    missing_key: str,
) -> int:
    """Decide one request against POLICY files (a principal's attached set).

    Prints allow, explicit_deny or implicit_deny and the statements that decided it.
    Exit codes: 0; 3 when --expect does not hold; 2 bad input.
    """
    from permgen.cli._policies import read_policies
    from permgen.semantics import MissingKey, Request, explain
    from permgen.semantics.render import decision_json, decision_text

    ctx: dict[str, str] = {}
    for pair in context:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--context {pair!r}: expected KEY=VALUE")
        ctx[key] = value
    loaded = [p for src in policies for p in read_policies(src)]
    session_policies = [p for src in session for p in read_policies(src)] if session else None
    request = Request(action, resource, ctx)
    decision = explain(
        loaded, request, session=session_policies, missing_key=MissingKey(missing_key)
    )
    if fmt == "json":
        click.echo(json.dumps(decision_json(decision, request), indent=2))
    else:
        click.echo(decision_text(decision, request), nl=False)
    if expect is not None and (expect == "allow") != decision.allowed:
        click.echo(f"permgen: expected {expect}, got {decision.kind}", err=True)
        return int(ExitCode.CHECK_FAILED)
    return int(ExitCode.OK)
