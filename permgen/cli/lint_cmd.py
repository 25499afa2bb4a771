"""``permgen lint``: findings for policy files and role specs."""

from __future__ import annotations

import sys

import click

from permgen.cli._common import batch, handle_errors, jobs_option
from permgen.errors import ExitCode


@click.command("lint")
@click.argument("inputs", nargs=-1, required=True, metavar="POLICY_OR_SPEC...")
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "sarif"]),
    default="text",
    show_default=True,
    help="text for people, json for programs, sarif for code scanning.",
)
@click.option(
    "--fail-on",
    type=click.Choice(["error", "warning"]),
    default="error",
    show_default=True,
    help="Exit 3 when a finding is at or above this severity.",
)
@click.option(
    "--session",
    is_flag=True,
    help="The JSON policies are STS session policies (2,048-byte limit instead of 6,144).",
)
@jobs_option("large runs (200 inputs or more)")
@handle_errors
@batch
def command(inputs: tuple[str, ...], fmt: str, fail_on: str, session: bool, jobs: int) -> int:
    """Lint RAM policy JSON files and role specs (.yaml/.yml; each role's compiled policy).

    \b
    Use - to read one policy from standard input.
    Exit codes: 0 no finding at the threshold; 3 findings at or above --fail-on;
    2 an input could not be read or parsed at all.
    Rules: docs/rules.md.
    """
    from permgen._internal.parallel import default_jobs
    from permgen.lint.engine import LintReport, lint_files, lint_policy, unreadable
    from permgen.lint.report import render

    paths = [p for p in inputs if p != "-"]
    jobs = jobs or default_jobs()
    report = lint_files(paths, session=session, jobs=jobs) if paths else LintReport()
    if "-" in inputs:
        from permgen.policy.model import POLICY_LIMIT, SESSION_POLICY_LIMIT

        limit = SESSION_POLICY_LIMIT if session else POLICY_LIMIT
        report.inputs += 1
        findings = list(
            lint_policy(
                sys.stdin.buffer.read(), source="<stdin>", size_limit=limit, session=session
            )
        )
        if unreadable(findings):  # the same reading as for files
            report.unreadable.append("<stdin>")
        report.findings.extend(findings)
    click.echo(render(report, fmt), nl=False)
    if report.unreadable:
        return int(ExitCode.BAD_INPUT)
    if report.failed(fail_on):
        return int(ExitCode.CHECK_FAILED)
    return int(ExitCode.OK)
