"""Sync a spec's ``buckets:`` with OSS: a plan read through :class:`OssApi`, and an apply.

What permgen manages: for each bucket the spec names, the settings its entry names
(versioning, retention, overwrite protection, replication, lifecycle, bucket policy); a
setting the entry does not name is never read into the plan or changed. Buckets are never
created or deleted: a bucket the account does not have blocks the plan.

Safety: a change that weakens a protection is **refused** unless the caller names that exact
change with a flag (:data:`FLAGS`, each taking the bucket's name): suspending versioning,
aborting (or replacing) a retention policy, removing a replication rule, removing overwrite
protection rules, deleting the bucket policy. A locked retention policy can never be
shortened (OSS refuses it); such a plan is refused whatever the flags. A refused change
blocks the whole apply before its first write. Apply runs the protective changes first
(enable versioning, retention, overwrite rules, new replication rules, the bucket policy)
and the flagged weakening ones last.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from permgen.account.oss import LifecycleRule, OssApi, OverwriteRule, ReplicationRule
from permgen.errors import InputError, PolicyParseError
from permgen.semantics.bucket_diff import BucketDiff, diff_bucket_policies
from permgen.semantics.bucket_policy import BucketPolicy, parse_bucket_policy
from permgen.spec.compile import (
    CompiledSpec,
    bucket_policy_text,
    bucket_principal,
    resolve_users,
    unresolved_users,
)
from permgen.spec.types import BucketSpec

Kind = Literal[
    "versioning",
    "retention-create",
    "retention-lock",
    "retention-extend",
    "retention-replace",
    "overwrite-put",
    "overwrite-delete",
    "replication-add",
    "replication-remove",
    "lifecycle-put",
    "lifecycle-delete",
    "policy-put",
    "policy-delete",
]

#: The flag that allows each weakening change (``--allow-... BUCKET``).
FLAGS: dict[str, str] = {
    "suspend-versioning": "--allow-suspend-versioning",
    "abort-retention": "--allow-abort-retention",
    "remove-replication": "--allow-remove-replication",
    "remove-overwrite-protection": "--allow-remove-overwrite-protection",
    "delete-bucket-policy": "--allow-delete-bucket-policy",
}

#: Which changes are protective (run first) and which weaken (run last).
_ORDER: dict[str, int] = {
    "versioning": 0,
    "retention-create": 0,
    "retention-lock": 0,
    "retention-extend": 0,
    "overwrite-put": 0,
    "replication-add": 0,
    "policy-put": 0,
    "lifecycle-put": 1,
    "lifecycle-delete": 1,
    "retention-replace": 2,
    "overwrite-delete": 2,
    "replication-remove": 2,
    "policy-delete": 2,
}


@dataclass(frozen=True)
class BucketChange:
    """One change to one bucket. ``needs``: the weakening this change is (a key of
    :data:`FLAGS`), or ""; ``impossible``: why no flag can allow it, or ""."""

    bucket: str
    kind: Kind
    summary: str
    needs: str = ""
    impossible: str = ""
    payload: Any = field(default=None, compare=False, repr=False)
    #: for policy-put over an existing policy: its exact diff per class of callers
    diff: BucketDiff | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        return f"~ bucket {self.bucket}: {self.summary}"

    def diff_lines(self) -> list[str]:
        out = []
        for e in self.diff.entries if self.diff is not None else ():
            counts = [
                (len(e.allowed.new_access), "newly allowed"),
                (len(e.allowed.removed_access), "no longer allowed"),
                (len(e.denied.new_access), "newly denied"),
                (len(e.denied.removed_access), "no longer denied"),
            ]
            shown = ", ".join(f"{n} {what}" for n, what in counts if n)
            out.append(f"    principal {e.principal}: {shown} (region(s))")
        return out

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"bucket": self.bucket, "action": self.kind, "summary": self.summary}
        if self.diff is not None:
            out["policy_diff"] = self.diff.to_json()
        if self.needs:
            out["needs_flag"] = f"{FLAGS[self.needs]} {self.bucket}"
        if self.impossible:
            out["impossible"] = self.impossible
        return out


@dataclass(frozen=True)
class BucketPlan:
    changes: tuple[BucketChange, ...] = ()
    #: changes a flag must allow, or that no flag can allow
    refused: tuple[BucketChange, ...] = ()
    missing_buckets: tuple[str, ...] = ()
    missing_users: tuple[str, ...] = ()  # user:NAME principals the account does not have

    @property
    def empty(self) -> bool:
        return not self.changes and not self.blocked

    @property
    def blocked(self) -> bool:
        return bool(self.refused or self.missing_buckets or self.missing_users)

    def to_json(self) -> dict[str, Any]:
        return {
            "changes": [c.to_json() for c in self.changes],
            "refused": [c.to_json() for c in self.refused],
            "missing_buckets": list(self.missing_buckets),
            "missing_users": list(self.missing_users),
        }

    def lines(self) -> list[str]:
        out = [
            f"! bucket {b} does not exist in the account; apply refuses to run"
            for b in self.missing_buckets
        ]
        out += [
            f"! user:{u} (a principal of a bucket) does not exist in the account; apply refuses to run"
            for u in self.missing_users
        ]
        for c in self.refused:
            why = c.impossible or f"refused without {FLAGS[c.needs]} {c.bucket}"
            out.append(f"! bucket {c.bucket}: {c.summary}: {why}")
        for c in self.changes:
            out.append(c.describe())
            out += c.diff_lines()
        return out


# --------------------------------------------------------------------------- planning


def _versioning(b: BucketSpec, current: str | None) -> list[BucketChange]:
    want = b.versioning
    if want is None:
        return []
    if want == "enabled" and current != "Enabled":
        return [
            BucketChange(
                b.name,
                "versioning",
                f"enable versioning (now {current or 'off'})",
                payload="Enabled",
            )
        ]
    if want in ("suspended", "off") and current == "Enabled":
        note = "" if want == "suspended" else " (versioning cannot return to off once enabled)"
        return [
            BucketChange(
                b.name,
                "versioning",
                f"suspend versioning{note}: new writes then replace objects for good",
                needs="suspend-versioning",
                payload="Suspended",
            )
        ]
    if want == "suspended" and current is None:
        return [
            BucketChange(b.name, "versioning", "set versioning to Suspended", payload="Suspended")
        ]
    return []  # off and never enabled, or off and already suspended


def _retention(b: BucketSpec, oss: OssApi) -> list[BucketChange]:
    want = b.retention_days
    if want is None:
        return []
    cur = oss.get_worm(b.name)
    if cur is None:
        return [
            BucketChange(
                b.name,
                "retention-create",
                f"create and lock a {want}-day retention policy",
                payload=want,
            )
        ]
    if cur.locked:
        if cur.retention_days < want:
            return [
                BucketChange(
                    b.name,
                    "retention-extend",
                    f"extend the locked retention policy from {cur.retention_days} to {want} days",
                    payload=(cur.worm_id, want),
                )
            ]
        if cur.retention_days > want:
            return [
                BucketChange(
                    b.name,
                    "retention-replace",
                    f"shorten the locked retention policy from {cur.retention_days} to {want} days",
                    impossible="a locked retention policy can never be shortened (OSS refuses it)",
                )
            ]
        return []
    if cur.retention_days == want:
        return [
            BucketChange(
                b.name,
                "retention-lock",
                f"lock the {want}-day retention policy",
                payload=cur.worm_id,
            )
        ]
    return [
        BucketChange(
            b.name,
            "retention-replace",
            f"abort the unlocked {cur.retention_days}-day retention policy and lock a {want}-day one",
            needs="abort-retention",
            payload=want,
        )
    ]


def _overwrite(
    b: BucketSpec, oss: OssApi, account: str, uids: Mapping[str, str]
) -> list[BucketChange]:
    if b.overwrite_protection is None:
        return []
    want = [
        OverwriteRule(
            r.prefix,
            r.suffix,
            tuple(_uid(bucket_principal(p, account), uids) for p in r.principals),
        )
        for r in b.overwrite_protection
    ]
    cur = oss.get_overwrite_config(b.name)

    def key(r: OverwriteRule) -> tuple[str, str, tuple[str, ...]]:
        return r.prefix, r.suffix, tuple(sorted(r.principals))

    have, need = {key(r) for r in cur}, {key(r) for r in want}
    if have == need:
        return []
    removed = have - need
    if not want:
        return [
            BucketChange(
                b.name,
                "overwrite-delete",
                f"remove all {len(cur)} overwrite-protection rule(s)",
                needs="remove-overwrite-protection",
            )
        ]
    return [
        BucketChange(
            b.name,
            "overwrite-put",
            f"set {len(want)} overwrite-protection rule(s)"
            + (f", removing {len(removed)}" if removed else ""),
            needs="remove-overwrite-protection" if removed else "",
            payload=want,
        )
    ]


def _replication(b: BucketSpec, oss: OssApi, location: str) -> list[BucketChange]:
    if b.replication is None:
        return []
    cur = oss.get_replication(b.name)

    def key(target: str, prefixes: Sequence[str]) -> tuple[str, tuple[str, ...]]:
        return target, tuple(sorted(p for p in prefixes if p))

    have = {key(r.destination_bucket, r.prefixes): r for r in cur}
    out: list[BucketChange] = []
    wanted = set()
    for r in b.replication:
        k = key(r.target, (r.prefix,))
        wanted.add(k)
        if k not in have:
            rule = ReplicationRule(r.target, r.location or location, prefixes=k[1])
            where = f" (prefix {r.prefix!r})" if r.prefix else ""
            out.append(
                BucketChange(
                    b.name, "replication-add", f"replicate to {r.target}{where}", payload=rule
                )
            )
    for k, rule in have.items():
        if k not in wanted:
            out.append(
                BucketChange(
                    b.name,
                    "replication-remove",
                    f"remove the replication rule {rule.rule_id} to {rule.destination_bucket}",
                    needs="remove-replication",
                    payload=rule.rule_id,
                )
            )
    return out


def _lifecycle(b: BucketSpec, oss: OssApi) -> list[BucketChange]:
    if b.lifecycle is None:
        return []
    want = [
        LifecycleRule(f"permgen-{i}", r.prefix, True, r.expire_days)
        for i, r in enumerate(b.lifecycle)
    ]
    cur = oss.get_lifecycle(b.name)

    def key(r: LifecycleRule) -> str:
        return repr((r.prefix, r.enabled, r.expiration_days, r.noncurrent_expiration_days))

    if sorted(map(key, cur)) == sorted(map(key, want)):
        return []
    if not want:
        return [
            BucketChange(b.name, "lifecycle-delete", f"remove all {len(cur)} lifecycle rule(s)")
        ]
    shown = ", ".join(f"{r.prefix or '(all)'} after {r.expiration_days} days" for r in want)
    return [
        BucketChange(b.name, "lifecycle-put", f"set lifecycle rules: expire {shown}", payload=want)
    ]


def _canonical(policy: BucketPolicy) -> str:
    return json.dumps(policy.to_json(), sort_keys=True)


def _policy(b: BucketSpec, want: BucketPolicy | None, oss: OssApi) -> list[BucketChange]:
    if b.policy is None:
        return []
    cur_text = oss.get_bucket_policy(b.name)
    if not b.policy:
        if cur_text is None:
            return []
        return [
            BucketChange(
                b.name, "policy-delete", "delete the bucket policy", needs="delete-bucket-policy"
            )
        ]
    assert want is not None
    diff = None
    if cur_text is not None:
        try:
            current = parse_bucket_policy(cur_text)
        except PolicyParseError:
            current = None
        if current is not None:
            if _canonical(current) == _canonical(want):
                return []
            diff = diff_bucket_policies(current, want)
    verb = "put" if cur_text is None else "replace"
    return [
        BucketChange(
            b.name,
            "policy-put",
            f"{verb} the bucket policy ({len(want.statements)} statement(s))",
            payload=bucket_policy_text(want),
            diff=diff,
        )
    ]


def _uid(principal: str, uids: Mapping[str, str]) -> str:
    return (
        uids.get(principal[len("user:") :], principal)
        if principal.startswith("user:")
        else principal
    )


def plan_buckets(
    compiled: CompiledSpec,
    oss: OssApi,
    user_id: Callable[[str], str | None],
    *,
    allow: Mapping[str, Sequence[str]] | None = None,
    location: str = "oss-cn-hangzhou",
) -> BucketPlan:
    """What :func:`apply_buckets` would change. ``user_id``: a RAM user's UID by name (None
    when there is no such user); ``allow``: for each key of :data:`FLAGS`, the buckets whose
    weakening change of that kind the caller allows; ``location``: the region of a
    replication target the spec does not give one for. Changes nothing."""
    allow = allow or {}
    spec = compiled.spec
    existing = set(oss.list_buckets())
    names: list[str] = []
    for b in spec.buckets.values():
        policy = compiled.buckets.get(b.name)
        names += unresolved_users(policy) if policy is not None else []
        for r in b.overwrite_protection or ():
            names += [p[len("user:") :] for p in r.principals if p.startswith("user:")]
    uids: dict[str, str] = {}
    missing_users: list[str] = []
    for n in dict.fromkeys(names):
        uid = user_id(n)
        if uid is None:
            missing_users.append(n)
        else:
            uids[n] = uid
    changes: list[BucketChange] = []
    refused: list[BucketChange] = []
    missing = [b for b in spec.buckets if b not in existing]
    for b in spec.buckets.values():
        if b.name in missing:
            continue
        policy = compiled.buckets.get(b.name)
        if policy is not None and not missing_users:
            policy = resolve_users(policy, uids)
        found = (
            _versioning(b, oss.get_bucket_versioning(b.name) if b.versioning is not None else None)
            + _retention(b, oss)
            + (_overwrite(b, oss, spec.account, uids) if not missing_users else [])
            + _replication(b, oss, location)
            + _lifecycle(b, oss)
            + (_policy(b, policy, oss) if not missing_users else [])
        )
        for c in found:
            if c.impossible or (c.needs and b.name not in allow.get(c.needs, ())):
                refused.append(c)
            else:
                changes.append(c)
    changes.sort(key=lambda c: _ORDER[c.kind])  # stable: bucket order within a rank
    return BucketPlan(tuple(changes), tuple(refused), tuple(missing), tuple(missing_users))


# --------------------------------------------------------------------------- applying


def apply_buckets(
    oss: OssApi, planned: BucketPlan, done: list[BucketChange] | None = None
) -> list[BucketChange]:
    """Carry out a bucket plan in its order; a blocked plan raises :class:`InputError` before
    any write. Stops at the first error, which is raised (``done`` holds what took effect)."""
    if planned.blocked:
        raise InputError(blocked_message(planned))
    out = done if done is not None else []
    for c in planned.changes:
        b = c.bucket
        if c.kind == "versioning":
            oss.put_bucket_versioning(b, c.payload)
        elif c.kind == "retention-create":
            oss.complete_worm(b, oss.initiate_worm(b, c.payload))
        elif c.kind == "retention-lock":
            oss.complete_worm(b, c.payload)
        elif c.kind == "retention-extend":
            oss.extend_worm(b, c.payload[0], c.payload[1])
        elif c.kind == "retention-replace":
            oss.abort_worm(b)
            oss.complete_worm(b, oss.initiate_worm(b, c.payload))
        elif c.kind == "overwrite-put":
            oss.put_overwrite_config(b, c.payload)
        elif c.kind == "overwrite-delete":
            oss.delete_overwrite_config(b)
        elif c.kind == "replication-add":
            oss.put_replication(b, c.payload)
        elif c.kind == "replication-remove":
            oss.delete_replication(b, c.payload)
        elif c.kind == "lifecycle-put":
            oss.put_lifecycle(b, c.payload)
        elif c.kind == "lifecycle-delete":
            oss.delete_lifecycle(b)
        elif c.kind == "policy-put":
            oss.put_bucket_policy(b, c.payload)
        else:
            oss.delete_bucket_policy(b)
        out.append(c)
    return out


def blocked_message(planned: BucketPlan) -> str:
    if planned.missing_buckets:
        return f"bucket {planned.missing_buckets[0]} does not exist in the account; create it or take it out of the spec. Nothing was changed"
    if planned.missing_users:
        return f"user:{planned.missing_users[0]} (a bucket principal) does not exist in the account. Nothing was changed"
    c = planned.refused[0]
    why = c.impossible or f"name the change with {FLAGS[c.needs]} {c.bucket} to allow it"
    more = (
        f" (and {len(planned.refused) - 1} more refused change(s))"
        if len(planned.refused) > 1
        else ""
    )
    return f"bucket {c.bucket}: {c.summary}: {why}{more}. Nothing was changed"


__all__ = [
    "FLAGS",
    "BucketChange",
    "BucketPlan",
    "apply_buckets",
    "blocked_message",
    "plan_buckets",
]
