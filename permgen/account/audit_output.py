"""``permgen audit``'s report as text (grouped by bucket, worst first), JSON, Markdown and
SARIF. The self-contained HTML report is :func:`permgen.account.audit_report.html`."""

from __future__ import annotations

import json
from typing import Any

from permgen._internal.sarif import sarif_log
from permgen.account.audit import KINDS, SEVERITY, SEVERITY_RANK, AuditReport, Finding

DOCS_URI = "https://permgen.invalid/docs/commands/audit.md"


def _groups(report: AuditReport) -> list[tuple[str | None, list[Finding]]]:
    """Findings by bucket (account-wide last), the bucket with the worst finding first."""
    by: dict[str | None, list[Finding]] = {}
    for f in report.findings:
        by.setdefault(f.bucket, []).append(f)

    def rank(item: tuple[str | None, list[Finding]]) -> tuple[Any, ...]:
        bucket, fs = item
        worst = min(SEVERITY_RANK[f.severity] for f in fs)
        return (bucket is None, worst, -len(fs), bucket or "")

    return sorted(by.items(), key=rank)


def to_json(report: AuditReport) -> str:
    return to_json_bytes(report).decode()


def to_json_bytes(report: AuditReport) -> bytes:
    """The JSON report, indented by two spaces, as UTF-8: the bytes of ``json.dumps(doc,
    indent=2)`` and a newline. orjson writes them (an account-sized report is hundreds of
    megabytes: the standard library's indenting encoder is pure Python, about 8x slower);
    a report it would write differently (a character outside ASCII, which ``json`` escapes,
    or a string orjson refuses, such as a lone surrogate) is written by ``json``."""
    import orjson

    doc = report.to_json()
    try:
        out = orjson.dumps(doc, option=orjson.OPT_INDENT_2 | orjson.OPT_APPEND_NEWLINE)
    except orjson.JSONEncodeError:
        out = b""
    if out and out.isascii():
        return out
    return (json.dumps(doc, indent=2) + "\n").encode()


def to_text(report: AuditReport) -> str:
    lines = [f"account {report.account}: {len(report.findings)} finding(s)"]
    for bucket, fs in _groups(report):
        lines.append("")
        lines.append(f"bucket {bucket}" if bucket is not None else "account-wide")
        for f in fs:
            lines.append(f"  [{f.severity}] {f.kind}: {f.principal}")
            lines.append(f"    path: {' -> '.join(f.path)}")
            w = f.witness
            ctx = f" with {json.dumps(dict(w.context), sort_keys=True)}" if w.context else ""
            lines.append(f"    witness: {w.action} on {w.resource}{ctx}")
            if f.conditions:
                lines.append(f"    only when: {'; '.join(f.conditions)}")
            lines.append(f"    why: {f.why}")
            lines.append(f"    fix: {f.fix}")
    for note in report.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def _md(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def to_markdown(report: AuditReport) -> str:
    lines = [f"## permgen audit of account {report.account}", ""]
    if not report.findings:
        lines.append("No findings.")
    for bucket, fs in _groups(report):
        lines += [
            "",
            f"### {'bucket `' + bucket + '`' if bucket is not None else 'Account-wide'}",
            "",
        ]
        lines.append("| severity | kind | principal | path | witness | fix |")
        lines.append("|---|---|---|---|---|---|")
        for f in fs:
            lines.append(
                f"| {f.severity} | {f.kind} | `{_md(f.principal)}` | {_md(' → '.join(f.path))} "
                f"| `{_md(f.witness.action)}` on `{_md(f.witness.resource)}` | {_md(f.fix)} |"
            )
    for note in report.notes:
        lines += ["", f"> note: {_md(note)}"]
    return "\n".join(lines) + "\n"


_LEVEL = {"critical": "error", "high": "error", "medium": "warning", "low": "note"}


def to_sarif(report: AuditReport) -> str:
    rules = [
        {
            "id": kind,
            "name": kind,
            "shortDescription": {"text": kind.replace("-", " ")},
            "helpUri": DOCS_URI,
            "defaultConfiguration": {"level": _LEVEL[SEVERITY[kind]]},
        }
        for kind in KINDS
    ]
    results = [
        {
            "ruleId": f.kind,
            "ruleIndex": KINDS.index(f.kind),
            "level": _LEVEL[f.severity],
            "message": {
                "text": f"{f.principal}: {f.why} (path: {' -> '.join(f.path)}). Fix: {f.fix}"
            },
            "locations": [
                {
                    "logicalLocations": [
                        {
                            "fullyQualifiedName": f.witness.resource
                            if f.bucket
                            else f"account/{report.account}",
                            "kind": "resource",
                        }
                    ]
                }
            ],
            "partialFingerprints": {"permgenAudit/v1": f"{f.kind}|{f.principal}|{f.bucket or ''}"},
        }
        for f in report.findings
    ]
    return json.dumps(sarif_log(rules, results, information_uri=DOCS_URI), indent=2) + "\n"


RENDERERS = {"text": to_text, "json": to_json, "markdown": to_markdown, "sarif": to_sarif}

__all__ = ["RENDERERS", "to_json", "to_json_bytes", "to_markdown", "to_sarif", "to_text"]
