"""``permgen review``: every role of a spec, between a git revision and the working tree.

Both sides are compiled in full (roles with placeholders by their ceilings), so a change to a
template, to ``defaults`` or to a user template shows up in every role it affects. Roles are
paired by name: added, removed, changed or unchanged; a removed role whose policy reappears
unchanged under a new name is reported as renamed. Each changed role carries the exact
semantic diff of :mod:`permgen.semantics` (new and removed access, each with a witness
request and risk classes).

Attachments are reviewed too: a principal added to a role's ``attach:`` (or named by a new
``sts.role_arn``) gains everything the role grants at the head, and one taken off a role, or
attached to a removed role, loses everything the role granted at the base. A renamed role's
principals carry over, so only the principals that differ count.
"""

from __future__ import annotations

import difflib
import os
import posixpath
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from permgen.errors import InputError, SpecError
from permgen.policy.catalog import RISK_CLASSES
from permgen.policy.model import Policy
from permgen.review.git import default_base, export_dir, repo_root, resolve, show, tracked
from permgen.semantics.bucket_diff import BucketDiff, diff_bucket_policies
from permgen.semantics.diff import AccessItem, DiffResult
from permgen.spec.compile import CompiledRole, CompiledSpec, compile_spec
from permgen.spec.load import load_spec, load_yaml
from permgen.spec.templates import only_tracked
from permgen.spec.types import BucketSpec, Spec

Status = Literal["added", "removed", "changed", "unchanged", "renamed"]
PrincipalKind = Literal["gains", "loses"]

#: Risk classes that can gate a review, in the order reports list them.
GATE_RISKS = RISK_CLASSES


@dataclass(frozen=True)
class RoleChange:
    role: str
    status: Status
    old: CompiledRole | None
    new: CompiledRole | None
    diff: DiffResult | None  # None for unchanged and renamed roles
    line: int | None = None  # the role's line in the spec it is reported against
    renamed_from: str | None = None
    spec_diff: tuple[str, ...] = ()  # unified diff of the role's YAML block

    @property
    def new_access(self) -> tuple[AccessItem, ...]:
        return self.diff.new_access if self.diff is not None else ()

    @property
    def removed_access(self) -> tuple[AccessItem, ...]:
        return self.diff.removed_access if self.diff is not None else ()


@dataclass(frozen=True)
class PrincipalChange:
    """A principal newly attached to a role (``gains``: all the role grants at the head) or
    no longer attached to it (``loses``: all the role granted at the base)."""

    principal: str
    role: str
    kind: PrincipalKind
    access: tuple[AccessItem, ...]
    line: int | None = None

    @property
    def risk(self) -> tuple[str, ...]:
        found = {r for item in self.access for r in item.risk}
        return tuple(r for r in GATE_RISKS if r in found)


@dataclass(frozen=True)
class BucketReview:
    """One bucket of the spec's ``buckets:`` that changed: its policy's exact diff per class
    of callers (None: the policy grants and denies the same), and its protection changes,
    each ``(text, weakens)``: a weakening (suspended versioning, a shorter or dropped
    retention, a dropped replication or overwrite rule, a new or shorter expiry) can destroy
    data for good and counts as new access of risk ``destructive``."""

    bucket: str
    status: Status
    diff: BucketDiff | None
    settings: tuple[tuple[str, bool], ...] = ()
    line: int | None = None

    @property
    def weakens(self) -> bool:
        return any(w for _, w in self.settings)

    @property
    def new_access(self) -> bool:
        return self.weakens or (self.diff is not None and self.diff.new_access)

    def risks(self) -> set[str]:
        out = self.diff.risks() if self.diff is not None else set()
        return out | ({"destructive"} if self.weakens else set())


@dataclass(frozen=True)
class Review:
    spec: str
    base: str
    base_commit: str
    changes: tuple[RoleChange, ...]
    shared_changes: tuple[str, ...] = field(default=())  # defaults/templates changed
    principals: tuple[PrincipalChange, ...] = field(default=())
    buckets: tuple[BucketReview, ...] = field(default=())

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in ("added", "removed", "changed", "renamed", "unchanged")}
        for c in self.changes:
            out[c.status] += 1
        return out

    def gains(self) -> tuple[PrincipalChange, ...]:
        return tuple(p for p in self.principals if p.kind == "gains")

    def losses(self) -> tuple[PrincipalChange, ...]:
        return tuple(p for p in self.principals if p.kind == "loses")

    def risks(self) -> set[str]:
        roles = {r for c in self.changes for item in c.new_access for r in item.risk}
        buckets = {r for b in self.buckets for r in b.risks()}
        return roles | {r for p in self.gains() for r in p.risk} | buckets

    def has_new_access(self) -> bool:
        return (
            any(c.new_access for c in self.changes)
            or any(p.access for p in self.gains())
            or any(b.new_access for b in self.buckets)
        )


