"""Running the rules over policies, policy files and spec files."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from permgen.errors import InputError, PolicyParseError
from permgen.lint.core import Finding, LintContext, Rule, severity_at_least
from permgen.policy.model import (
    POLICY_LIMIT,
    SESSION_POLICY_LIMIT,
    Policy,
    loads_lenient,
    parse_policy,
)

if TYPE_CHECKING:
    from permgen.semantics.bucket_policy import BucketPolicy

SPEC_SUFFIXES = (".yaml", ".yml")


def run_rules(ctx: LintContext, rules: Sequence[Rule] | None = None) -> Iterator[Finding]:
    """Every finding of every rule; a rule that raises becomes a PG002 finding."""
    from permgen.lint.rules import RULES
    from permgen.lint.rules.inputs import CRASHED

    for rule in rules if rules is not None else RULES:
        try:
            for path, message in rule.check(ctx):
                yield Finding(rule.id, rule.severity, message, path, ctx.source)
        except Exception as exc:  # a broken rule must not hide the others
            yield Finding(
                CRASHED.id,
                CRASHED.severity,
                f"rule {rule.id} ({rule.name}) failed: {type(exc).__name__}: {exc}",
                "",
                ctx.source,
            )


#: PG001 messages that mean the input could not be read as a JSON document at all (exit 2),
#: rather than a document that breaks the policy grammar (a finding like any other).
UNREADABLE = ("not valid JSON", "JSON beyond", "not UTF-8", "duplicate key")


def unreadable(findings: Sequence[Finding]) -> bool:
    """Whether the findings of one input say it could not be read at all: the same answer
    for a file and for standard input."""
    from permgen.lint.rules.inputs import INVALID

    return bool(findings) and (
        findings[0].rule_id == INVALID.id and findings[0].message.startswith(UNREADABLE)
    )


# An Effect (or any value) spelled as "allow"/"DENY": the parser normalizes it, so the
# document as written is decoded again for the rules that look at spelling.
_EFFECT_SPELLING = re.compile(r'"(?!Allow"|Deny")(?i:allow|deny)"|\\u')


def lint_policy(
    policy: Policy | str | bytes,
    *,
    source: str = "<policy>",
    size_limit: int = POLICY_LIMIT,
    session: bool = False,
) -> Iterator[Finding]:
    """Findings for one policy (a parsed Policy, or JSON text)."""
    from permgen.lint.rules.inputs import INVALID

    document = None
    if not isinstance(policy, Policy):
        try:
            parsed = parse_policy(policy, source=source)
        except PolicyParseError as exc:
            bucket = _as_bucket_policy(policy, source) if exc.path.endswith(".Principal") else None
            if bucket is not None:
                yield from lint_bucket_policy(bucket, source=source)
                return
            yield Finding(INVALID.id, INVALID.severity, exc.detail, exc.path, source, exc.line)
            return
        text = policy.decode("utf-8") if isinstance(policy, bytes) else policy
        if _EFFECT_SPELLING.search(text):
            document = loads_lenient(text, source=source, duplicate_keys_checked=False)
        policy = parsed
    yield from run_rules(LintContext(policy, source, size_limit, session, document))


def _as_bucket_policy(text: str | bytes, source: str) -> BucketPolicy | None:
    """``text`` as an OSS bucket policy (statements with a string or list Principal), or
    None when it is not one."""
    from permgen.semantics.bucket_policy import parse_bucket_policy

    try:
        return parse_bucket_policy(text, source=source)
    except PolicyParseError:
        return None


def lint_bucket_policy(
    bucket: BucketPolicy, *, source: str = "<bucket-policy>"
) -> Iterator[Finding]:
    """Findings for one bucket policy: every rule over its statements, the PG3xx rules
    over their principals too. Its size limit is OSS's (16 KB)."""
    from permgen.semantics.bucket_policy import BUCKET_POLICY_LIMIT

    bare = Policy(tuple(bs.statement for bs in bucket.statements), name=bucket.name)
    yield from run_rules(LintContext(bare, source, BUCKET_POLICY_LIMIT, bucket=bucket))


@dataclass
class LintReport:
    """Findings of a lint run, and the inputs that could not be read at all."""

    findings: list[Finding] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)
    inputs: int = 0
    processes: int = 1  # how many processes linted the inputs (workers that reported)

    def counts(self) -> dict[str, int]:
        out = {"error": 0, "warning": 0, "info": 0}
        for f in self.findings:
            out[f.severity] += 1
        return out

    def failed(self, threshold: str) -> bool:
        return any(severity_at_least(f.severity, threshold) for f in self.findings)


