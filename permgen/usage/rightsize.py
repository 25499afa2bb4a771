"""Right-sizing: which grants of each role were used, and a narrower spec proven to be a
subset of today's access that still allows everything that was used.

Collecting is streaming: lines are read one at a time and only distinct (principal, action,
resource, context) uses are kept, with a count and the first and last time seen. Memory
grows with the number of distinct uses, never with the number of lines, and is capped
(:data:`MAX_DISTINCT`): past the cap the run stops with a message rather than swap.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from permgen._internal import parallel
from permgen.errors import InputError
from permgen.semantics.diff import diff_policies
from permgen.semantics.evaluate import Evaluator, Request
from permgen.spec.compile import CompiledRole, compile_role
from permgen.spec.types import BUILTIN_TEMPLATES, PLACEHOLDER_RE, Conditions, Grant, Role, Spec
from permgen.usage.logs import MAX_LINE, Entry, Format, Stats, read_entries, sniff
from permgen.usage.mapping import Principals, Use, map_entry

#: Most distinct uses kept in memory (about 200 bytes each).
MAX_DISTINCT = 2_000_000
#: Most source IPs and VPC ids remembered per principal (for the report).
MAX_SAMPLES = 16
DAY = 86_400


@dataclass
class Seen:
    count: int
    first: int
    last: int

    def add(self, other: Seen) -> None:
        self.count += other.count
        self.first = min(self.first, other.first)
        self.last = max(self.last, other.last)


@dataclass
class Context:
    ips: set[str] = field(default_factory=set)
    vpcs: set[str] = field(default_factory=set)
    tls: int = 0
    plain: int = 0
    tls_unknown: int = 0

    def add_entry(self, entry: Entry) -> None:
        if entry.ip and len(self.ips) < MAX_SAMPLES:
            self.ips.add(entry.ip)
        if entry.vpc and len(self.vpcs) < MAX_SAMPLES:
            self.vpcs.add(entry.vpc)
        if entry.tls is None:
            self.tls_unknown += 1
        elif entry.tls:
            self.tls += 1
        else:
            self.plain += 1

    def merge(self, other: Context) -> None:
        self.ips |= set(list(other.ips)[: max(0, MAX_SAMPLES - len(self.ips))])
        self.vpcs |= set(list(other.vpcs)[: max(0, MAX_SAMPLES - len(self.vpcs))])
        self.tls += other.tls
        self.plain += other.plain
        self.tls_unknown += other.tls_unknown


@dataclass
class Usage:
    """What the logs show: distinct uses per principal, with counts and times."""

    uses: dict[tuple[str, Use], Seen] = field(default_factory=dict)
    contexts: dict[str, Context] = field(default_factory=dict)
    stats: Stats = field(default_factory=Stats)
    unmapped: int = 0
    failed: int = 0  # requests OSS refused (status >= 400): not evidence of use
    outside: int = 0  # requests outside the time window
    unknown_keys: dict[str, int] = field(default_factory=dict)
    first: int = 0
    last: int = 0

    @property
    def span_days(self) -> float:
        return (self.last - self.first) / DAY if self.last else 0.0

    def merge(self, other: Usage) -> None:
        for k, v in other.uses.items():
            mine = self.uses.get(k)
            if mine is None:
                self.uses[k] = v
            else:
                mine.add(v)
        for p, c in other.contexts.items():
            self.contexts.setdefault(p, Context()).merge(c)
        self.stats.merge(other.stats)
        self.unmapped += other.unmapped
        self.failed += other.failed
        self.outside += other.outside
        for k2, n in other.unknown_keys.items():
            if k2 in self.unknown_keys or len(self.unknown_keys) < MAX_SAMPLES:
                self.unknown_keys[k2] = self.unknown_keys.get(k2, 0) + n
        if other.last:
            self.first = min(self.first, other.first) if self.first else other.first
            self.last = max(self.last, other.last)


@dataclass(frozen=True)
class Window:
    since: int | None = None
    until: int | None = None


class _Collector:
    def __init__(
        self, principals: Principals, account: str, window: Window, max_distinct: int
    ) -> None:
        self.usage = Usage()
        self.principals = principals
        self.account = account
        self.window = window
        self.max_distinct = max_distinct

    def add(self, entry: Entry) -> None:
        usage = self.usage
        w = self.window
        if (w.since is not None and entry.time < w.since) or (
            w.until is not None and entry.time >= w.until
        ):
            usage.outside += 1
            return
        if entry.status >= 400:
            usage.failed += 1
            return
        uses = map_entry(entry, self.account)
        if not uses:
            usage.unmapped += 1
            return
        who = self.principals.of(entry)
        if who.startswith("unknown:"):
            k = who[8:]
            if k in usage.unknown_keys or len(usage.unknown_keys) < MAX_SAMPLES:
                usage.unknown_keys[k] = usage.unknown_keys.get(k, 0) + 1
        ctx = usage.contexts.get(who)
        if ctx is None:
            ctx = usage.contexts[who] = Context()
        ctx.add_entry(entry)
        t = entry.time
        if not usage.first or t < usage.first:
            usage.first = t
        if t > usage.last:
            usage.last = t
        for use in uses:
            key = (who, use)
            seen = usage.uses.get(key)
            if seen is None:
                if len(usage.uses) >= self.max_distinct:
                    raise InputError(
                        f"more than {self.max_distinct} distinct requests in the logs; "
                        "narrow the window (--since/--until) or read fewer files at once"
                    )
                usage.uses[key] = Seen(1, t, t)
            else:
                seen.count += 1
                if t > seen.last:
                    seen.last = t
                if t < seen.first:
                    seen.first = t


def _format_of(path: str) -> Format:
    return sniff(path)[0]


def _read_range(path: str, start: int, end: int, fmt: Format, stats: Stats) -> Iterable[Entry]:
    """Entries of the lines that start in [start, end) of an uncompressed text file."""
    import json

    from permgen.usage.logs import parse_oss_line, parse_sls_record

    with open(path, "rb") as fh:
        pos = start
        if start > 0:
            fh.seek(start - 1)
            pos = start - 1
            while True:  # the rest of the line that started before us
                skipped = fh.readline(MAX_LINE + 1)
                pos += len(skipped)
                if not skipped or skipped.endswith(b"\n"):
                    break
        while pos < end:
            line = fh.readline(MAX_LINE + 1)
            if not line:
                return
            pos += len(line)
            stats.lines += 1
            if len(line) > MAX_LINE and not line.endswith(b"\n"):
                while True:
                    more = fh.readline(MAX_LINE + 1)
                    pos += len(more)
                    if not more or more.endswith(b"\n"):
                        break
                stats.bad(f"{path}@{pos}", f"line longer than {MAX_LINE} bytes", too_long=True)
                continue
            text = line.decode("utf-8", "replace").rstrip("\r\n")
            if not text.strip():
                continue
            try:
                entry = parse_oss_line(text) if fmt == "oss" else parse_sls_record(json.loads(text))
            except (ValueError, RecursionError) as exc:
                stats.bad(f"{path}@{pos}", str(exc))
                continue
            stats.entries += 1
            yield entry


def collect(
    paths: Sequence[str],
    *,
    keys: Mapping[str, str] | None = None,
    account: str = "*",
    window: Window = Window(),
    jobs: int = 1,
    max_distinct: int = MAX_DISTINCT,
) -> Usage:
    """Read every log file (ActionTrail first, so STS keys are known) into a :class:`Usage`.

    With ``jobs`` > 1, plain (not gzipped) OSS and SLS files are split into byte ranges read
    by forked workers, and their results merged."""
    principals = Principals(keys)
    formats = {p: _format_of(p) for p in paths}
    trails = [p for p in paths if formats[p] == "actiontrail"]
    others = [p for p in paths if formats[p] != "actiontrail"]
    main = _Collector(principals, account, window, max_distinct)
    for path in trails:
        events = list(read_entries(path, main.usage.stats, "actiontrail"))
        for entry in events:
            principals.learn(entry)
        for entry in events:
            main.add(entry)
    tasks: list[tuple[str, int, int]] = []
    for path in others:
        size = os.path.getsize(path)
        gz = _is_gzip(path)
        parts = 1 if gz or jobs <= 1 or size < 1 << 20 else jobs
        step = -(-size // parts) if size else 1
        tasks.extend((path, i, min(size, i + step)) for i in range(0, max(size, 1), step))

    def run(task: tuple[str, int, int]) -> Usage:
        path, start, end = task
        worker = _Collector(principals, account, window, max_distinct)
        if _is_gzip(path) or (start == 0 and end >= os.path.getsize(path)):
            entries: Iterable[Entry] = read_entries(path, worker.usage.stats, formats[path])
        else:
            entries = _read_range(path, start, end, formats[path], worker.usage.stats)
        for entry in entries:
            worker.add(entry)
        return worker.usage

    if jobs > 1 and len(tasks) > 1 and parallel.available():
        results = parallel.fork_map(run, tasks)
        for task, result in zip(tasks, results, strict=True):
            main.usage.merge(result if result is not None else run(task))
    else:
        for task in tasks:
            main.usage.merge(run(task))
    if len(main.usage.uses) > max_distinct:
        raise InputError(f"more than {max_distinct} distinct requests in the logs")
    return main.usage


def _is_gzip(path: str) -> bool:
    with open(path, "rb") as fh:
        return fh.read(2) == b"\x1f\x8b"


# --------------------------------------------------------------------------- right-sizing


@dataclass(frozen=True)
class Tally:
    name: str  # an action, or bucket/prefix
    count: int
    last: int  # 0: never


@dataclass
class RoleReport:
    name: str
    principals: tuple[str, ...]
    actions: list[Tally] = field(default_factory=list)
    prefixes: list[Tally] = field(default_factory=list)
    batch_deletes: int = 0
    not_allowed: int = 0  # requests of the role's principals this role does not allow
    distinct_used: int = 0
    changes: list[str] = field(default_factory=list)
    proposed: Role | None = None  # None: nothing to narrow, or no proposal
    status: str = "unchanged"  # unchanged | narrowed | unused | rejected | insufficient
    note: str = ""
    removed: list[str] = field(default_factory=list)  # the diff's removed regions
    context: dict[str, Any] = field(default_factory=dict)


@dataclass
class UsageReport:
    spec: str
    roles: list[RoleReport]
    usage: Usage
    min_days: float

    @property
    def changed(self) -> bool:
        return any(r.status in ("narrowed",) for r in self.roles)


def _role_principals(role: Role) -> tuple[str, ...]:
    names = list(role.attach)
    if role.sts is not None:
        names.append("role:" + role.sts.role_arn.rsplit("/", 1)[-1])
    return tuple(dict.fromkeys(names))


def _matches_principal(
    who: str, attached: Sequence[str], groups: Mapping[str, Sequence[str]]
) -> bool:
    """Whether the principal ``who`` has a role attached as ``attached`` (RAM names compare
    without case), directly or through a group's members."""
    low = who.lower()
    if any(low == a.lower() for a in attached):
        return True
    if low.startswith("user:"):
        user = low[5:]
        members = {g.lower(): {m.lower() for m in ms} for g, ms in groups.items()}
        return any(
            a.lower().startswith("group:") and user in members.get(a[6:].lower(), set())
            for a in attached
        )
    return False


