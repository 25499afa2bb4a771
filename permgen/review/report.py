"""Review output: text (coloured on a terminal), JSON, Markdown for pull requests, SARIF."""

from __future__ import annotations

import json
from typing import Any

from permgen._internal.sarif import sarif_log
from permgen.review.review import GATE_RISKS, PrincipalChange, Review, RoleChange
from permgen.semantics.diff import AccessItem, DiffResult
from permgen.semantics.render import context_text, items_markdown, region_text

REVIEW_SCHEMA_VERSION = 1
SEVERE = ("destructive", "exposure", "permissions-management", "condition-removed")


def _counts(review: Review) -> dict[str, Any]:
    risks = {r: 0 for r in GATE_RISKS}
    for c in review.changes:
        for item in c.new_access:
            for r in item.risk:
                risks[r] += 1
    principal_risks = {r: 0 for r in GATE_RISKS}
    for p in review.gains():
        for r in p.risk:
            principal_risks[r] += 1
    return {
        **review.counts(),
        "new_access": sum(len(c.new_access) for c in review.changes),
        "removed_access": sum(len(c.removed_access) for c in review.changes),
        "risks": {r: n for r, n in risks.items() if n},
        "principals_gaining": len(review.gains()),
        "principals_losing": len(review.losses()),
        "principal_risks": {r: n for r, n in principal_risks.items() if n},
    }


def _principal_json(p: PrincipalChange) -> dict[str, Any]:
    return {
        "principal": p.principal,
        "role": p.role,
        "change": p.kind,
        "line": p.line,
        "risk": list(p.risk),
        "access": [i.to_json() for i in p.access],
    }


def _role_principals(review: Review, role: str, kind: str) -> list[str]:
    return [p.principal for p in review.principals if p.role == role and p.kind == kind]


def review_json(review: Review) -> dict[str, Any]:
    return {
        "version": REVIEW_SCHEMA_VERSION,
        "spec": review.spec,
        "base": review.base,
        "base_commit": review.base_commit,
        "summary": _counts(review),
        "shared_changes": list(review.shared_changes),
        "roles": [
            {
                "role": c.role,
                "status": c.status,
                "renamed_from": c.renamed_from,
                "line": c.line,
                "new_access": [i.to_json() for i in c.new_access],
                "removed_access": [i.to_json() for i in c.removed_access],
                "principals_added": _role_principals(review, c.role, "gains"),
                "principals_removed": _role_principals(review, c.role, "loses"),
            }
            for c in review.changes
        ],
        "principals": [_principal_json(p) for p in review.principals],
        "buckets": [
            {
                "bucket": b.bucket,
                "status": b.status,
                "line": b.line,
                "settings": [{"change": text, "weakens": weak} for text, weak in b.settings],
                "policy": b.diff.to_json() if b.diff is not None else None,
            }
            for b in review.buckets
        ],
    }


def _summary_line(review: Review) -> str:
    s = _counts(review)
    parts = [f"{s[k]} {k}" for k in ("changed", "added", "removed", "renamed") if s[k]]
    roles = ", ".join(parts) if parts else "no role changed"
    risks = ", ".join(f"{n} {r}" for r, n in s["risks"].items())
    line = f"{roles}; {s['new_access']} new access, {s['removed_access']} removed"
    line += f" ({risks})" if risks else ""
    if review.principals:
        prisks = ", ".join(f"{n} {r}" for r, n in s["principal_risks"].items())
        line += (
            f"; {s['principals_gaining']} principal(s) gain a role"
            + (f" ({prisks})" if prisks else "")
            + f", {s['principals_losing']} lose one"
        )
    return line


def review_text(review: Review, *, color: bool = False) -> str:
    import click

    def style(text: str, **kw: Any) -> str:
        return click.style(text, **kw) if color else text

    out = [
        f"permgen review {review.spec}: {review.base} ({review.base_commit[:12]}) -> working tree",
        _summary_line(review),
    ]
    for note in review.shared_changes:
        out.append(style(f"note: {note}", fg="yellow"))
    for c in review.changes:
        who = [p for p in review.principals if p.role == c.role]
        if c.status == "unchanged" and not who:
            continue
        label = {"added": "+", "removed": "-", "changed": "~", "renamed": ">", "unchanged": "="}[
            c.status
        ]
        head = f"{label} {c.role} ({c.status}{' from ' + c.renamed_from if c.renamed_from else ''})"
        out.append(style(head, bold=True))
        for item in c.new_access:
            out.append(
                style(
                    f"    new: {_item_line(item)}",
                    fg="red" if set(item.risk) & set(SEVERE) else "yellow",
                )
            )
        for item in c.removed_access:
            out.append(style(f"    removed: {_item_line(item)}", fg="green"))
        for p in who:
            gains = p.kind == "gains"
            out.append(
                style(
                    f"    {_principal_line(p)}",
                    fg=("red" if set(p.risk) & set(SEVERE) else "yellow") if gains else "green",
                )
            )
            if p.access == (c.new_access if gains else c.removed_access):
                continue  # an added or removed role: its items are listed above
            for item in p.access:
                out.append(f"      {'new' if gains else 'loses'}: {_item_line(item)}")
    out += [style(line, bold=line.startswith("~")) for line in bucket_lines(review)]
    return "\n".join(out) + "\n"


