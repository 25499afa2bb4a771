"""Renderers for diffs and decisions: text for terminals, JSON for programs, Markdown for
pull-request comments. Each takes the result and optional labels; nothing here computes."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from permgen.semantics.diff import RISK_ORDER, AccessItem, DiffResult
from permgen.semantics.evaluate import Decision, Request

if TYPE_CHECKING:
    from permgen.semantics.bucket_diff import BucketDiff

DIFF_SCHEMA_VERSION = 1


def diff_json(result: DiffResult, *, old: str = "old", new: str = "new") -> dict[str, Any]:
    doc = {"version": DIFF_SCHEMA_VERSION, "old": old, "new": new}
    doc.update(result.to_json())
    return doc


def region_text(item: AccessItem) -> str:
    """The entry's resources as one phrase: ``A, B except C, D``."""
    text = ", ".join(item.resources)
    if item.except_resources:
        text += " except " + ", ".join(item.except_resources)
    return text


def context_text(item: AccessItem) -> str:
    """The witness's condition keys (``oss:Prefix=a/``), or "no condition keys"."""
    return ", ".join(f"{k}={v}" for k, v in item.witness.context.items()) or "no condition keys"


def _item_text(item: AccessItem) -> list[str]:
    actions = ", ".join(item.actions[:6]) + (
        f" (+{len(item.actions) - 6} more)" if len(item.actions) > 6 else ""
    )
    if item.future:
        actions = (actions + " and " if actions else "") + "actions the service may add later"
    risk = f" [{', '.join(item.risk)}]" if item.risk else ""
    w = item.witness
    lines = [
        f"  - {actions or '(no known action)'} on {region_text(item)}{risk}",
        f"    when: {'; '.join(item.conditions)}",
        f"    example: {w.action} {w.resource} ({context_text(item)})",
        f"    because: {item.statement.policy} Statement[{item.statement.index}]",
    ]
    for d in item.denied_by:
        lines.append(f"    previously denied by: {d.policy} Statement[{d.index}]")
    for note in item.risk_notes:
        r = note.request
        shown = "" if r == w else f" (e.g. {r.action} {r.resource})"
        lines.append(f"    {note.risk}: {note.text}{shown}")
    return lines


def diff_text(result: DiffResult, *, old: str = "old", new: str = "new") -> str:
    if result.equivalent:
        return f"equivalent: {new} grants exactly what {old} grants\n"
    out = []
    if result.new_access:
        out.append(f"new access ({new} allows, {old} denies): {len(result.new_access)}")
        for item in result.new_access:
            out.extend(_item_text(item))
    if result.removed_access:
        out.append(f"removed access ({old} allows, {new} denies): {len(result.removed_access)}")
        for item in result.removed_access:
            out.extend(_item_text(item))
    if not result.exact:
        out.append(
            "note: the analysis hit a size limit; the differences above are real, others may exist"
        )
    return "\n".join(out) + "\n"


def bucket_diff_text(result: BucketDiff, *, old: str = "old", new: str = "new") -> str:
    """A bucket-policy diff, per class of callers: what the policy allows and what it
    explicitly denies (a Deny overrules identity policies)."""
    if result.equivalent:
        return f"equivalent: {new} allows and denies every caller exactly what {old} does\n"
    out = [f"bucket policy: access changed for {len(result.entries)} class(es) of callers"]
    for e in result.entries:
        out.append(f"principal {e.principal}:")
        if not e.allowed.equivalent:
            out.append("  allowed by the bucket policy:")
            out += ["    " + line for line in diff_text(e.allowed, old=old, new=new).splitlines()]
        if not e.denied.equivalent:
            out.append("  explicitly denied by the bucket policy:")
            text = diff_text(e.denied, old=old, new=new)
            text = text.replace(
                f"new access ({new} allows, {old} denies)",
                f"newly denied ({new} denies, {old} not)",
            ).replace(
                f"removed access ({old} allows, {new} denies)",
                f"no longer denied ({old} denies, {new} not)",
            )
            out += ["    " + line for line in text.splitlines()]
    if not result.exact:
        out.append(
            "note: principal patterns overlap partly, or the analysis hit a size limit; the "
            "differences above are real, others may exist"
        )
    return "\n".join(out) + "\n"


def _md_escape(text: str) -> str:
    return text.replace("|", "\\|").replace("<", "&lt;").replace(">", "&gt;")


def _md_actions(item: AccessItem) -> str:
    names = [f"`{a}`" for a in item.actions[:4]]
    if len(item.actions) > 4:
        names.append(f"+{len(item.actions) - 4} more")
    if item.future:
        names.append("future actions")
    return ", ".join(names) or "-"


def risk_counts(items: tuple[AccessItem, ...]) -> dict[str, int]:
    counts = {r: 0 for r in RISK_ORDER}
    for item in items:
        for r in item.risk:
            counts[r] += 1
    return {r: n for r, n in counts.items() if n}


def diff_markdown(
    result: DiffResult, *, old: str = "old", new: str = "new", title: str = "Permission diff"
) -> str:
    if result.equivalent:
        return f"### {title}\n\n**Equivalent**: `{_md_escape(new)}` grants exactly what `{_md_escape(old)}` grants.\n"
    risks = risk_counts(result.new_access)
    summary = f"**{len(result.new_access)} new access**, {len(result.removed_access)} removed"
    if risks:
        summary += " (" + ", ".join(f"{n} {r}" for r, n in risks.items()) + ")"
    out = [f"### {title}", "", summary, ""]
    out += items_markdown(result)
    return "\n".join(out) + "\n"


def items_markdown(result: DiffResult) -> list[str]:
    out: list[str] = []
    for label, items in (
        ("New access", result.new_access),
        ("Removed access", result.removed_access),
    ):
        if not items:
            continue
        out += [
            f"#### {label}",
            "",
            "| risk | actions | resources | because | example request |",
            "|---|---|---|---|---|",
        ]
        for item in items:
            w = item.witness
            ctx = ", ".join(f"{k}={v}" for k, v in w.context.items())
            example = f"`{w.action}` on `{_md_escape(w.resource)}`" + (
                f" with {_md_escape(ctx)}" if ctx else ""
            )
            risk = ", ".join(item.risk) or "-"
            risk += "".join(f"<br>{n.risk}: {_md_escape(n.text)}" for n in item.risk_notes)
            region = ", ".join(f"`{_md_escape(r)}`" for r in item.resources)
            if item.except_resources:
                region += " except " + ", ".join(
                    f"`{_md_escape(r)}`" for r in item.except_resources
                )
            out.append(
                f"| {risk} | {_md_actions(item)} | {region} | "
                f"{_md_escape(item.statement.policy)} Statement[{item.statement.index}] | {example} |"
            )
        out.append("")
    return out


def decision_text(decision: Decision, request: Request) -> str:
    out = [f"{decision.kind}: {request.action} on {request.resource}"]
    for s in decision.statements:
        out.append(f"  {s.effect} {s.policy} Statement[{s.index}]: {s.why}")
        out.append(f"    {json.dumps(s.statement.to_json(), separators=(',', ':'))}")
    if decision.kind == "implicit_deny":
        out.append("  no statement allows it")
    return "\n".join(out) + "\n"


def decision_json(decision: Decision, request: Request) -> dict[str, Any]:
    doc = decision.to_json()
    doc["request"] = request.to_json()
    return doc


__all__ = [
    "context_text",
    "decision_json",
    "decision_text",
    "diff_json",
    "diff_markdown",
    "diff_text",
    "items_markdown",
    "region_text",
    "risk_counts",
]