def common_dir(strings: Iterable[str], floor: str) -> str:
    """The longest common prefix of ``strings`` cut back to its last ``/`` (a folder), never
    shorter than ``floor`` (every string starts with ``floor``)."""
    it = iter(strings)
    first = next(it)
    lo, hi = first, first
    for s in it:
        lo = min(lo, s)
        hi = max(hi, s)
    n = 0
    while n < len(lo) and n < len(hi) and lo[n] == hi[n]:
        n += 1
    lcp = lo[:n]
    cut = lcp[: lcp.rfind("/") + 1]
    return cut if len(cut) >= len(floor) else floor


_READ = {"oss:GetObject", "oss:GetObjectVersion", "oss:ListObjects", "oss:ListObjectVersions"}
_VERSIONS = {"oss:GetObjectVersion", "oss:ListObjectVersions"}


def _check_policy(role: Role, spec: Spec) -> CompiledRole:
    """The role compiled without its conditions block: used requests are matched on action,
    resource and the request's own keys (oss:Prefix ...), since no log gives every
    condition key (the built-in log has no VPC or TLS); the proposal keeps the conditions
    as they are, and the diff compares the full policies."""
    return compile_role(
        replace(role, conditions=Conditions()),
        templates_dir=spec.templates_dir,
        spec_path=spec.path,
    )


