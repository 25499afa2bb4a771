"""The exact difference between two bucket policies, per principal.

A bucket policy's effect on one caller is fully given by two sets of requests: those its
applicable statements **allow** (and do not deny), and those they **explicitly deny** (an
explicit Deny overrules the caller's identity Allow: :func:`combine`). Both sets depend on
the caller only through which statements apply to it, so the callers fall into classes:

- each principal string either side names (a UID, a role-session pattern, a ``user:NAME``
  marker): the callers it names;
- ``anyone else``: a caller neither side names, signed or anonymous (``"*"`` applies to
  both alike);
- ``the bucket owner``: the owning account (``"*"`` without a Condition does not apply to it).

For each class the applicable statements of each side are diffed with :func:`diff_policies`
twice: as they are (the allowed set) and with every Deny read as an Allow (the denied set).
The classes are exact when principal patterns overlap only by containment (a UID, a session
under a role's ``/*``); two wildcard patterns that partly overlap (``.../R/a*`` and
``.../R/*b``) are each diffed as written, and a caller matching both is not a class of its
own (:attr:`BucketDiff.exact` is then False).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from permgen.policy.model import ALLOW, DENY, Policy, Statement
from permgen.policy.wildcard import has_wildcard, match
from permgen.semantics.bucket_policy import BucketPolicy, Caller, applicable
from permgen.semantics.conditions import MissingKey
from permgen.semantics.diff import DiffResult, diff_policies

ANYONE = "anyone else"
OWNER = "the bucket owner"


@dataclass(frozen=True)
class PrincipalDiff:
    """What changed for one class of callers: ``allowed`` (requests the bucket policy grants)
    and ``denied`` (requests it explicitly denies, overruling identity policies)."""

    principal: str
    allowed: DiffResult
    denied: DiffResult

    @property
    def equivalent(self) -> bool:
        return self.allowed.equivalent and self.denied.equivalent

    def to_json(self) -> dict[str, Any]:
        return {
            "principal": self.principal,
            "allowed": self.allowed.to_json(),
            "denied": self.denied.to_json(),
        }


@dataclass(frozen=True)
class BucketDiff:
    entries: tuple[PrincipalDiff, ...]  # only the classes whose access changed
    exact: bool = True

    @property
    def equivalent(self) -> bool:
        return not self.entries

    @property
    def new_access(self) -> bool:
        """Some class gains an allowed request, or loses an explicitly denied one."""
        return any(e.allowed.new_access or e.denied.removed_access for e in self.entries)

    def risks(self) -> set[str]:
        """Risk classes of new access: newly allowed requests and requests no longer denied."""
        lost_denies = {r for e in self.entries for i in e.denied.removed_access for r in i.risk}
        return {r for e in self.entries for r in e.allowed.risks()} | lost_denies

    def to_json(self) -> dict[str, Any]:
        return {
            "equivalent": self.equivalent,
            "exact": self.exact,
            "principals": [e.to_json() for e in self.entries],
        }


def _flipped(statements: list[Statement]) -> list[Statement]:
    """The Deny statements as Allow ones: their allowed set is what the Deny denies."""
    return [
        Statement(ALLOW, s.actions, s.resources, s.conditions, s.not_action, s.not_resource, s.sid)
        for s in statements
        if s.effect == DENY
    ]


def owner_of(*policies: BucketPolicy | None) -> str | None:
    """The bucket owner's UID as the policies' OSS resource ARNs name it (bucket-policy ARNs
    use the owner's UID: ram-facts 2.3), when they name exactly one account; else None."""
    accounts = {
        parts[3]
        for policy in policies
        for bs in (policy.statements if policy is not None else ())
        for r in bs.statement.resources
        if len(parts := r.split(":", 4)) == 5 and parts[1] == "oss"
        if parts[3] and not has_wildcard(parts[3])
    }
    return accounts.pop() if len(accounts) == 1 else None


def principal_classes(
    old: BucketPolicy | None, new: BucketPolicy | None, owner: str | None = None
) -> list[tuple[str, Caller]]:
    """The classes of callers (label, representative caller), in a stable order; the owner's
    own UID (``owner``), when a side names it, is the owner's class."""
    named: dict[str, None] = {}
    for policy in (old, new):
        for bs in policy.statements if policy is not None else ():
            for p in bs.principals:
                if p != "*" and p != owner:
                    named.setdefault(p, None)
    out = [(p, Caller((p,))) for p in sorted(named)]
    out.append((ANYONE, Caller(("\0anyone-else",))))
    if owner is None:
        out.append((OWNER, Caller((), owner=True)))
    else:
        out.append((f"{OWNER} ({owner})", Caller((owner,), owner=True)))
    return out


def _partial_overlap(patterns: list[str]) -> bool:
    wild = [p for p in patterns if has_wildcard(p)]
    for i, a in enumerate(wild):
        for b in wild[i + 1 :]:
            if not match(a, b) and not match(b, a) and _may_overlap(a, b):
                return True
    return False


def _may_overlap(a: str, b: str) -> bool:
    """Whether two patterns can name one string: conservatively, when their literal heads
    (before the first wildcard) agree."""
    ha = a[: min(i for i in (a.find("*"), a.find("?")) if i >= 0)]
    hb = b[: min(i for i in (b.find("*"), b.find("?")) if i >= 0)]
    return ha.startswith(hb) or hb.startswith(ha)


def diff_bucket_policies(
    old: BucketPolicy | None,
    new: BucketPolicy | None,
    *,
    owner: str | None = None,
    missing_key: MissingKey = MissingKey.NEGATED_TRUE,
) -> BucketDiff:
    """For each class of callers, what the bucket policy allows and denies it, old vs new.
    ``owner``: the owning account's UID (default: :func:`owner_of` the two policies)."""
    classes = principal_classes(old, new, owner if owner is not None else owner_of(old, new))
    entries = []
    for label, caller in classes:
        sides = []
        for policy in (old, new):
            statements = [s for s, _, _ in applicable(policy, caller)]
            sides.append(statements)
        allowed = diff_policies(
            [Policy(tuple(sides[0]), name="old (applicable)")],
            [Policy(tuple(sides[1]), name="new (applicable)")],
            missing_key=missing_key,
        )
        denied = diff_policies(
            [Policy(tuple(_flipped(sides[0])), name="old (its Deny statements)")],
            [Policy(tuple(_flipped(sides[1])), name="new (its Deny statements)")],
            missing_key=missing_key,
        )
        entry = PrincipalDiff(label, allowed, denied)
        if not entry.equivalent:
            entries.append(entry)
    exact = all(e.allowed.exact and e.denied.exact for e in entries) and not _partial_overlap(
        [label for label, _ in classes[:-2]]
    )
    return BucketDiff(tuple(entries), exact=exact)


__all__ = [
    "ANYONE",
    "OWNER",
    "BucketDiff",
    "PrincipalDiff",
    "diff_bucket_policies",
    "owner_of",
    "principal_classes",
]
