"""Regenerate the generated documentation (``make docs``).

Each entry of :data:`GENERATED` is (path relative to the repository, function returning the
text). Tests fail while a committed file differs from what its function returns.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def rules_markdown() -> str:
    from permgen.lint.rules import RULES

    out = [
        "# Lint rules",
        "",
        "Generated from the rule registry (`permgen/lint/rules/`) by `make docs`; do not edit.",
        "",
        "`permgen lint` exits 3 when a finding is at or above `--fail-on` (default `error`).",
        "Ids are stable and never reused: PG0xx input problems, PG1xx policy rules, PG2xx semantic rules.",
        "",
        "| id | name | severity | summary |",
        "|---|---|---|---|",
    ]
    for r in RULES:
        out.append(f"| [{r.id}](#{r.id.lower()}) | {r.name} | {r.severity} | {r.summary} |")
    for r in RULES:
        out += [
            "",
            f"## {r.id}",
            "",
            f"**{r.name}**, {r.severity}. {r.summary}",
            "",
            r.description,
            "",
        ]
        if r.example:
            out += ["Example that it flags:", "", "```json", r.example, "```", ""]
        if r.passes:
            out += ["Example that it does not flag:", "", "```json", r.passes, "```", ""]
        out.append(f"Reference: {r.reference}")
    return "\n".join(out) + "\n"


def actions_markdown() -> str:
    from permgen.policy import catalog

    rows = sorted(catalog.actions().values(), key=lambda i: (i.service, i.level, i.name))
    out = [
        "# Action catalog",
        "",
        "Generated from `permgen/policy/catalog/actions.json` by `make docs`; do not edit.",
        "",
        "Every OSS action of the RAM authorization map, with the RAM and STS actions that matter",
        "for risk classes. Level: the resource an action is authorized against (service: ",
        "`acs:oss:*:<account>:*`; bucket: `acs:oss:*:<account>:<bucket>`; object:",
        "`acs:oss:*:<account>:<bucket>/<key>`; account: RAM and STS). Risk `bucket-wide-read`",
        "marks a data read (object contents or key listings): the diff reports it only when the",
        "read covers a whole bucket. A risk counts only when the statement's resources can name",
        "the action's level ([semantics.md](semantics.md#risk-classes)).",
        "",
        "| action | level | access | risk | source |",
        "|---|---|---|---|---|",
    ]
    for i in rows:
        out.append(
            f"| `{i.name}` | {i.level} | {i.access} | {', '.join(i.risk) or '-'} | {i.source.split(':')[0]} |"
        )
    return "\n".join(out) + "\n"


def cli_markdown() -> str:
    from permgen.tools.clidocs import cli_markdown as make

    return make()


def emulator_markdown() -> str:
    """docs/emulator.md with its coverage table (from the handlers' docstrings) at the end."""
    from permgen.emulator import coverage_markdown

    text = (ROOT / "docs" / "emulator.md").read_text("utf-8")
    head = text[: text.index("| API | action | reproduces |")]
    return head + coverage_markdown()


GENERATED: list[tuple[str, Callable[[], str]]] = [
    ("docs/rules.md", rules_markdown),
    ("docs/actions.md", actions_markdown),
    ("docs/cli.md", cli_markdown),
    ("docs/emulator.md", emulator_markdown),
]


def main() -> int:
    for path, make in GENERATED:
        (ROOT / path).write_text(make(), "utf-8")
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