def rightsize_role(
    spec: Spec,
    role: Role,
    usage: Usage,
    *,
    groups: Mapping[str, Sequence[str]] | None = None,
    enough: bool = True,
) -> RoleReport:
    groups = groups or {}
    attached = _role_principals(role)
    report = RoleReport(role.name, attached)
    current = compile_role(role, templates_dir=spec.templates_dir, spec_path=spec.path)
    check = Evaluator([_check_policy(role, spec).policy])
    used: dict[Use, Seen] = {}
    batch: dict[str, Seen] = {}
    ctx = Context()
    for (who, use), seen in usage.uses.items():
        if not _matches_principal(who, attached, groups):
            continue
        if use.keys_unknown:
            # a batch delete: allowed on some key of this bucket? evidence for the action
            if any(g.bucket == use.bucket for g in role.grants) and _mentions(check, use.action):
                prev = batch.get(use.bucket)
                batch[use.bucket] = (
                    Seen(seen.count, seen.first, seen.last) if prev is None else prev
                )
                if prev is not None:
                    prev.add(seen)
                prev2 = used.get(use)
                used[use] = Seen(seen.count, seen.first, seen.last) if prev2 is None else prev2
                if prev2 is not None:
                    prev2.add(seen)
            continue
        if not use.resource:
            continue
        if check.allows(Request(use.action, use.resource, dict(use.context))):
            prev3 = used.get(use)
            if prev3 is None:
                used[use] = Seen(seen.count, seen.first, seen.last)
            else:
                prev3.add(seen)
        else:
            report.not_allowed += seen.count
    for who in attached:
        c = usage.contexts.get(who)
        if c is not None:
            ctx.merge(c)
    report.context = {
        "source_ips": sorted(ctx.ips),
        "vpcs": sorted(ctx.vpcs),
        "tls": ctx.tls,
        "plain": ctx.plain,
        "tls_unknown": ctx.tls_unknown,
    }
    report.distinct_used = sum(1 for u in used if not u.keys_unknown)
    report.batch_deletes = sum(s.count for s in batch.values())

    # actions: every action the role's Allow statements name
    by_action: dict[str, Seen] = {}
    for use, seen in used.items():
        prev = by_action.get(use.action)
        by_action[use.action] = Seen(seen.count, seen.first, seen.last) if prev is None else prev
        if prev is not None:
            prev.add(seen)
    named = sorted(
        {a for s in current.policy.statements if s.effect != "Deny" for a in (s.actions or ())}
    )
    for action in named:
        s = by_action.get(action)
        report.actions.append(Tally(action, s.count if s else 0, s.last if s else 0))

    # prefixes
    new_grants: list[Grant] = []
    for grant in role.grants:
        bucket_uses = [(u, s) for u, s in used.items() if u.bucket == grant.bucket]
        kept: list[str] = []
        for prefix in grant.prefixes:
            if PLACEHOLDER_RE.search(prefix):
                hits = [(u, s) for u, s in bucket_uses if u.key and not u.keys_unknown]
                kept.append(prefix)
                _tally_prefix(report, grant.bucket, prefix, hits)
                continue
            under = [
                (u, s)
                for u, s in bucket_uses
                if not u.keys_unknown and u.action not in ("oss:ListBuckets",) and _under(u, prefix)
            ]
            _tally_prefix(report, grant.bucket, prefix, under)
            if grant.bucket in batch:
                kept.append(prefix)  # batch deletes name no keys: never narrowed
                continue
            keys = [u.key for u, _ in under]
            if not keys:
                continue
            kept.append(common_dir(keys, prefix))
        if not kept and any(not u.key and not u.keys_unknown for u, _ in bucket_uses):
            kept = list(grant.prefixes)  # bucket-level use only: the grant stays as it is
        if kept:
            new_grants.append(Grant(grant.bucket, tuple(dict.fromkeys(kept))))
            if tuple(dict.fromkeys(kept)) != grant.prefixes:
                report.changes.append(
                    f"grant {grant.bucket}: prefixes {list(grant.prefixes)} -> {list(dict.fromkeys(kept))}"
                )
        else:
            report.changes.append(f"grant {grant.bucket}: unused, dropped")

    # options: built-in templates only, and only ever turned off
    options = dict(role.options)
    actions_used = set(by_action)
    if role.template in BUILTIN_TEMPLATES:
        off: dict[str, bool] = {}
        if options.get("versions") is True and not actions_used & _VERSIONS:
            off["versions"] = False
        if options.get("browse") is True and not _browse_used(used, role):
            off["browse"] = False
        if role.template == "writer":
            if options.get("delete") is True and "oss:DeleteObject" not in actions_used:
                off["delete"] = False
            if options.get("read") is True and not actions_used & _READ:
                off["read"] = False
        for k, v in off.items():
            report.changes.append(f"option {k}: true -> false (no request used it)")
            options[k] = v

    if not used:
        report.status = "unused"
        report.note = (
            "no request of this role's principals in the window; consider removing the role"
        )
        return report
    if not enough:
        report.status = "insufficient"
        return report
    if not report.changes:
        return report
    proposed = replace(role, grants=tuple(new_grants), options=tuple(sorted(options.items())))
    _prove(spec, role, current, proposed, used, report)
    return report