def bucket_lines(review: Review) -> list[str]:
    """The buckets: changes, as text lines (text and Markdown share them)."""
    out = []
    for b in review.buckets:
        out.append(f"~ bucket {b.bucket} ({b.status})")
        for text, weak in b.settings:
            out.append(f"    protection: {text}" + (" [destructive: weaker]" if weak else ""))
        for e in b.diff.entries if b.diff is not None else ():
            who = f"    principal {e.principal}"
            out += [f"{who}: newly allowed: {_item_line(i)}" for i in e.allowed.new_access]
            out += [f"{who}: no longer allowed: {_item_line(i)}" for i in e.allowed.removed_access]
            out += [f"{who}: newly denied: {_item_line(i)}" for i in e.denied.new_access]
            out += [f"{who}: no longer denied: {_item_line(i)}" for i in e.denied.removed_access]
    return out


def _principal_line(p: PrincipalChange) -> str:
    risk = f" [{', '.join(p.risk)}]" if p.risk else ""
    if p.kind == "gains":
        return f"{p.principal} gains this role: {len(p.access)} new access region(s){risk}"
    return f"{p.principal} loses this role: {len(p.access)} access region(s){risk}"


def _item_line(item: AccessItem) -> str:
    w = item.witness
    actions = ", ".join(item.actions[:4]) + (" ..." if len(item.actions) > 4 else "")
    if item.future:
        actions += (" + " if actions else "") + "future actions"
    risk = f" [{', '.join(item.risk)}]" if item.risk else ""
    notes = "".join(f"; {n.text}" for n in item.risk_notes)
    return (
        f"{actions} on {region_text(item)}{risk}; "
        f"e.g. {w.action} {w.resource} ({context_text(item)}){notes}"
    )


#: One access item on one line (plan uses it for a policy's new version).
item_line = _item_line


def review_markdown(review: Review) -> str:
    s = _counts(review)
    out = [
        "### permgen review",
        "",
        f"**{_summary_line(review)}** against `{review.base}` (`{review.base_commit[:12]}`)",
        "",
    ]
    for note in review.shared_changes:
        out.append(f"> {note}")
    if review.shared_changes:
        out.append("")
    changed = [c for c in review.changes if c.status != "unchanged"]
    if review.buckets:
        out += ["Buckets:", "", "```", *bucket_lines(review), "```", ""]
    if not changed and not review.principals:
        out.append("No role grants anything different.")
        return "\n".join(out) + "\n"
    out += _principals_markdown(review)
    if not changed:
        return "\n".join(out) + "\n"
    risk_cols = [r for r in GATE_RISKS if s["risks"].get(r)]
    header = "| role | status | new | removed |" + "".join(f" {r} |" for r in risk_cols)
    out += [header, "|---|---|---|---|" + "---|" * len(risk_cols)]
    for c in changed:
        counts = {r: sum(1 for i in c.new_access if r in i.risk) for r in risk_cols}
        status = c.status + (f" from `{c.renamed_from}`" if c.renamed_from else "")
        out.append(
            f"| `{c.role}` | {status} | {len(c.new_access)} | {len(c.removed_access)} |"
            + "".join(f" {counts[r] or ''} |" for r in risk_cols)
        )
    out.append("")
    for c in changed:
        if not (c.new_access or c.removed_access or c.spec_diff):
            continue
        out += [
            "<details>",
            f"<summary><code>{c.role}</code>: {c.status}, {len(c.new_access)} new, {len(c.removed_access)} removed</summary>",
            "",
        ]
        if c.diff is not None:
            out += items_markdown(c.diff)
        if c.spec_diff:
            out += ["Spec lines:", "", "```diff", *c.spec_diff[2:], "```", ""]
        out += ["</details>", ""]
    return "\n".join(out) + "\n"