def _lint_spec(path: Path, report: LintReport) -> None:
    from permgen.lint.rules.inputs import INVALID
    from permgen.spec.compile import compile_spec, session_policy
    from permgen.spec.load import load_spec

    try:
        spec = load_spec(path)
        compiled = compile_spec(spec)
    except InputError as exc:
        report.findings.append(Finding(INVALID.id, INVALID.severity, str(exc), "", str(path)))
        report.unreadable.append(str(path))
        return
    for bucket_name, bucket in compiled.buckets.items():
        if bucket is not None:
            report.findings.extend(
                lint_bucket_policy(bucket, source=f"{path}#buckets.{bucket_name}")
            )
    for name, role in compiled.roles.items():
        source = f"{path}#{name}"
        report.findings.extend(lint_policy(role.policy, source=source))
        if role.has_sts and role.role.placeholders:
            # The longest values a placeholder may take give the largest session policy.
            widest = {p: "x" * 64 for p in role.role.placeholders}
            try:
                session = session_policy(spec, name, widest).policy
            except InputError as exc:
                report.findings.append(
                    Finding(
                        "PG107", "error", f"with 64-character placeholder values: {exc}", "", source
                    )
                )
                continue
            report.findings.extend(
                f
                for f in lint_policy(
                    session,
                    source=f"{source} (session, 64-character values)",
                    size_limit=SESSION_POLICY_LIMIT,
                    session=True,
                )
                if f.rule_id == "PG107"
            )
        elif role.has_sts:
            report.findings.extend(
                f
                for f in lint_policy(
                    role.policy,
                    source=f"{source} (session)",
                    size_limit=SESSION_POLICY_LIMIT,
                    session=True,
                )
                if f.rule_id == "PG107"
            )


#: Fewer inputs than this are linted in one process: starting workers would cost more.
PARALLEL_MIN_INPUTS = 200


def lint_files(paths: Iterable[str | Path], *, session: bool = False, jobs: int = 1) -> LintReport:
    """Lint policy JSON files (``-`` for stdin is handled by the caller) and spec files.

    With ``jobs`` > 1 and at least :data:`PARALLEL_MIN_INPUTS` inputs, the inputs are split
    into contiguous chunks linted by forked worker processes (where the platform forks);
    the report is the same, in the same order, as with one process. Forking a process that
    runs other threads is unsafe: pass ``jobs`` > 1 only from a single-threaded program.
    """
    from permgen._internal import parallel

    paths = list(paths)
    if jobs > 1 and len(paths) >= PARALLEL_MIN_INPUTS and parallel.available():
        return _lint_parallel(paths, session, jobs)
    return _lint_chunk(paths, session)


def _lint_chunk(paths: Sequence[str | Path], session: bool) -> LintReport:
    from permgen.lint.rules.inputs import INVALID

    report = LintReport()
    limit = SESSION_POLICY_LIMIT if session else POLICY_LIMIT
    for raw in paths:
        path = Path(raw)
        report.inputs += 1
        if path.suffix.lower() in SPEC_SUFFIXES:
            _lint_spec(path, report)
            continue
        try:
            data = path.read_bytes()
        except OSError as exc:
            report.findings.append(
                Finding(INVALID.id, INVALID.severity, f"cannot read: {exc.strerror}", "", str(path))
            )
            report.unreadable.append(str(path))
            continue
        findings = list(lint_policy(data, source=str(path), size_limit=limit, session=session))
        if unreadable(findings):
            report.unreadable.append(str(path))
        report.findings.extend(findings)
    return report


def _lint_parallel(paths: list[str | Path], session: bool, jobs: int) -> LintReport:
    """One forked worker per contiguous slice (:mod:`permgen._internal.parallel`); a slice whose
    worker failed is linted again here."""
    from permgen._internal import parallel

    slices = parallel.split(paths, jobs)
    pieces = parallel.fork_map(lambda part: _lint_chunk(part, session), slices)
    report = LintReport(processes=max(1, sum(piece is not None for piece in pieces)))
    for part, piece in zip(slices, pieces, strict=True):
        if piece is None:
            piece = _lint_chunk(part, session)
        report.findings.extend(piece.findings)
        report.unreadable.extend(piece.unreadable)
        report.inputs += piece.inputs
    return report


__all__ = [
    "PARALLEL_MIN_INPUTS",
    "LintReport",
    "lint_files",
    "lint_policy",
    "run_rules",
    "unreadable",
]