# --------------------------------------------------------------------------- compile both sides


def _compile_at(
    spec_path: Path, root: Path, rev: str, tmp: Path, label: str
) -> CompiledSpec | None:
    """Compile the spec as it was at ``rev``; None when the file did not exist there."""
    data = show(root, rev, spec_path)
    if data is None:
        return None
    rel = spec_path.parent.resolve().relative_to(root.resolve()) / spec_path.name
    target = tmp / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(data)
    text = data.decode("utf-8", errors="replace")
    try:
        raw, _ = load_yaml(text, str(spec_path))
    except InputError:
        raw = None  # compiling it below says what is wrong
    if isinstance(raw, dict) and isinstance(raw.get("templates"), str):
        # the folder as the base revision's tree has it, found without the working tree
        entry = raw["templates"]
        folder = posixpath.normpath(posixpath.join(rel.parent.as_posix(), entry))
        if not entry.startswith("/") and folder != ".." and not folder.startswith("../"):
            export_dir(root, rev, folder, tmp / folder, label)
    try:
        # the templates folder must be inside the exported tree, as it must be inside the
        # repository in the working tree
        return compile_spec(load_spec(target, root=tmp))
    except InputError as exc:
        raise InputError(
            f"the spec does not compile at base revision {label} ({rev[:12]}): "
            f"{_relabel(exc, target, spec_path, tmp, root)}"
        ) from None


def _relabel(exc: InputError, tmp_path: Path, real: Path, tmp: Path, root: Path) -> str:
    return str(exc).replace(str(tmp_path), f"{real}").replace(str(tmp), str(root))


def _compile_head(spec_path: Path, root: Path) -> CompiledSpec:
    if spec_path.is_symlink():
        raise SpecError(
            "is a symlink; review reads the spec only from a regular file in the repository",
            file=str(spec_path),
        )
    try:
        spec = load_spec(spec_path, root=root)
        if spec.templates_dir is None:
            return compile_spec(spec)
        with only_tracked(spec.templates_dir, tracked(root, spec.templates_dir)):
            return compile_spec(spec)
    except InputError as exc:
        raise InputError(f"the spec does not compile in the working tree: {exc}") from None


# --------------------------------------------------------------------------- spec lines


def _role_blocks(spec: Spec) -> dict[str, list[str]]:
    """Each role's lines in the spec text (from its key to the next role or the end)."""
    lines = spec.source.splitlines()
    starts = sorted((r.line, name) for name, r in spec.roles.items() if r.line)
    out: dict[str, list[str]] = {}
    for i, (line, name) in enumerate(starts):
        end = starts[i + 1][0] - 1 if i + 1 < len(starts) else len(lines)
        block = lines[line - 1 : end]
        while block and not block[-1].strip():
            block.pop()
        out[name] = block
    return out


def _shared_changes(old: Spec | None, new: Spec) -> tuple[str, ...]:
    """What changed for every role: ``defaults``, the user template directory, and each user
    template file (compared byte for byte; call while the base's templates are exported)."""
    if old is None:
        return ()
    out = []
    if old.defaults != new.defaults:
        out.append("defaults changed: every role that does not override them is affected")
    if old.templates_entry != new.templates_entry:
        out.append("the user template directory changed")
    out += _template_changes(old, new)
    return tuple(out)


#: How many entries of a templates folder ``shared_changes`` compares at most.
_MAX_TEMPLATE_ENTRIES = 10_000


def _template_files(directory: Path | None) -> dict[str, bytes]:
    """Each entry under ``directory`` -> a digest of what it is, never following a link.

    A regular file is its SHA-256 (read in chunks, at most ``MAX_TEMPLATE_BYTES`` + 1 bytes:
    a larger one cannot be a template and compares by its size); a symlink is its target
    text, never what it points to; other kinds (FIFOs, devices) are their kind. At most
    ``_MAX_TEMPLATE_ENTRIES`` entries are looked at.
    """
    import hashlib
    import stat

    from permgen.spec.template_guard import MAX_TEMPLATE_BYTES

    if directory is None or not directory.is_dir() or directory.is_symlink():
        return {}
    out: dict[str, bytes] = {}
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    for top, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        for name in sorted(files) + [d for d in dirs if os.path.islink(os.path.join(top, d))]:
            if len(out) >= _MAX_TEMPLATE_ENTRIES:
                return out
            full = os.path.join(top, name)
            rel = Path(full).relative_to(directory).as_posix()
            try:
                st = os.lstat(full)
                if stat.S_ISLNK(st.st_mode):
                    out[rel] = b"symlink:" + os.fsencode(os.readlink(full))
                elif not stat.S_ISREG(st.st_mode):
                    out[rel] = b"kind:%o" % stat.S_IFMT(st.st_mode)
                elif st.st_size > MAX_TEMPLATE_BYTES:
                    out[rel] = b"size:%d" % st.st_size
                else:
                    fd = os.open(full, flags)
                    with os.fdopen(fd, "rb") as f:
                        out[rel] = hashlib.sha256(f.read(MAX_TEMPLATE_BYTES + 1)).digest()
            except OSError:
                out[rel] = b"unreadable"
    return out


