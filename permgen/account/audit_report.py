"""The audit's self-contained HTML report: a picture of who can destroy which data, then every
finding.

:func:`html` takes the audit's JSON document (``{"account": ..., "findings": [...]}``, see
docs/commands/audit.md) and returns one HTML page with everything inline: CSS, and an SVG drawn
here in Python (principals on the left, buckets on the right, one edge per principal-bucket
pair coloured by its worst severity and labelled with its kinds and count). No script, no
external URL; a Content-Security-Policy forbids both anyway, so a mistake in escaping could not
run code or fetch anything.

Every name in the document comes from the audited account and is treated as hostile: all text
is HTML-escaped, and control and bidirectional-override characters (which could make a name
read as another) are shown as ``\\uXXXX``. The output is deterministic (every order is total)
and bounded: at most :data:`MAX_NODES` principals and buckets are drawn (the rest are folded
into one "more" node per side) and at most :data:`MAX_EDGE_LABELS` edges carry a visible label
(every edge has a tooltip); the table lists every finding.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from html import escape
from typing import Any

__all__ = ["KINDS", "MAX_EDGE_LABELS", "MAX_NODES", "SEVERITIES", "html"]

SEVERITIES: tuple[str, ...] = ("critical", "high", "medium", "low")
KINDS: tuple[str, ...] = (
    "irrecoverable-delete",
    "irrecoverable-overwrite",
    "version-purge",
    "protection-removal",
    "escalation",
    "public-write",
    "public-read",
    "cross-account",
)
COLOURS: Mapping[str, str] = {
    "critical": "#b3001b",
    "high": "#e8590c",
    "medium": "#d4a000",
    "low": "#5c7cfa",
}
OTHER_COLOUR = "#868e96"  # a severity outside the four (shown as given, ranked last)

MAX_NODES = 40  # principals (and buckets) drawn; the rest fold into one "more" node per side
MAX_EDGE_LABELS = 24  # edges with a visible label (the worst ones); every edge has a tooltip
NAME_CHARS = 30  # characters of a name drawn in the picture (the full name is in the tooltip)
ACCOUNT_WIDE = "(account-wide)"

_WIDTH = 1100
_NODE_W = 270
_ROW_H = 34
_TOP = 46

# C0/C1 controls, and the marks and overrides that reorder or hide text.
_UNSAFE = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f\u200b-\u200f\u202a-\u202e\u2066-\u2069\ufeff]")


def _text(value: object) -> str:
    """``value`` as escaped HTML text, with invisible and reordering characters made visible."""
    s = value if isinstance(value, str) else json.dumps(value, sort_keys=True)
    s = _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", s)
    return escape(s, quote=True)


def _short(name: str, limit: int = NAME_CHARS) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "\u2026"


def _rank(severity: str) -> int:
    return SEVERITIES.index(severity) if severity in SEVERITIES else len(SEVERITIES)


def _colour(severity: str) -> str:
    return COLOURS.get(severity, OTHER_COLOUR)


@dataclass(frozen=True)
class _Finding:
    kind: str
    severity: str
    principal: str
    bucket: str | None
    resources: tuple[str, ...]
    path: tuple[str, ...]
    witness: Mapping[str, Any]
    why: str
    fix: str

    @property
    def bucket_label(self) -> str:
        return ACCOUNT_WIDE if self.bucket is None else self.bucket

    def order(self) -> tuple[Any, ...]:
        return (
            _rank(self.severity),
            self.kind,
            self.principal,
            self.bucket_label,
            self.resources,
            self.path,
            json.dumps(self.witness, sort_keys=True),
            self.why,
            self.fix,
        )


def _as_str(value: object, default: str = "") -> str:
    if value is None:
        return default
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _as_strs(value: object) -> tuple[str, ...]:
    if isinstance(value, (list, tuple)):
        return tuple(_as_str(v) for v in value)
    return () if value is None else (_as_str(value),)


def _finding(raw: object) -> _Finding:
    d: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    witness = d.get("witness")
    bucket = d.get("bucket")
    return _Finding(
        kind=_as_str(d.get("kind"), "?"),
        severity=_as_str(d.get("severity"), "?"),
        principal=_as_str(d.get("principal"), "?"),
        bucket=None if bucket is None else _as_str(bucket),
        resources=_as_strs(d.get("resources")),
        path=_as_strs(d.get("path")),
        witness=witness if isinstance(witness, Mapping) else {},
        why=_as_str(d.get("why")),
        fix=_as_str(d.get("fix")),
    )


@dataclass
class _Group:
    """Findings sharing a principal, a bucket or a principal-bucket pair."""

    key: str
    name: str
    worst: str = "?"
    count: int = 0
    kinds: dict[str, int] = field(default_factory=dict)

    def add(self, f: _Finding) -> None:
        if self.count == 0 or _rank(f.severity) < _rank(self.worst):
            self.worst = f.severity
        self.count += 1
        self.kinds[f.kind] = self.kinds.get(f.kind, 0) + 1

    def order(self) -> tuple[int, int, str, str]:
        return (_rank(self.worst), -self.count, self.name, self.key)

    def kinds_text(self, limit: int = 3) -> str:
        ordered = sorted(self.kinds.items(), key=lambda kv: (-kv[1], kv[0]))
        parts = [k if n == 1 else f"{k} \u00d7{n}" for k, n in ordered[:limit]]
        if len(ordered) > limit:
            parts.append(f"+{len(ordered) - limit} more")
        return ", ".join(parts)


# Keys of the groups: a bucket's key is never a principal's, and the folded "more" node's key
# (NUL is in no name the audit reports) never equals a real name, however hostile.
_MORE = "\x00more"


def _principal_key(f: _Finding) -> str:
    return "p:" + f.principal


def _bucket_key(f: _Finding) -> str:
    return "a:" if f.bucket is None else "b:" + f.bucket


def _groups(findings: Iterable[_Finding], key: Callable[[_Finding], str]) -> dict[str, _Group]:
    out: dict[str, _Group] = {}
    for f in findings:
        k = key(f)
        if k not in out:
            out[k] = _Group(k, f.principal if key is _principal_key else f.bucket_label)
        out[k].add(f)
    return out


def _fold(
    findings: Sequence[_Finding], key: Callable[[_Finding], str], noun: str
) -> tuple[list[_Group], dict[str, str]]:
    """The nodes drawn (worst first, at most MAX_NODES and a "more" node) and where each
    key is drawn."""
    ordered = sorted(_groups(findings, key).values(), key=_Group.order)
    shown = ordered[:MAX_NODES]
    where = {g.key: g.key for g in shown}
    if len(ordered) > MAX_NODES:
        more = _Group(_MORE, f"+{len(ordered) - MAX_NODES} more {noun}")
        shown.append(more)
        for g in ordered[MAX_NODES:]:
            where[g.key] = _MORE
        for f in findings:
            if where[key(f)] == _MORE:
                more.add(f)
    return shown, where


def _bezier(x1: float, y1: float, x2: float, y2: float, t: float) -> tuple[float, float]:
    xm = (x1 + x2) / 2
    u = 1 - t
    x = u**3 * x1 + 3 * u * u * t * xm + 3 * u * t * t * xm + t**3 * x2
    y = u**3 * y1 + 3 * u * u * t * y1 + 3 * u * t * t * y2 + t**3 * y2
    return x, y


def _svg(findings: Sequence[_Finding], section: Mapping[str, str]) -> str:
    bucket_nodes, bucket_at = _fold(findings, _bucket_key, "buckets")
    principal_nodes, principal_at = _fold(findings, _principal_key, "principals")
    bucket_row = {g.key: i for i, g in enumerate(bucket_nodes)}

    edges: dict[tuple[str, str], _Group] = {}
    for f in findings:
        pair = (principal_at[_principal_key(f)], bucket_at[_bucket_key(f)])
        if pair not in edges:
            edges[pair] = _Group("", "")
        edges[pair].add(f)

    # Principals: worst first, then near the buckets they reach (fewer crossings).
    reach: dict[str, list[int]] = {}
    for p, b in edges:
        reach.setdefault(p, []).append(bucket_row[b])
    principal_nodes.sort(
        key=lambda g: (
            g.key == _MORE,
            _rank(g.worst),
            sum(reach[g.key]) / len(reach[g.key]),
            g.name,
            g.key,
        )
    )
    principal_row = {g.key: i for i, g in enumerate(principal_nodes)}
    principal_name = {g.key: g.name for g in principal_nodes}
    bucket_name = {g.key: g.name for g in bucket_nodes}

    rows = max(len(principal_nodes), len(bucket_nodes), 1)
    height = _TOP + rows * _ROW_H + 10
    left_x = 10
    right_x = _WIDTH - 10 - _NODE_W
    out = [
        f'<svg class="graph" role="img" '
        f'viewBox="0 0 {_WIDTH} {height}" width="{_WIDTH}" height="{height}" '
        f'aria-label="principals and the buckets they can damage">',
        f'<text x="{left_x}" y="22" class="col">principals</text>',
        f'<text x="{right_x}" y="22" class="col">buckets</text>',
    ]

    def y_of(row: int) -> float:
        return _TOP + row * _ROW_H + _ROW_H / 2 - 1

    ordered_edges = sorted(
        edges.items(),
        key=lambda kv: (
            _rank(kv[1].worst),
            -kv[1].count,
            principal_row[kv[0][0]],
            bucket_row[kv[0][1]],
        ),
    )
    labelled = {pair for pair, _ in ordered_edges[:MAX_EDGE_LABELS]}
    # The mildest are drawn first, so the worst lie on top.
    paths: list[str] = []
    labels: list[str] = []
    label_order = {
        pair: i
        for i, pair in enumerate(
            sorted(labelled, key=lambda pb: (principal_row[pb[0]], bucket_row[pb[1]]))
        )
    }
    for (p, b), g in reversed(ordered_edges):
        x1, y1 = left_x + _NODE_W, y_of(principal_row[p])
        x2, y2 = right_x, y_of(bucket_row[b])
        xm = (x1 + x2) / 2
        colour = _colour(g.worst)
        width = min(1.5 + g.count**0.5, 8.0)
        plural = "s" if g.count != 1 else ""
        tip = (
            f"{principal_name[p]} \u2192 {bucket_name[b]}: {g.count} finding{plural} "
            f"({g.kinds_text(99)})"
        )
        paths.append(
            f'<path class="edge" d="M{x1:.0f},{y1:.1f} C{xm:.0f},{y1:.1f} '
            f'{xm:.0f},{y2:.1f} {x2:.0f},{y2:.1f}" stroke="{colour}" '
            f'stroke-width="{width:.1f}"><title>{_text(tip)}</title></path>'
        )
        if (p, b) in labelled:
            # Neighbouring labels sit at different points along their edges.
            t = (0.3, 0.5, 0.7)[label_order[(p, b)] % 3]
            lx, ly = _bezier(x1, y1, x2, y2, t)
            count = f" \u00d7{g.count}" if g.count > 1 else ""
            labels.append(
                f'<text class="elabel" x="{lx:.0f}" y="{ly - 3:.1f}" fill="{colour}">'
                f'{_text(g.kinds_text(2))}<tspan class="ecount">{count}</tspan></text>'
            )
    out.extend(paths)
    out.extend(labels)

    def node(x: float, row: int, g: _Group, anchor: str | None) -> str:
        y = _TOP + row * _ROW_H + 2
        colour = _colour(g.worst)
        plural = "s" if g.count != 1 else ""
        tip = f"{g.name}: {g.count} finding{plural}, worst {g.worst}"
        body = (
            f'<rect x="{x}" y="{y}" width="{_NODE_W}" height="{_ROW_H - 6}" rx="4" '
            f'class="node" stroke="{colour}"/>'
            f'<rect x="{x}" y="{y}" width="6" height="{_ROW_H - 6}" rx="2" fill="{colour}"/>'
            f'<text x="{x + 12}" y="{y + 16}" class="nlabel">{_text(_short(g.name))}</text>'
            f'<text x="{x + _NODE_W - 8}" y="{y + 16}" class="ncount" text-anchor="end">'
            f"{g.count}</text><title>{_text(tip)}</title>"
        )
        if anchor is None:
            return f"<g>{body}</g>"
        return f'<a href="#{anchor}"><g>{body}</g></a>'

    for g in principal_nodes:
        out.append(node(left_x, principal_row[g.key], g, None))
    for g in bucket_nodes:
        out.append(node(right_x, bucket_row[g.key], g, section.get(g.key)))
    out.append("</svg>")
    return "\n".join(out)


def _section_ids(buckets: Mapping[str, _Group]) -> dict[str, str]:
    """An anchor per bucket section, numbered in table order (never derived from a name)."""
    ordered = sorted(buckets.values(), key=_Group.order)
    return {g.key: f"bucket-{i}" for i, g in enumerate(ordered)}


def _witness(w: Mapping[str, Any]) -> str:
    parts = []
    for key in ("action", "resource"):
        if key in w:
            parts.append(f"<code>{_text(w[key])}</code>")
    context = w.get("context")
    if context:
        parts.append(f"<code>{_text(json.dumps(context, sort_keys=True))}</code>")
    rest = {k: v for k, v in w.items() if k not in ("action", "resource", "context")}
    if rest:
        parts.append(f"<code>{_text(json.dumps(rest, sort_keys=True))}</code>")
    return "<br>".join(parts)


def _row(f: _Finding) -> str:
    resources = "".join(f"<br><code>{_text(r)}</code>" for r in f.resources)
    path = " \u2192 ".join(_text(p) for p in f.path)
    return (
        f'<tr class="sev-{_text(f.severity)}">'
        f"<td>{_text(f.principal)}</td>"
        f"<td>{_text(f.bucket_label)}{resources}</td>"
        f"<td>{_text(f.kind)}</td>"
        f'<td><span class="pill" style="background:{_colour(f.severity)}">'
        f"{_text(f.severity)}</span></td>"
        f"<td>{path}</td><td>{_witness(f.witness)}</td>"
        f"<td>{_text(f.why)}</td><td>{_text(f.fix)}</td></tr>"
    )


def _summary(findings: Sequence[_Finding]) -> str:
    by_sev: dict[str, int] = {}
    by_kind: dict[str, int] = {}
    for f in findings:
        by_sev[f.severity] = by_sev.get(f.severity, 0) + 1
        by_kind[f.kind] = by_kind.get(f.kind, 0) + 1
    sevs = list(SEVERITIES) + sorted(s for s in by_sev if s not in SEVERITIES)
    pills = "".join(
        f'<span class="pill sev-count" style="background:{_colour(s)}">'
        f'{_text(s)} <b class="n">{by_sev.get(s, 0)}</b></span>'
        for s in sevs
    )
    kinds = list(KINDS) + sorted(k for k in by_kind if k not in KINDS)
    kind_rows = "".join(
        f'<tr><td>{_text(k)}</td><td class="n">{by_kind.get(k, 0)}</td></tr>' for k in kinds
    )
    principals = len({_principal_key(f) for f in findings})
    buckets = len({_bucket_key(f) for f in findings})
    return (
        f'<p class="totals"><b id="total">{len(findings)}</b> finding'
        f"{'s' if len(findings) != 1 else ''} &middot; {principals} principal"
        f"{'s' if principals != 1 else ''} &middot; {buckets} bucket"
        f"{'s' if buckets != 1 else ''}</p>"
        f'<div class="sev" id="by-severity">{pills}</div>'
        f'<table class="kinds" id="by-kind"><tr><th>kind</th><th>findings</th></tr>'
        f"{kind_rows}</table>"
    )


def _tables(
    findings: Sequence[_Finding], groups: Mapping[str, _Group], section: Mapping[str, str]
) -> str:
    by_bucket: dict[str, list[_Finding]] = {}
    for f in findings:
        by_bucket.setdefault(_bucket_key(f), []).append(f)
    out = []
    for g in sorted(groups.values(), key=_Group.order):
        rows = sorted(by_bucket[g.key], key=_Finding.order)
        plural = "s" if g.count != 1 else ""
        out.append(
            f'<h3 id="{section[g.key]}"><span class="pill" '
            f'style="background:{_colour(g.worst)}">{_text(g.worst)}</span> '
            f"{_text(g.name)} <small>({g.count} finding{plural})</small></h3>"
            '<table class="findings"><tr><th>principal</th><th>bucket</th><th>kind</th>'
            "<th>severity</th><th>path</th><th>witness</th><th>why</th><th>fix</th></tr>"
            + "".join(_row(f) for f in rows)
            + "</table>"
        )
    return "\n".join(out)


_CSS = """
body{font:14px/1.4 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:24px;color:#212529}
h1{font-size:22px;margin:0 0 4px}h2{font-size:18px;margin:28px 0 8px}h3{font-size:15px;margin:22px 0 6px}
.totals{font-size:16px;margin:6px 0}
.pill{display:inline-block;white-space:nowrap;color:#fff;border-radius:10px;padding:1px 9px;margin:2px 6px 2px 0;font-size:12px}
.sev-count{font-size:14px;padding:3px 12px}
table{border-collapse:collapse;margin:6px 0}
th,td{border:1px solid #dee2e6;padding:3px 7px;text-align:left;vertical-align:top}
th{background:#f1f3f5}
td.n{text-align:right}
table.findings td{word-break:break-word;max-width:320px}
code{font-size:12px;background:#f8f9fa;padding:0 2px}
svg.graph{border:1px solid #dee2e6;background:#fff;max-width:100%;height:auto}
svg .col{font-weight:600;font-size:14px;fill:#495057}
svg .node{fill:#f8f9fa;stroke-width:1.5}
svg .nlabel{font-size:13px;fill:#212529}
svg .ncount{font-size:12px;fill:#495057;font-weight:600}
svg .edge{fill:none;opacity:.75}
svg .elabel{font-size:11px;paint-order:stroke;stroke:#fff;stroke-width:3px;text-anchor:middle}
svg .ecount{font-weight:700}
.legend span{margin-right:14px}
"""


def html(report: Mapping[str, Any]) -> str:
    """The audit document ``report`` as one self-contained HTML page."""
    raw = report.get("findings")
    findings = sorted(
        (_finding(f) for f in (raw if isinstance(raw, list) else [])), key=_Finding.order
    )
    account = _as_str(report.get("account"), "?")
    legend = "".join(
        f'<span><b style="color:{_colour(s)}">&#9644;</b> {s}</span>' for s in SEVERITIES
    )
    if findings:
        buckets = _groups(findings, _bucket_key)
        section = _section_ids(buckets)
        picture = (
            f'<p class="legend">{legend} (edge: worst severity; label: kinds and count)</p>'
            + _svg(findings, section)
        )
        body = _tables(findings, buckets, section)
    else:
        picture = "<p>No principal can destroy or expose data in this account.</p>"
        body = ""
    raw_notes = report.get("notes")
    notes = sorted(_as_str(n) for n in (raw_notes if isinstance(raw_notes, list) else []))
    if notes:
        body += (
            '\n<h2>Notes</h2>\n<ul class="notes">'
            + "".join(f"<li>{_text(n)}</li>" for n in notes)
            + "</ul>"
        )
    title = f"permgen audit: account {_text(account)}"
    return (
        "<!DOCTYPE html>\n"
        '<html lang="en"><head><meta charset="utf-8">\n'
        '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
        "style-src 'unsafe-inline'; img-src data:\">\n"
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>{title}</title>\n<style>{_CSS}</style></head>\n<body>\n"
        f"<h1>{title}</h1>\n"
        "<p>Who can destroy which data for good: each edge is a principal that can delete, "
        "overwrite, purge, unprotect, expose or hand over a bucket's data.</p>\n"
        f"{_summary(findings)}\n<h2>Destructive paths</h2>\n{picture}\n"
        f"<h2>Findings by bucket, worst first</h2>\n{body}\n</body></html>\n"
    )