def _mentions(check: Evaluator, action: str) -> bool:
    from permgen.policy.wildcard import names_matching

    return any(
        not c.statement.not_action
        and any(names_matching(p, (action,)) for p in c.statement.actions)
        for c in check.allow_statements
    )


def _under(use: Use, prefix: str) -> bool:
    return use.key.startswith(prefix) and (bool(use.key) or prefix == "")


def _tally_prefix(
    report: RoleReport, bucket: str, prefix: str, hits: list[tuple[Use, Seen]]
) -> None:
    count = sum(s.count for _, s in hits)
    last = max((s.last for _, s in hits), default=0)
    report.prefixes.append(Tally(f"{bucket}/{prefix}", count, last))


def _browse_used(used: Mapping[Use, Seen], role: Role) -> bool:
    for use in used:
        if use.action in ("oss:ListBuckets", "oss:GetBucketInfo"):
            return True
        if use.action == "oss:ListObjects" and dict(use.context).get("oss:Delimiter") == "/":
            grant_prefixes = [p for g in role.grants if g.bucket == use.bucket for p in g.prefixes]
            if not any(use.key.startswith(p) for p in grant_prefixes):
                return True  # a console listing of a parent folder
    return False


def _prove(
    spec: Spec,
    role: Role,
    current: CompiledRole,
    proposed_role: Role,
    used: Mapping[Use, Seen],
    report: RoleReport,
) -> None:
    proposed = compile_role(proposed_role, templates_dir=spec.templates_dir, spec_path=spec.path)
    result = diff_policies([current.policy], [proposed.policy])
    if result.new_access:
        report.status = "rejected"
        report.note = "the narrowed spec would allow requests today's does not; no proposal"
        return
    check = Evaluator([_check_policy(proposed_role, spec).policy])
    for use in used:
        if use.keys_unknown:
            if not _mentions(check, use.action):
                report.status = "rejected"
                report.note = f"the narrowed spec no longer allows {use.action} (batch delete)"
                return
            continue
        if not check.allows(Request(use.action, use.resource, dict(use.context))):
            report.status = "rejected"
            report.note = (
                f"the narrowed spec would deny a used request: {use.action} {use.resource}"
            )
            return
    report.proposed = proposed_role
    report.status = "narrowed"
    report.removed = [
        f"{', '.join(item.actions) or '(actions)'} on {', '.join(item.resources)}"
        for item in result.removed_access
    ]