def _template_changes(old: Spec, new: Spec) -> list[str]:
    before, after = _template_files(old.templates_dir), _template_files(new.templates_dir)
    out = []
    for rel in sorted(set(before) | set(after)):
        if before.get(rel) == after.get(rel):
            continue
        how = "added" if rel not in before else "removed" if rel not in after else "changed"
        if rel.endswith(".json.j2") and "/" not in rel:
            name = rel[: -len(".json.j2")]
            users = sorted(
                {n for n, r in new.roles.items() if r.template == name}
                | {n for n, r in old.roles.items() if r.template == name}
            )
            used = f" (used by {', '.join(users)})" if users else " (used by no role)"
            out.append(f"user template {name} {how}{used}")
        else:
            out.append(f"user template directory file {rel} {how}")
    return out


# --------------------------------------------------------------------------- review


def _diff(old: Iterable[Policy], new: Iterable[Policy]) -> DiffResult:
    from permgen.semantics import diff_policies

    return diff_policies(list(old), list(new))


def review(spec_path: str | Path, *, base: str | None = None) -> Review:
    """Review the spec at ``spec_path`` against revision ``base`` (default: the merge base
    with the default branch)."""
    path = Path(spec_path)
    if not path.exists():
        raise SpecError("no such file", file=str(spec_path))
    root = repo_root(path)
    base_rev = base or default_base(root)
    commit = resolve(root, base_rev)
    head = _compile_head(path, root)
    with tempfile.TemporaryDirectory(prefix="permgen-review-") as tmp:
        old = _compile_at(path, root, commit, Path(tmp), base_rev)
        shared = _shared_changes(old.spec if old else None, head.spec)
    old_roles = dict(old.roles) if old else {}
    new_roles = dict(head.roles)
    new_blocks = _role_blocks(head.spec)
    old_blocks = _role_blocks(old.spec) if old else {}

    changes: list[RoleChange] = []
    for name in sorted(set(old_roles) | set(new_roles)):
        o, n = old_roles.get(name), new_roles.get(name)
        block_diff = tuple(
            difflib.unified_diff(
                old_blocks.get(name, []),
                new_blocks.get(name, []),
                f"a/{path}",
                f"b/{path}",
                lineterm="",
                n=1,
            )
        )
        if o is not None and n is not None:
            result = _diff([o.policy], [n.policy])
            status: Status = "unchanged" if result.equivalent else "changed"
            changes.append(
                RoleChange(
                    name,
                    status,
                    o,
                    n,
                    None if result.equivalent else result,
                    n.role.line,
                    spec_diff=block_diff,
                )
            )
        elif n is not None:
            changes.append(
                RoleChange(
                    name, "added", None, n, _diff([], [n.policy]), n.role.line, spec_diff=block_diff
                )
            )
        elif o is not None:
            changes.append(
                RoleChange(
                    name, "removed", o, None, _diff([o.policy], []), None, spec_diff=block_diff
                )
            )
    changes = _pair_renames(changes)
    return Review(
        spec=str(spec_path),
        base=base_rev,
        base_commit=commit,
        changes=tuple(changes),
        shared_changes=shared,
        principals=tuple(_principal_changes(changes)),
        buckets=tuple(bucket_changes(old, head)),
    )


def _setting_changes(old: BucketSpec | None, new: BucketSpec | None) -> list[tuple[str, bool]]:
    """The protections that differ, as (text, weakens)."""
    o = old or BucketSpec("")
    n = new or BucketSpec("")
    out: list[tuple[str, bool]] = []
    if o.versioning != n.versioning:
        weak = o.versioning == "enabled" and n.versioning != "enabled"
        out.append(
            (f"versioning: {o.versioning or 'unmanaged'} -> {n.versioning or 'unmanaged'}", weak)
        )
    if o.retention_days != n.retention_days:
        weak = o.retention_days is not None and (n.retention_days or 0) < o.retention_days
        out.append(
            (f"retention_days: {o.retention_days or 'none'} -> {n.retention_days or 'none'}", weak)
        )
    for key in ("overwrite_protection", "replication"):
        before, after = set(getattr(o, key) or ()), set(getattr(n, key) or ())
        if before != after:
            gone = len(before - after)
            out.append(
                (
                    f"{key}: {len(before)} rule(s) -> {len(after)}"
                    + (f", {gone} removed" if gone else ""),
                    bool(gone),
                )
            )
    if (o.lifecycle or ()) != (n.lifecycle or ()):
        before_days = {r.prefix: r.expire_days for r in o.lifecycle or ()}
        weak = any(
            r.prefix not in before_days or r.expire_days < before_days[r.prefix]
            for r in n.lifecycle or ()
        )
        out.append(
            (f"lifecycle: {len(o.lifecycle or ())} rule(s) -> {len(n.lifecycle or ())}", weak)
        )
    return out


