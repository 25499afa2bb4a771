"""Lint: a catalog of small rules over RAM policies, each with its own metadata.

A rule yields findings lazily, each with the JSON path it is about; an unreadable input and
a rule that breaks are findings too, never a traceback. ``docs/rules.md`` is generated from
the registry (``python -m permgen.tools.gendocs``).
"""

from permgen.lint.core import SEVERITIES, Finding, Rule, severity_at_least
from permgen.lint.engine import LintReport, lint_files, lint_policy
from permgen.lint.rules import RULES, rule_by_id

__all__ = [
    "RULES",
    "SEVERITIES",
    "Finding",
    "LintReport",
    "Rule",
    "lint_files",
    "lint_policy",
    "rule_by_id",
    "severity_at_least",
]
