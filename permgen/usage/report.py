"""``permgen usage`` output: text, JSON, and a Markdown review."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from permgen.usage.rightsize import RoleReport, UsageReport


def _when(t: int) -> str:
    if not t:
        return "never"
    return datetime.fromtimestamp(t, UTC).strftime("%Y-%m-%d %H:%M:%SZ")


def _summary(report: UsageReport) -> dict[str, Any]:
    u = report.usage
    return {
        "lines": u.stats.lines,
        "requests": u.stats.entries,
        "skipped_too_long": u.stats.too_long,
        "skipped_malformed": u.stats.malformed,
        "first_skipped": u.stats.first_bad,
        "unmapped": u.unmapped,
        "failed_requests": u.failed,
        "outside_window": u.outside,
        "unknown_keys": dict(sorted(u.unknown_keys.items())),
        "first_seen": _when(u.first),
        "last_seen": _when(u.last),
        "days": round(u.span_days, 2),
        "min_days": report.min_days,
    }


def _role_json(r: RoleReport) -> dict[str, Any]:
    return {
        "role": r.name,
        "status": r.status,
        "note": r.note,
        "principals": list(r.principals),
        "actions": [
            {"action": t.name, "count": t.count, "last_seen": _when(t.last)} for t in r.actions
        ],
        "prefixes": [
            {"prefix": t.name, "count": t.count, "last_seen": _when(t.last)} for t in r.prefixes
        ],
        "batch_deletes": r.batch_deletes,
        "not_allowed_by_role": r.not_allowed,
        "distinct_used_requests": r.distinct_used,
        "changes": r.changes,
        "removed_access": r.removed,
        "context": r.context,
    }


def render_json(report: UsageReport) -> str:
    return json.dumps(
        {
            "spec": report.spec,
            "summary": _summary(report),
            "roles": [_role_json(r) for r in report.roles],
        },
        indent=2,
    )


def _status_line(r: RoleReport, min_days: float) -> str:
    if r.status == "narrowed":
        return "narrower spec proposed (proven: no new access; every used request still allowed)"
    if r.status == "unused":
        return r.note
    if r.status == "rejected":
        return f"no proposal: {r.note}"
    if r.status == "insufficient":
        return f"no proposal: the logs cover fewer than --min-days {min_days:g} days"
    return "nothing to narrow: every grant was used"


def render_text(report: UsageReport) -> str:
    s = _summary(report)
    out = [
        f"usage of {report.spec}: {s['requests']} requests ({s['lines']} lines) from "
        f"{s['first_seen']} to {s['last_seen']} ({s['days']} days)",
    ]
    skipped = s["skipped_too_long"] + s["skipped_malformed"]
    if skipped:
        out.append(f"  skipped {skipped} lines (first: {s['first_skipped']})")
    if s["unmapped"]:
        out.append(f"  {s['unmapped']} requests not mapped to a RAM action")
    if s["unknown_keys"]:
        out.append(
            f"  AccessKey IDs with no principal (add them to --keys): {', '.join(s['unknown_keys'])}"
        )
    for r in report.roles:
        out.append("")
        out.append(
            f"role {r.name} ({', '.join(r.principals) or 'no principals'}): {_status_line(r, report.min_days)}"
        )
        for t in r.actions:
            mark = f"{t.count} requests, last {_when(t.last)}" if t.count else "UNUSED"
            out.append(f"  {t.name:<28} {mark}")
        for t in r.prefixes:
            mark = f"{t.count} requests, last {_when(t.last)}" if t.count else "UNUSED"
            out.append(f"  {t.name:<28} {mark}")
        if r.batch_deletes:
            out.append(f"  batch deletes (keys not logged): {r.batch_deletes}")
        for c in r.changes:
            out.append(f"  - {c}")
    return "\n".join(out)


def render_markdown(report: UsageReport) -> str:
    s = _summary(report)
    out = [
        f"## permgen usage: {report.spec}",
        "",
        f"{s['requests']} requests from {s['first_seen']} to {s['last_seen']} ({s['days']} days); "
        f"{s['skipped_too_long'] + s['skipped_malformed']} lines skipped, {s['unmapped']} requests unmapped.",
    ]
    for r in report.roles:
        out += ["", f"### `{r.name}`: {_status_line(r, report.min_days)}", ""]
        out += ["| grant | requests | last seen |", "|---|---|---|"]
        for t in r.actions + r.prefixes:
            out.append(f"| `{t.name}` | {t.count or '**unused**'} | {_when(t.last)} |")
        if r.changes:
            out += ["", "Proposed changes:", ""] + [f"- {c}" for c in r.changes]
        if r.removed:
            out += ["", "Access the proposal removes (from the exact diff):", ""]
            out += [f"- {x}" for x in r.removed]
    return "\n".join(out) + "\n"


def render(report: UsageReport, fmt: str) -> str:
    if fmt == "json":
        return render_json(report)
    if fmt == "markdown":
        return render_markdown(report)
    return render_text(report)
