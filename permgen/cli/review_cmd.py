"""``permgen review``: what a change to a spec does to permissions, role by role."""

from __future__ import annotations

import sys

import click

from permgen.cli._common import batch, fail_on_risk_option, handle_errors, parse_risks
from permgen.errors import ExitCode


@click.command("review")
@click.argument("spec", type=click.Path(dir_okay=False))
@click.option(
    "--base",
    metavar="REV",
    help="Git revision to compare with (default: the merge base with the default branch).",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown", "sarif"]),
    default="text",
    show_default=True,
)
@click.option("--fail-on-new-access", is_flag=True, help="Exit 3 when any role gains access.")
@fail_on_risk_option
@click.option(
    "--sarif-min-level",
    type=click.Choice(["note", "warning", "error"]),
    default="note",
    show_default=True,
    help="With --format sarif: leave out results below this level.",
)
@handle_errors
@batch
def command(
    spec: str,
    base: str | None,
    fmt: str,
    fail_on_new_access: bool,
    fail_on_risk: str,
    sarif_min_level: str,
) -> int:
    """Compile every role of SPEC at a git revision and in the working tree, and show the
    semantic diff of each changed role: new and removed access, with example requests and
    risk classes. Roles with placeholders are compared by their ceilings.

    Exit codes: 0; 3 a gate failed; 2 the spec does not compile at either revision (the
    message says which), or a bad revision.
    """
    from permgen.review.report import render
    from permgen.review.review import gate, review

    risks = parse_risks(fail_on_risk)
    result = review(spec, base=base)
    color = fmt == "text" and sys.stdout.isatty()
    click.echo(render(result, fmt, color=color, min_level=sarif_min_level), nl=False)
    reasons = gate(result, fail_on_new_access=fail_on_new_access, fail_on_risk=risks)
    if reasons:
        click.echo(f"permgen: review gate failed: {'; '.join(reasons)}", err=True)
        return int(ExitCode.CHECK_FAILED)
    return int(ExitCode.OK)