def rightsize(
    spec: Spec,
    usage: Usage,
    *,
    roles: Iterable[str] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    min_days: float = 0.0,
) -> UsageReport:
    names = list(roles) if roles is not None else list(spec.roles)
    for name in names:
        if name not in spec.roles:
            raise InputError(f"no role named {name!r} in {spec.path}")
    enough = usage.span_days >= min_days
    reports = [
        rightsize_role(spec, spec.roles[n], usage, groups=groups, enough=enough) for n in names
    ]
    return UsageReport(spec.path, reports, usage, min_days)


# --------------------------------------------------------------------------- proposed spec


def _role_yaml(role: Role) -> dict[str, Any]:
    out: dict[str, Any] = {"template": role.template}
    if role.description:
        out["description"] = role.description
    grants: list[dict[str, Any]] = []
    for g in role.grants:
        entry: dict[str, Any] = {"bucket": g.bucket}
        if g.prefixes != ("",):
            entry["prefixes"] = list(g.prefixes)
        grants.append(entry)
    out["grants"] = grants
    if role.options:
        out["options"] = dict(role.options)
    c = role.conditions
    out["conditions"] = {
        "source_ip": list(c.source_ip),
        "source_vpc": list(c.source_vpc),
        "secure_transport": c.secure_transport,
    }
    if role.attach:
        out["attach"] = list(role.attach)
    if role.sts is not None:
        out["sts"] = {"role_arn": role.sts.role_arn, "duration": role.sts.duration}
    return out


def proposed_spec_text(spec: Spec, report: UsageReport, out_path: str | Path) -> str:
    """The spec with every narrowed role replaced (YAML; every role's conditions written out,
    so the file does not depend on defaults)."""
    import yaml

    proposed = {r.name: r.proposed for r in report.roles if r.proposed is not None}
    data: dict[str, Any] = {"version": 1}
    if spec.templates_dir is not None:
        rel = os.path.relpath(Path(spec.templates_dir).resolve(), Path(out_path).resolve().parent)
        data["templates"] = rel
    account = next((r.account for r in spec.roles.values()), "*")
    if account != "*":
        data["defaults"] = {"account": account}
    data["roles"] = {
        name: _role_yaml(proposed.get(name) or role) for name, role in spec.roles.items()
    }
    header = (
        f"# Proposed by permgen usage from {spec.path}: narrowed roles: "
        f"{', '.join(proposed) or 'none'}.\n"
    )
    return header + yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