def _principals_markdown(review: Review) -> list[str]:
    if not review.principals:
        return []
    out = [
        "#### Who gains or loses a role",
        "",
        "| principal | role | change | access regions | risk |",
        "|---|---|---|---|---|",
    ]
    for p in review.principals:
        out.append(
            f"| `{p.principal}` | `{p.role}` | {p.kind} | {len(p.access)} | "
            f"{', '.join(p.risk) or '-'} |"
        )
    out.append("")
    for p in review.principals:
        if not p.access:
            continue
        items = DiffResult(p.access, ()) if p.kind == "gains" else DiffResult((), p.access)
        out += [
            "<details>",
            f"<summary><code>{p.principal}</code> {p.kind} <code>{p.role}</code>: "
            f"{len(p.access)} access region(s)</summary>",
            "",
            *items_markdown(items),
            "</details>",
            "",
        ]
    return out


def _level(item: AccessItem) -> str:
    if set(item.risk) & set(SEVERE):
        return "error"
    return "warning" if item.risk else "note"


_LEVELS = ("note", "warning", "error")


def review_sarif(review: Review, *, min_level: str = "note") -> dict[str, Any]:
    rules = [
        {
            "id": "permgen-new-access",
            "name": "new-access",
            "shortDescription": {"text": "A change to the spec grants new access."},
            "fullDescription": {
                "text": "The role allows requests it did not allow at the base revision; the message gives an example request and the risk classes."
            },
            "helpUri": "https://permgen.invalid/docs/commands/review.md",
            "defaultConfiguration": {"level": "warning"},
        }
    ]
    results: list[dict[str, Any]] = []

    def result(
        level: str, text: str, line: int | None, where: str, properties: dict[str, Any]
    ) -> None:
        """One new-access result at ``line`` of the spec (``where``: its logical name),
        unless its level is below ``min_level``."""
        if _LEVELS.index(level) < _LEVELS.index(min_level):
            return
        location: dict[str, Any] = {"artifactLocation": {"uri": review.spec}}
        if line:
            location["region"] = {"startLine": line}
        results.append(
            {
                "ruleId": "permgen-new-access",
                "ruleIndex": 0,
                "level": level,
                "message": {"text": text},
                "locations": [
                    {
                        "physicalLocation": location,
                        "logicalLocations": [{"fullyQualifiedName": where}],
                    }
                ],
                "properties": properties,
            }
        )

    for c in review.changes:
        for item in c.new_access:
            w = item.witness
            text = f"role {c.role} ({c.status}) newly allows {w.action} on {w.resource}" + (
                f" [{', '.join(item.risk)}]" if item.risk else ""
            )
            text += "".join(f"; {n.text}" for n in item.risk_notes)
            properties = {"risk": list(item.risk), "witness": w.to_json()}
            result(_level(item), text, c.line, f"roles.{c.role}", properties)
    for p in review.gains():
        if not p.access:
            continue
        level = "error" if set(p.risk) & set(SEVERE) else "warning" if p.risk else "note"
        text = f"{p.principal} is newly attached to role {p.role}: {len(p.access)} access " + (
            f"region(s) [{', '.join(p.risk)}]" if p.risk else "region(s)"
        )
        properties = {"risk": list(p.risk), "principal": p.principal}
        result(level, text, p.line, f"roles.{p.role}.attach", properties)
    # a bucket's new access: each weaker protection (destructive), and each request its
    # policy newly allows or no longer denies, per class of callers
    for b in review.buckets:
        where = f"buckets.{b.bucket}"
        for change, weak in b.settings:
            if weak:
                text = f"bucket {b.bucket} ({b.status}): {change}, weaker protection [destructive]"
                result("error", text, b.line, where, {"risk": ["destructive"]})
        for e in b.diff.entries if b.diff is not None else ():
            for what, items in (
                ("newly allows", e.allowed.new_access),
                ("no longer denies", e.denied.removed_access),
            ):
                for item in items:
                    w = item.witness
                    text = (
                        f"bucket {b.bucket} ({b.status}): its policy {what} {w.action} on "
                        f"{w.resource} to {e.principal}"
                        + (f" [{', '.join(item.risk)}]" if item.risk else "")
                    )
                    properties = {"risk": list(item.risk), "witness": w.to_json()}
                    result(_level(item), text, b.line, where, properties)
    return sarif_log(
        rules, results, information_uri="https://permgen.invalid/docs/commands/review.md"
    )


def render(review: Review, fmt: str, *, color: bool = False, min_level: str = "note") -> str:
    if fmt == "json":
        return json.dumps(review_json(review), indent=2) + "\n"
    if fmt == "markdown":
        return review_markdown(review)
    if fmt == "sarif":
        return json.dumps(review_sarif(review, min_level=min_level), indent=2) + "\n"
    return review_text(review, color=color)


__all__ = [
    "RoleChange",
    "item_line",
    "render",
    "review_json",
    "review_markdown",
    "review_sarif",
    "review_text",
]
