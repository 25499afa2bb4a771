"""Findings, rules and what a rule sees."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from permgen.policy.model import Policy

if TYPE_CHECKING:
    from permgen.semantics.bucket_policy import BucketPolicy

SEVERITIES = ("info", "warning", "error")


def severity_at_least(severity: str, threshold: str) -> bool:
    return SEVERITIES.index(severity) >= SEVERITIES.index(threshold)


@dataclass(frozen=True)
class Finding:
    """One problem: which rule, how bad, what, where (a JSON path inside ``source``)."""

    rule_id: str
    severity: str
    message: str
    path: str = ""
    source: str = ""
    line: int | None = None

    @property
    def id(self) -> str:
        """A stable id derived from the content, for baselines and SARIF fingerprints."""
        text = f"{self.rule_id}\0{self.source}\0{self.path}\0{self.message}"
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "id": self.id,
            "rule": self.rule_id,
            "severity": self.severity,
            "message": self.message,
            "source": self.source,
            "path": self.path,
        }
        if self.line is not None:
            out["line"] = self.line
        return out


@dataclass(frozen=True)
class LintContext:
    """What a rule sees: the parsed policy, where it came from, the size limit, and (when
    the policy was read from JSON that spells something the parser normalizes) the decoded
    document as written; for a bucket policy, ``bucket``."""

    policy: Policy
    source: str
    size_limit: int
    session: bool = False
    document: Any = None
    #: A bucket policy's statements with their Principal (``policy`` then holds the same
    #: statements without it); None for an identity policy.
    bucket: BucketPolicy | None = None


#: What a check yields: (JSON path, message); the engine turns it into a :class:`Finding`.
Hit = tuple[str, str]
Check = Callable[[LintContext], Iterator[Hit]]


@dataclass(frozen=True)
class Rule:
    """A rule: a stable id that is never reused, a severity, a summary, a description,
    a reference, an example of a statement it flags, the check (which yields
    ``(json_path, message)`` pairs), and an example it does not flag (``passes``). Both
    examples are shown in docs/rules.md, and a test lints each of them."""

    id: str
    name: str
    severity: str
    summary: str
    description: str
    reference: str
    example: str
    check: Check = field(compare=False, repr=False)
    passes: str = ""


__all__ = ["SEVERITIES", "Check", "Finding", "Hit", "LintContext", "Rule", "severity_at_least"]
