"""Lint output: text for people, JSON for programs, SARIF 2.1.0 for code-scanning tools."""

from __future__ import annotations

import json
from typing import Any

from permgen._internal.sarif import sarif_log
from permgen.lint.core import Finding
from permgen.lint.engine import LintReport

_SARIF_LEVEL = {"error": "error", "warning": "warning", "info": "note"}
INFORMATION_URI = "https://permgen.invalid/docs/rules.md"


def _where(f: Finding) -> str:
    where = f.source
    if f.line is not None:
        where += f":{f.line}"
    if f.path:
        where += f": {f.path}"
    return where


def to_text(report: LintReport) -> str:
    lines = [f"{_where(f)}: {f.severity} {f.rule_id}: {f.message}" for f in report.findings]
    c = report.counts()
    lines.append(
        f"{report.inputs} input(s): {c['error']} error(s), {c['warning']} warning(s), {c['info']} info"
    )
    return "\n".join(lines) + "\n"


def to_json(report: LintReport) -> dict[str, Any]:
    """The stable JSON form (documented in docs/commands/lint.md)."""
    return {
        "version": 1,
        "findings": [f.to_json() for f in report.findings],
        "summary": {
            **report.counts(),
            "inputs": report.inputs,
            "unreadable": list(report.unreadable),
        },
    }


def _source_uri(source: str) -> str:
    return source.split("#", 1)[0]


def to_sarif(report: LintReport) -> dict[str, Any]:
    from permgen.lint.rules import RULES

    index = {r.id: i for i, r in enumerate(RULES)}
    rules = [
        {
            "id": r.id,
            "name": r.name,
            "shortDescription": {"text": r.summary},
            "fullDescription": {"text": r.description},
            "helpUri": r.reference if r.reference.startswith("http") else INFORMATION_URI,
            "defaultConfiguration": {"level": _SARIF_LEVEL[r.severity]},
        }
        for r in RULES
    ]
    results = []
    for f in report.findings:
        location: dict[str, Any] = {
            "physicalLocation": {"artifactLocation": {"uri": _source_uri(f.source)}}
        }
        if f.line is not None:
            location["physicalLocation"]["region"] = {"startLine": f.line}
        logical = f.source.split("#", 1)[1] + "." + f.path if "#" in f.source else f.path
        if logical:
            location["logicalLocations"] = [{"fullyQualifiedName": logical.rstrip(".")}]
        results.append(
            {
                "ruleId": f.rule_id,
                "ruleIndex": index[f.rule_id],
                "level": _SARIF_LEVEL[f.severity],
                "message": {"text": f.message},
                "locations": [location],
                "partialFingerprints": {"permgenFinding/v1": f.id},
            }
        )
    return sarif_log(rules, results, information_uri=INFORMATION_URI)


def render(report: LintReport, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(to_json(report), indent=2) + "\n"
    if fmt == "sarif":
        return json.dumps(to_sarif(report), indent=2) + "\n"
    return to_text(report)


__all__ = ["render", "to_json", "to_sarif", "to_text"]