def bucket_changes(old: CompiledSpec | None, new: CompiledSpec) -> list[BucketReview]:
    """Every bucket whose policy or protections differ between two compiled specs."""
    old_buckets = dict(old.spec.buckets) if old else {}
    old_policies = dict(old.buckets) if old else {}
    out: list[BucketReview] = []
    for name in sorted(set(old_buckets) | set(new.spec.buckets)):
        o, n = old_buckets.get(name), new.spec.buckets.get(name)
        diff = diff_bucket_policies(old_policies.get(name), new.buckets.get(name))
        settings = tuple(_setting_changes(o, n))
        if diff.equivalent and not settings:
            continue
        status: Status = "added" if o is None else "removed" if n is None else "changed"
        out.append(
            BucketReview(
                name, status, None if diff.equivalent else diff, settings, n.line if n else None
            )
        )
    return out


def _principal_changes(changes: Iterable[RoleChange]) -> list[PrincipalChange]:
    """Who gains or loses a role. A renamed role pairs the old name's principals with the
    new name's, so only the differences count."""
    from permgen.account.sync import role_principals

    out: list[PrincipalChange] = []
    for c in changes:
        before = {str(p) for p in role_principals(c.old.role)} if c.old else set()
        after = {str(p) for p in role_principals(c.new.role)} if c.new else set()
        gained, lost = sorted(after - before), sorted(before - after)
        if gained and c.new is not None:
            access = c.new_access if c.status == "added" else _diff([], [c.new.policy]).new_access
            out += [PrincipalChange(p, c.role, "gains", access, c.line) for p in gained]
        if lost and c.old is not None:
            access = (
                c.removed_access
                if c.status == "removed"
                else _diff([c.old.policy], []).removed_access
            )
            line = c.line if c.new is not None else None
            out += [PrincipalChange(p, c.role, "loses", access, line) for p in lost]
    return out


def _pair_renames(changes: list[RoleChange]) -> list[RoleChange]:
    """A removed role and an added role with the same policy are one renamed role."""
    removed = [c for c in changes if c.status == "removed"]
    added = [c for c in changes if c.status == "added"]
    used: set[str] = set()
    renamed: dict[str, RoleChange] = {}
    for a in added:
        for r in removed:
            if r.role in used or a.new is None or r.old is None:
                continue
            if _diff([r.old.policy], [a.new.policy]).equivalent:
                used.add(r.role)
                renamed[a.role] = RoleChange(
                    a.role,
                    "renamed",
                    r.old,
                    a.new,
                    None,
                    a.line,
                    renamed_from=r.role,
                    spec_diff=a.spec_diff,
                )
                break
    out = [c for c in changes if not (c.status == "removed" and c.role in used)]
    return [renamed.get(c.role, c) if c.status == "added" else c for c in out]


def gate(result: Review, *, fail_on_new_access: bool, fail_on_risk: Iterable[str]) -> list[str]:
    """Why the review fails its gates (empty when it passes)."""
    reasons: list[str] = []
    if fail_on_new_access and result.has_new_access():
        n = sum(len(c.new_access) for c in result.changes)
        if n:
            reasons.append(f"{n} new access region(s)")
        gains = [p for p in result.gains() if p.access]
        if gains:
            reasons.append(
                f"{len(gains)} principal(s) newly attached to a role ("
                + ", ".join(f"{p.principal} to {p.role}" for p in gains[:3])
                + (" ..." if len(gains) > 3 else "")
                + ")"
            )
        weakened = [b.bucket for b in result.buckets if b.new_access]
        if weakened:
            reasons.append(
                f"{len(weakened)} bucket(s) with new access or weaker protection ("
                + ", ".join(weakened[:3])
                + (" ..." if len(weakened) > 3 else "")
                + ")"
            )
    risky = set(fail_on_risk) & result.risks()
    if risky:
        reasons.append("new access with risk " + ", ".join(r for r in GATE_RISKS if r in risky))
    return reasons


__all__ = [
    "GATE_RISKS",
    "BucketReview",
    "PrincipalChange",
    "Review",
    "RoleChange",
    "bucket_changes",
    "gate",
    "review",
]
