"""``permgen audit``: who can destroy which data for good.

Two parts: :func:`read_snapshot` reads the account (RAM principals, groups, roles with their
trust policies, attached policies; every bucket's protections, policy and ACL) into a frozen,
JSON-serialisable :class:`Snapshot`; :func:`audit` decides the findings from a snapshot
alone (pure, no I/O), so an audit is reproducible offline.

Every finding is decided by the evaluator (:class:`CombinedEvaluator`: identity policies and
the bucket policy together) on a concrete witness request, and reported only when that
request is allowed. Witness keys come from the resource patterns of the statements that
could allow the action (a ``logs-raw/tmp/*`` grant is tried on ``logs-raw/tmp/example``);
a statement's conditions are satisfied with sample values, which the witness shows
(conditions narrow a finding, they do not remove it). So a finding is never a guess; a
grant the witnesses miss (a ``NotResource`` allow that excludes every tried key, say) is
not reported.

Escalation is a breadth-first search over what a principal can make itself into (attach a
policy, write a new version of an attached policy, join a group, take over another user's
keys, rewrite a role's trust, assume a role whose trust names it and for which it holds
``sts:AssumeRole``), bounded by :data:`MAX_DEPTH` and :data:`MAX_STATES`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from permgen.account.oss import LifecycleRule, OssApi, OverwriteRule, ReplicationRule, WormConfig
from permgen.account.types import Principal, RamApi
from permgen.errors import CloudError, InputError, PolicyParseError
from permgen.policy.model import Policy, Statement, parse_policy
from permgen.policy.wildcard import match
from permgen.semantics.bucket_policy import (
    BucketPolicy,
    Caller,
    CombinedDecision,
    CombinedEvaluator,
    parse_bucket_policy,
)
from permgen.semantics.conditions import CompiledCondition, MissingKey
from permgen.semantics.evaluate import Evaluator, Request, _sample_values

SNAPSHOT_VERSION = 1
#: The largest snapshot file permgen loads, in bytes.
SNAPSHOT_LIMIT = 64 * 1024 * 1024
#: Escalation: steps followed from a principal, and states visited per principal, at most.
MAX_DEPTH = 4
MAX_STATES = 2000
#: Witness keys tried per (principal, bucket, action), at most.
MAX_WITNESSES = 64

KINDS = (
    "irrecoverable-delete",
    "irrecoverable-overwrite",
    "version-purge",
    "protection-removal",
    "escalation",
    "public-write",
    "public-read",
    "cross-account",
)
SEVERITY = {
    "irrecoverable-delete": "critical",
    "irrecoverable-overwrite": "critical",
    "version-purge": "high",
    "protection-removal": "high",
    "escalation": "critical",
    "public-write": "critical",
    "public-read": "high",
    "cross-account": "medium",
}
SEVERITY_RANK = {"critical": 0, "high": 1, "medium": 2, "low": 3}

DELETE_ACTIONS = ("oss:DeleteObject",)
#: PostObject, CopyObject, AppendObject and multipart uploads are authorized as PutObject.
OVERWRITE_ACTIONS = ("oss:PutObject",)
READ_ACTIONS = ("oss:GetObject", "oss:ListObjects")
PROTECTION_ACTIONS = (
    "oss:PutBucketVersioning",
    "oss:PutBucketLifecycle",
    "oss:PutBucketReplication",
    "oss:DeleteBucketReplication",
    "oss:PutBucketOverwriteConfig",
    "oss:DeleteBucketOverwriteConfig",
    "oss:AbortBucketWorm",
    "oss:PutBucketPolicy",
    "oss:DeleteBucketPolicy",
    "oss:PutBucketAcl",
)
#: What a bucket ACL grants everyone (docs/unconfirmed.md: the actions a public ACL covers).
ACL_GRANTS = {
    "public-read": frozenset(READ_ACTIONS),
    "public-read-write": frozenset(READ_ACTIONS + DELETE_ACTIONS + OVERWRITE_ACTIONS),
}
ADMIN_POLICY = "(any policy: it can write one)"
#: System policies every account has, read into the snapshot for the escalation search.
ESCALATION_SYSTEM_POLICIES = ("AdministratorAccess", "AliyunOSSFullAccess")


def _fail(where: str, why: str) -> InputError:
    return InputError(f"snapshot: {where}: {why}")


# ---------------------------------------------------------------------------- snapshot


@dataclass(frozen=True)
class UserSnap:
    name: str
    user_id: str = ""
    groups: tuple[str, ...] = ()
    policies: tuple[str, ...] = ()  # "Custom:name" / "System:name"


@dataclass(frozen=True)
class GroupSnap:
    name: str
    policies: tuple[str, ...] = ()


@dataclass(frozen=True)
class RoleSnap:
    name: str
    trust: str = ""  # the trust policy's JSON text
    policies: tuple[str, ...] = ()


@dataclass(frozen=True)
class BucketSnap:
    name: str
    region: str = ""  # "cn-hangzhou" ("" unknown: witnesses then name the region "*")
    acl: str = "private"
    versioning: str | None = None
    block_public_access: bool = False
    policy: str | None = None  # the bucket policy's JSON text
    worm: WormConfig | None = None
    replication: tuple[ReplicationRule, ...] = ()
    lifecycle: tuple[LifecycleRule, ...] = ()
    overwrite: tuple[OverwriteRule, ...] = ()


@dataclass(frozen=True)
class Snapshot:
    """The account as the audit sees it; ``policies`` maps "Type:name" to its document."""

    account: str
    users: tuple[UserSnap, ...] = ()
    groups: tuple[GroupSnap, ...] = ()
    roles: tuple[RoleSnap, ...] = ()
    policies: Mapping[str, str] = field(default_factory=dict)
    buckets: tuple[BucketSnap, ...] = ()
    version: int = SNAPSHOT_VERSION

    def to_json(self) -> dict[str, Any]:
        def bucket(b: BucketSnap) -> dict[str, Any]:
            return {
                "name": b.name,
                "region": b.region,
                "acl": b.acl,
                "versioning": b.versioning,
                "block_public_access": b.block_public_access,
                "policy": b.policy,
                "worm": None
                if b.worm is None
                else {
                    "worm_id": b.worm.worm_id,
                    "state": b.worm.state,
                    "retention_days": b.worm.retention_days,
                },
                "replication": [
                    {
                        "rule_id": r.rule_id,
                        "destination_bucket": r.destination_bucket,
                        "destination_location": r.destination_location,
                        "action": r.action,
                        "prefixes": list(r.prefixes),
                        "status": r.status,
                    }
                    for r in b.replication
                ],
                "lifecycle": [
                    {
                        "rule_id": r.rule_id,
                        "prefix": r.prefix,
                        "enabled": r.enabled,
                        "expiration_days": r.expiration_days,
                        "noncurrent_expiration_days": r.noncurrent_expiration_days,
                    }
                    for r in b.lifecycle
                ],
                "overwrite": [
                    {
                        "rule_id": r.rule_id,
                        "prefix": r.prefix,
                        "suffix": r.suffix,
                        "principals": list(r.principals),
                    }
                    for r in b.overwrite
                ],
            }

        return {
            "version": self.version,
            "account": self.account,
            "users": [
                {
                    "name": u.name,
                    "user_id": u.user_id,
                    "groups": list(u.groups),
                    "policies": list(u.policies),
                }
                for u in self.users
            ],
            "groups": [{"name": g.name, "policies": list(g.policies)} for g in self.groups],
            "roles": [
                {"name": r.name, "trust": r.trust, "policies": list(r.policies)} for r in self.roles
            ],
            "policies": dict(sorted(self.policies.items())),
            "buckets": [bucket(b) for b in self.buckets],
        }

    @classmethod
    def from_json(cls, doc: Any) -> Snapshot:
        """Validate the shape; InputError names the first problem."""
        r = _Reader(doc, "the snapshot")
        version = r.int_("version")
        if version != SNAPSHOT_VERSION:
            raise _fail("version", f"{version} is not a snapshot version permgen reads (1)")
        policies = r.get("policies", dict)
        for k, v in policies.items():
            if not isinstance(v, str):
                raise _fail(f"policies.{k}", "a policy document must be a JSON string")
        users = tuple(
            UserSnap(u.str_("name"), u.str_("user_id"), u.strs("groups"), u.strs("policies"))
            for u in r.items("users")
        )
        groups = tuple(GroupSnap(g.str_("name"), g.strs("policies")) for g in r.items("groups"))
        roles = tuple(
            RoleSnap(x.str_("name"), x.str_("trust"), x.strs("policies")) for x in r.items("roles")
        )
        buckets = []
        for b in r.items("buckets"):
            worm = b.get("worm", (dict, type(None)))
            w = None
            if worm is not None:
                wr = _Reader(worm, f"{b.where}.worm")
                w = WormConfig(wr.str_("worm_id"), wr.str_("state"), wr.int_("retention_days"))
            buckets.append(
                BucketSnap(
                    name=b.str_("name"),
                    region=b.str_("region"),
                    acl=b.str_("acl"),
                    versioning=b.get("versioning", (str, type(None))),
                    block_public_access=b.get("block_public_access", bool),
                    policy=b.get("policy", (str, type(None))),
                    worm=w,
                    replication=tuple(
                        ReplicationRule(
                            x.str_("destination_bucket"),
                            x.str_("destination_location"),
                            x.str_("rule_id"),
                            x.str_("action"),
                            x.strs("prefixes"),
                            x.str_("status"),
                        )
                        for x in b.items("replication")
                    ),
                    lifecycle=tuple(
                        LifecycleRule(
                            x.str_("rule_id"),
                            x.str_("prefix"),
                            x.get("enabled", bool),
                            x.get("expiration_days", (int, type(None))),
                            x.get("noncurrent_expiration_days", (int, type(None))),
                        )
                        for x in b.items("lifecycle")
                    ),
                    overwrite=tuple(
                        OverwriteRule(
                            x.str_("prefix"),
                            x.str_("suffix"),
                            x.strs("principals"),
                            x.str_("rule_id"),
                        )
                        for x in b.items("overwrite")
                    ),
                )
            )
        return cls(
            account=r.str_("account"),
            users=users,
            groups=groups,
            roles=roles,
            policies=dict(policies),
            buckets=tuple(buckets),
            version=version,
        )


class _Reader:
    """Typed access to one JSON object of a snapshot, naming where a problem is."""

    def __init__(self, doc: Any, where: str) -> None:
        if not isinstance(doc, dict):
            raise _fail(where, "a JSON object is expected")
        self.doc = doc
        self.where = where

    def get(self, key: str, types: Any) -> Any:
        if key not in self.doc:
            raise _fail(self.where, f'"{key}" is missing')
        value = self.doc[key]
        if isinstance(value, bool) and types is int:
            raise _fail(f"{self.where}.{key}", "a whole number is expected")
        if not isinstance(value, types):
            raise _fail(f"{self.where}.{key}", f"unexpected {type(value).__name__}")
        return value

    def str_(self, key: str) -> str:
        value: str = self.get(key, str)
        return value

    def int_(self, key: str) -> int:
        value: int = self.get(key, int)
        return value

    def strs(self, key: str) -> tuple[str, ...]:
        value = self.get(key, list)
        if not all(isinstance(v, str) for v in value):
            raise _fail(f"{self.where}.{key}", "a list of strings is expected")
        return tuple(value)

    def items(self, key: str) -> list[_Reader]:
        value = self.get(key, list)
        return [_Reader(v, f"{self.where}.{key}[{i}]") for i, v in enumerate(value)]


def save_snapshot(snapshot: Snapshot, path: str) -> None:
    """Write the snapshot atomically (it holds no secret: policies and settings only)."""
    from permgen._internal.fileio import atomic_write

    atomic_write(path, json.dumps(snapshot.to_json(), indent=1, sort_keys=True) + "\n")


def load_snapshot(path: str) -> Snapshot:
    """Read a snapshot file; InputError (exit 2) when it is missing, too big or malformed."""
    from permgen._internal.safejson import JsonLimitError, loads

    try:
        with open(path, "rb") as fh:
            data = fh.read(SNAPSHOT_LIMIT + 1)
    except OSError as exc:
        raise InputError(f"{path}: cannot read the snapshot: {exc.strerror}") from None
    if len(data) > SNAPSHOT_LIMIT:
        raise InputError(f"{path}: the snapshot is over {SNAPSHOT_LIMIT} bytes")
    try:
        doc = loads(data.decode("utf-8"), numbers="python")
    except UnicodeDecodeError:
        raise InputError(f"{path}: the snapshot is not UTF-8 text") from None
    except (JsonLimitError, ValueError) as exc:
        raise InputError(f"{path}: the snapshot is not valid JSON: {exc}") from None
    try:
        return Snapshot.from_json(doc)
    except InputError as exc:
        raise InputError(f"{path}: {exc.message}") from None


def read_snapshot(ram: RamApi, oss: OssApi, account: str) -> Snapshot:
    """Read everything the audit needs through the RAM and OSS interfaces."""
    policies: dict[str, str] = {}

    def attached(p: Principal) -> tuple[str, ...]:
        out = []
        for a in ram.list_policies_for(p):
            key = f"{a.policy_type}:{a.policy_name}"
            if key not in policies:
                policies[key] = ram.get_policy(a.policy_name, a.policy_type).default_document
            out.append(key)
        return tuple(sorted(out))

    users = tuple(
        UserSnap(
            name,
            uid,
            tuple(sorted(ram.list_groups_for_user(name))),
            attached(Principal("user", name)),
        )
        for name, uid in sorted(ram.list_users())
    )
    groups = tuple(
        GroupSnap(name, attached(Principal("group", name))) for name in sorted(ram.list_groups())
    )
    roles = tuple(
        RoleSnap(name, ram.get_role_trust(name), attached(Principal("role", name)))
        for name in sorted(ram.list_roles())
    )
    # a principal that may attach policies may attach these system policies, which every
    # account has: the escalation search counts them among "any policy in the account"
    for name in ESCALATION_SYSTEM_POLICIES:
        key = f"System:{name}"
        if key not in policies:
            try:
                policies[key] = ram.get_policy(name, "System").default_document
            except CloudError as exc:
                if not exc.code.startswith("EntityNotExist"):
                    raise
    for info in ram.list_policies("Custom"):
        key = f"Custom:{info.policy_name}"
        if key not in policies:
            policies[key] = ram.get_policy(info.policy_name, "Custom").default_document
    buckets = []
    for name in sorted(oss.list_buckets()):
        location = oss.get_bucket_info(name).location
        buckets.append(
            BucketSnap(
                name=name,
                region=location.removeprefix("oss-"),
                acl=oss.get_bucket_acl(name),
                versioning=oss.get_bucket_versioning(name),
                block_public_access=oss.get_public_access_block(name),
                policy=oss.get_bucket_policy(name),
                worm=oss.get_worm(name),
                replication=tuple(oss.get_replication(name)),
                lifecycle=tuple(oss.get_lifecycle(name)),
                overwrite=tuple(oss.get_overwrite_config(name)),
            )
        )
    return Snapshot(account, users, groups, roles, policies, tuple(buckets))


# ---------------------------------------------------------------------------- findings


@dataclass(frozen=True)
class Witness:
    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {"action": self.action, "resource": self.resource, "context": dict(self.context)}


@dataclass(frozen=True)
class Finding:
    kind: str
    principal: str
    bucket: str | None
    resources: tuple[str, ...]
    path: tuple[str, ...]
    witness: Witness
    why: str
    fix: str
    conditions: tuple[str, ...] = ()

    @property
    def severity(self) -> str:
        return SEVERITY[self.kind]

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "severity": self.severity,
            "principal": self.principal,
            "bucket": self.bucket,
            "resources": list(self.resources),
            "path": list(self.path),
            "witness": self.witness.to_json(),
            "conditions": list(self.conditions),
            "why": self.why,
            "fix": self.fix,
        }


@dataclass(frozen=True)
class AuditReport:
    account: str
    findings: tuple[Finding, ...]
    notes: tuple[str, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "findings": [f.to_json() for f in self.findings],
            "notes": list(self.notes),
        }

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}


def sort_key(f: Finding) -> tuple[Any, ...]:
    return (SEVERITY_RANK[f.severity], KINDS.index(f.kind), f.bucket or "", f.principal, f.path)


# ---------------------------------------------------------------------------- the engine


@dataclass(frozen=True)
class _Source:
    """One policy a subject holds, and how it holds it (``via``: "group:x", "" directly)."""

    policy: Policy
    via: str
    key: str = ""  # "Custom:name" / "System:name" ("" for the escalation's any-policy)


@dataclass(frozen=True)
class _Subject:
    """Who asks: a name for findings, the identity policies, the bucket-policy caller."""

    name: str
    caller: Caller
    sources: tuple[_Source, ...] = ()
    steps: tuple[str, ...] = ()  # escalation steps that led here

    @property
    def policies(self) -> list[Policy]:
        return [s.policy for s in self.sources]


def _parse(key: str, text: str, notes: list[str]) -> Policy | None:
    try:
        return parse_policy(text, source=key.split(":", 1)[1])
    except PolicyParseError as exc:
        notes.append(f"policy {key} does not parse and is left out: {exc.message}")
        return None


class _Account:
    """A snapshot compiled for the audit."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.notes: list[str] = []
        self.policies: dict[str, Policy] = {}
        for key, text in sorted(snap.policies.items()):
            p = _parse(key, text, self.notes)
            if p is not None:
                self.policies[key] = p
        self.groups = {g.name: g for g in snap.groups}
        self.users = {u.name: u for u in snap.users}
        self.roles = {r.name: r for r in snap.roles}
        self.buckets = {b.name: b for b in snap.buckets}
        self.bucket_policies: dict[str, BucketPolicy | None] = {}
        for b in snap.buckets:
            bp = None
            if b.policy:
                try:
                    bp = parse_bucket_policy(b.policy, source=f"bucket-policy {b.name}")
                except PolicyParseError as exc:
                    self.notes.append(
                        f"the bucket policy of {b.name} does not parse and is left out: "
                        f"{exc.message}"
                    )
            self.bucket_policies[b.name] = bp

    def sources(self, keys: Iterable[str], via: str) -> list[_Source]:
        return [_Source(self.policies[k], via, k) for k in keys if k in self.policies]

    def user(self, name: str, steps: tuple[str, ...] = ()) -> _Subject:
        u = self.users[name]
        src = self.sources(u.policies, "")
        for g in u.groups:
            if g in self.groups:
                src += self.sources(self.groups[g].policies, f"group:{g}")
        return _Subject(
            f"user:{name}", Caller((u.user_id,) if u.user_id else ()), tuple(src), steps
        )

    def group(self, name: str) -> _Subject:
        return _Subject(
            f"group:{name}", Caller(()), tuple(self.sources(self.groups[name].policies, ""))
        )

    def role(self, name: str, steps: tuple[str, ...] = ()) -> _Subject:
        session = f"arn:sts::{self.snap.account}:assumed-role/{name}/permgen-audit"
        return _Subject(
            f"role:{name}",
            Caller((session,)),
            tuple(self.sources(self.roles[name].policies, "")),
            steps,
        )

    def subjects(self) -> list[_Subject]:
        out = [self.user(u.name) for u in self.snap.users]
        out += [self.group(g.name) for g in self.snap.groups]
        out += [self.role(r.name) for r in self.snap.roles]
        return out

    def outsiders(self) -> list[_Subject]:
        """Anonymous callers, and each other account a bucket policy names."""
        out = [_Subject("anonymous", Caller.anonymous_caller())]
        known = {self.snap.account} | {u.user_id for u in self.snap.users if u.user_id}
        others: set[str] = set()
        for bp in self.bucket_policies.values():
            for bs in bp.statements if bp else ():
                for p in bs.principals:
                    if p.isdigit() and p not in known:
                        others.add(p)
        out += [_Subject(f"account:{uid}", Caller((uid,))) for uid in sorted(others)]
        return out


def _arn(account: str, bucket: BucketSnap, key: str | None = None) -> str:
    """A request's resource: the bucket's region (``*`` when unknown) and owner."""
    region = bucket.region or "*"
    return f"acs:oss:{region}:{account}:{bucket.name}" + ("" if key is None else f"/{key}")


def _instantiate(text: str) -> str:
    return text.replace("*", "example").replace("?", "x")


def _candidate_keys(statements: Iterable[Statement], bucket: str) -> list[str]:
    """Keys in ``bucket`` that the statements' resource patterns name (wildcards filled)."""
    keys = ["example"]
    for st in statements:
        for pattern in st.resources:
            rest = pattern.split(":", 4)[4] if pattern.count(":") >= 4 else pattern
            bpat, sep, kpat = rest.partition("/")
            if not sep or not match(bpat, bucket):
                continue
            key = _instantiate(kpat)
            if key and key not in keys:
                keys.append(key)
    return keys[:MAX_WITNESSES]


def _contexts(statements: Iterable[Statement]) -> list[dict[str, str]]:
    """The empty context, then for each conditioned statement one context satisfying all of
    its conditions with sample values (when one is found)."""
    out: list[dict[str, str]] = [{}]
    for st in statements:
        if not st.conditions:
            continue
        ctx: dict[str, str] = {}
        ok = True
        for c in st.conditions:
            cc = CompiledCondition(c.operator, c.key, c.values)
            if cc.truth(None, MissingKey.NEGATED_TRUE):
                continue
            value = next(
                (
                    v
                    for v in _sample_values(c.operator, c.values)
                    if cc.truth(v, MissingKey.NEGATED_TRUE)
                ),
                None,
            )
            if value is None:
                ok = False
                break
            ctx[c.key] = value
        if ok and ctx and ctx not in out:
            out.append(ctx)
    return out


def _acl_allows(bucket: BucketSnap, subject: _Subject, action: str) -> bool:
    """A public ACL grants everyone; it is reported once, for ``anonymous`` (every other
    caller has it too)."""
    if bucket.block_public_access or not subject.caller.anonymous:
        return False
    return action in ACL_GRANTS.get(bucket.acl, frozenset())


@dataclass(frozen=True)
class _Hit:
    witness: Witness
    decision: CombinedDecision | None  # None: the ACL allowed it
    conditions: tuple[str, ...]


def _state_key(s: _Subject) -> tuple[Any, ...]:
    """What decides a subject's requests: who it is and which policies it holds (computed
    once per subject: it keys every memo and is asked for hundreds of thousands of times)."""
    got: tuple[Any, ...] | None = s.__dict__.get("_state_key")
    if got is None:
        got = (s.name, frozenset(x.policy.name for x in s.sources))
        s.__dict__["_state_key"] = got  # a cache beside the frozen fields, not a field
    return got


def _may_name(st: Statement, bucket: str) -> bool:
    """Whether an Allow statement could cover something in ``bucket`` (a quick, generous
    filter: the evaluator decides; this only skips pairs nothing could allow)."""
    if st.not_resource:
        return True
    for pattern in st.resources:
        parts = pattern.split(":", 4)
        if len(parts) < 5:
            return True  # "*" and other short patterns
        if not match(parts[1], "oss", ignore_case=True):
            continue
        bpat = parts[4].partition("/")[0]
        if "*" in bpat or "?" in bpat or bpat == bucket:
            return True
    return False


@dataclass
class _Prepared:
    """One (subject state, bucket), compiled once for every action asked."""

    evaluator: CombinedEvaluator | None  # None when nothing is relevant
    statements: list[Statement]
    keys: list[str]
    contexts: list[dict[str, str]]
    relevant: bool


class _Judge:
    """Decides (subject, bucket, action) with witnesses; what is decided for a subject state
    is kept, so a role reached from many principals is decided once."""

    def __init__(self, acct: _Account) -> None:
        self.acct = acct
        self._prepared: dict[tuple[Any, ...], _Prepared] = {}
        self._hits: dict[tuple[Any, ...], _Hit | None] = {}

    def _prepare(self, subject: _Subject, bucket: str) -> _Prepared:
        key = (_state_key(subject), bucket)
        got = self._prepared.get(key)
        if got is None:
            statements = self._statements(subject, bucket)
            relevant = any(_may_name(st, bucket) for st in statements) or (
                subject.caller.anonymous and bucket in self.acct.buckets
            )
            if not relevant:  # nothing could allow anything here: nothing to compile
                got = self._prepared[key] = _Prepared(None, [], [], [], False)
                return got
            bp = self.acct.bucket_policies.get(bucket)
            identity = None if subject.caller.anonymous else subject.policies
            got = self._prepared[key] = _Prepared(
                CombinedEvaluator(subject.caller, identity, bp),
                statements,
                _candidate_keys(statements, bucket),
                _contexts(statements),
                relevant,
            )
        return got

    def _statements(self, subject: _Subject, bucket: str) -> list[Statement]:
        """The Allow statements witnesses are drawn from (a Deny only removes access, so
        its patterns and conditions never make a witness)."""
        out = [st for p in subject.policies for st in p.statements]
        bp = self.acct.bucket_policies.get(bucket)
        out += [bs.statement for bs in bp.statements] if bp else []
        return [st for st in out if st.effect != "Deny"]

    def allowed(
        self,
        subject: _Subject,
        bucket: str,
        action: str,
        *,
        on_bucket: bool = False,
        keys: Sequence[str] | None = None,
    ) -> _Hit | None:
        memo = (_state_key(subject), bucket, action, on_bucket, tuple(keys or ()))
        if memo not in self._hits:
            self._hits[memo] = self._decide(subject, bucket, action, on_bucket, keys)
        return self._hits[memo]

    def _decide(
        self,
        subject: _Subject,
        bucket: str,
        action: str,
        on_bucket: bool,
        keys: Sequence[str] | None,
    ) -> _Hit | None:
        prep = self._prepare(subject, bucket)
        ev = prep.evaluator
        if ev is None:
            return None
        snap = self.acct.buckets[bucket]
        resources = (
            [_arn(self.acct.snap.account, snap)]
            if on_bucket
            else [_arn(self.acct.snap.account, snap, k) for k in (keys or prep.keys)]
        )
        contexts = prep.contexts
        for resource in resources:
            for ctx in contexts:
                d = ev.decide(Request(action, resource, ctx))
                if d.allowed:
                    conds = tuple(
                        f"{c.operator} {c.key} {list(c.values)}"
                        for s in d.statements
                        for c in s.statement.conditions
                    )
                    return _Hit(Witness(action, resource, ctx), d, conds)
        denied = any(ev.decide(Request(action, r)).kind == "explicit_deny" for r in resources[:1])
        if not denied and _acl_allows(self.acct.buckets[bucket], subject, action):
            return _Hit(Witness(action, resources[0]), None, ())
        return None

    def path(self, subject: _Subject, hit: _Hit, bucket: str, as_name: str) -> tuple[str, ...]:
        out = [as_name, *subject.steps]
        if hit.decision is None:
            out.append(f"acl {self.acct.buckets[bucket].acl} on {bucket}")
            return tuple(out)
        names = {s.policy.name: s.via for s in subject.sources}
        for ref in hit.decision.statements:
            where = names.get(ref.policy, "")
            if where and where not in out:
                out.append(where)
            out.append(
                f"{'' if ref.policy.startswith('bucket-policy') else 'policy '}{ref.policy} Statement[{ref.index}]"
            )
        return tuple(out)


def _granted(hit: _Hit, bucket: str) -> tuple[str, ...]:
    """What the allowing statements grant around the witness, as ``bucket/pattern``."""
    out: list[str] = []
    for ref in hit.decision.statements if hit.decision else ():
        st = ref.statement
        for pattern in () if st.not_resource else st.resources:
            if match(pattern, hit.witness.resource, arn=True):
                short = pattern.split(":", 4)[4] if pattern.count(":") >= 4 else pattern
                if short not in out:
                    out.append(short)
    if not out:
        out.append(f"{bucket}/*" if "/" in hit.witness.resource.split(":", 4)[4] else bucket)
    return tuple(out)


def _key_of(resource: str) -> str:
    return resource.split(":", 4)[4].partition("/")[2]


def _covered_by_prefix(key: str, prefixes: Sequence[str]) -> bool:
    return not prefixes or any(key.startswith(p) for p in prefixes)


def _keeps_deleted(judge: _Judge, subject: _Subject, b: BucketSnap, key: str) -> str | None:
    """What keeps a copy of ``key`` when ``subject`` deletes it (None: nothing)."""
    if b.versioning == "Enabled":
        return "versioning is enabled"
    if b.worm is not None and b.worm.locked and b.worm.retention_days > 0:
        return "a locked retention policy keeps objects"
    for r in b.replication:
        if r.action.upper() in ("PUT",) and _covered_by_prefix(key, r.prefixes):
            dest = judge.acct.buckets.get(r.destination_bucket)
            if dest is None:
                return f"replication keeps a copy in {r.destination_bucket} (outside the snapshot)"
            if judge.allowed(subject, dest.name, "oss:DeleteObject", keys=[key]) is None or (
                dest.versioning == "Enabled"
            ):
                return f"replication keeps a copy in {dest.name}"
    return None


def _overwrite_protected(subject: _Subject, b: BucketSnap, key: str) -> str | None:
    if b.versioning == "Enabled":
        return "versioning is enabled"
    if b.worm is not None and b.worm.locked and b.worm.retention_days > 0:
        return "a locked retention policy keeps objects"
    for r in b.overwrite:
        if not (key.startswith(r.prefix) and key.endswith(r.suffix)):
            continue
        if not r.principals or any(match(p, i) for p in r.principals for i in subject.caller.ids):
            return "an overwrite protection rule forbids it"
    return None


def _lacks(b: BucketSnap) -> str:
    parts = [
        "versioning is " + ("off" if b.versioning is None else b.versioning.lower()),
        "no locked retention policy"
        if not (b.worm and b.worm.locked)
        else "the retention policy does not cover it",
    ]
    if not any(r.action.upper() == "PUT" for r in b.replication):
        parts.append("no replication keeps a copy")
    return ", ".join(parts)


def _statement_fix(hit: _Hit, subject: _Subject) -> str:
    if subject.steps:
        return f"; or take away the first step of the path ({subject.steps[0]})"
    if hit.decision is None:
        return ""
    refs = [r for r in hit.decision.statements]
    if not refs:
        return ""
    r = refs[0]
    return f"; or remove {hit.witness.action} from {r.policy} Statement[{r.index}]"


class _Auditor:
    def __init__(self, snap: Snapshot) -> None:
        self.acct = _Account(snap)
        self.judge = _Judge(self.acct)
        self.findings: dict[tuple[Any, ...], Finding] = {}
        self._granted: dict[tuple[int, str], tuple[_Hit, tuple[str, ...]]] = {}
        self._bucket_cache: dict[tuple[Any, ...], list[tuple[str, _Hit, str, str]]] = {}
        self._move_cache: dict[tuple[Any, ...], list[tuple[str, _Subject]]] = {}

    def add(self, f: Finding | None) -> None:
        if f is None:
            return
        key = (f.kind, f.principal, f.bucket)
        old = self.findings.get(key)
        if old is None or len(f.path) < len(old.path):
            self.findings[key] = f

    # -- destructive findings of one subject, reported as ``as_name``
    def destructive(self, subject: _Subject, as_name: str) -> list[str]:
        kinds: list[str] = []
        for b in self.acct.snap.buckets:
            kinds += self._bucket(subject, as_name, b)
        return kinds

    def _finding(
        self,
        kind: str,
        as_name: str,
        subject: _Subject,
        b: BucketSnap,
        hit: _Hit,
        why: str,
        fix: str,
    ) -> Finding | None:
        """The finding, or None when :meth:`add` would keep the one it has (a path at least
        as short for the same kind, principal and bucket): nothing more is computed then."""
        path = self.judge.path(subject, hit, b.name, as_name)
        old = self.findings.get((kind, as_name, b.name))
        if old is not None and len(path) >= len(old.path):
            return None
        memo = (id(hit), b.name)  # hits live in the judge's memo, so an id names one
        got = self._granted.get(memo)
        if got is None:
            got = self._granted[memo] = (hit, _granted(hit, b.name))
        return Finding(
            kind=kind,
            principal=as_name,
            bucket=b.name,
            resources=got[1],
            path=path,
            witness=hit.witness,
            why=why,
            fix=fix,
            conditions=hit.conditions,
        )

    def _bucket(self, subject: _Subject, as_name: str, b: BucketSnap) -> list[str]:
        """The destructive findings of ``subject`` on ``b``, reported as ``as_name``. What a
        subject state can do to a bucket is decided once (escalation reaches the same states
        from many principals); only the path and the fix's first step differ per principal."""
        key = (_state_key(subject), b.name)
        cands = self._bucket_cache.get(key)
        if cands is None:
            cands = self._bucket_cache[key] = self._bucket_candidates(subject, b)
        for kind, hit, why, fix in cands:
            self.add(
                self._finding(
                    kind, as_name, subject, b, hit, why, fix + _statement_fix(hit, subject)
                )
            )
        return [c[0] for c in cands]

    def _bucket_candidates(
        self, subject: _Subject, b: BucketSnap
    ) -> list[tuple[str, _Hit, str, str]]:
        """(kind, hit, why, fix without the principal's first step) for a subject state."""
        out: list[tuple[str, _Hit, str, str]] = []
        add = out.append
        as_name = subject.name  # unused by rec: the replay names the principal

        def rec(
            kind: str, _as: str, _s: _Subject, _b: BucketSnap, hit: _Hit, why: str, fix: str
        ) -> tuple[str, _Hit, str, str]:
            return (kind, hit, why, fix)

        found: list[str] = []
        judge = self.judge
        if not judge._prepare(subject, b.name).relevant:
            return out
        hit = judge.allowed(subject, b.name, "oss:DeleteObject")
        if (
            hit is not None
            and _keeps_deleted(judge, subject, b, _key_of(hit.witness.resource)) is None
        ):
            add(
                rec(
                    "irrecoverable-delete",
                    as_name,
                    subject,
                    b,
                    hit,
                    _lacks(b),
                    f"enable versioning on {b.name} (spec: buckets.{b.name}.versioning: enabled)",
                )
            )
            found.append("irrecoverable-delete")
        hit = judge.allowed(subject, b.name, "oss:PutObject")
        if (
            hit is not None
            and _overwrite_protected(subject, b, _key_of(hit.witness.resource)) is None
        ):
            add(
                rec(
                    "irrecoverable-overwrite",
                    as_name,
                    subject,
                    b,
                    hit,
                    _lacks(b) + ", no overwrite protection rule covers it",
                    f"enable versioning on {b.name} (spec: buckets.{b.name}.versioning: enabled), "
                    "or add an overwrite protection rule for the key",
                )
            )
            found.append("irrecoverable-overwrite")
        if b.versioning is not None:
            hit = judge.allowed(subject, b.name, "oss:DeleteObjectVersion")
            locked = b.worm is not None and b.worm.locked and b.worm.retention_days > 0
            if hit is not None and not locked:
                add(
                    rec(
                        "version-purge",
                        as_name,
                        subject,
                        b,
                        hit,
                        f"{b.name} is versioned but oss:DeleteObjectVersion removes versions for good "
                        "and no locked retention policy stops it",
                        f"remove oss:DeleteObjectVersion from the grant, or lock a retention policy on {b.name}",
                    )
                )
                found.append("version-purge")
        for action in self._protection_actions(b):
            hit = judge.allowed(subject, b.name, action, on_bucket=True)
            if hit is not None:
                add(
                    rec(
                        "protection-removal",
                        as_name,
                        subject,
                        b,
                        hit,
                        f"{action} can weaken what keeps copies of {b.name}",
                        f"remove {action} from the grant (keep bucket configuration to an "
                        "administrator)",
                    )
                )
                found.append("protection-removal")
                break
        return out

    def _protection_actions(self, b: BucketSnap) -> list[str]:
        out = []
        for a in PROTECTION_ACTIONS:
            if a == "oss:PutBucketVersioning" and b.versioning != "Enabled":
                continue
            if a == "oss:DeleteBucketReplication" and not b.replication:
                continue
            if a == "oss:DeleteBucketOverwriteConfig" and not b.overwrite:
                continue
            if a == "oss:AbortBucketWorm" and (b.worm is None or b.worm.locked):
                continue
            out.append(a)
        return out

    def outsiders(self) -> None:
        for subject in self.acct.outsiders():
            for b in self.acct.snap.buckets:
                self._bucket(subject, subject.name, b)
                write = next(
                    (
                        h
                        for a in DELETE_ACTIONS + OVERWRITE_ACTIONS
                        if (h := self.judge.allowed(subject, b.name, a)) is not None
                    ),
                    None,
                )
                read = next(
                    (
                        h
                        for a in READ_ACTIONS
                        if (h := self.judge.allowed(subject, b.name, a)) is not None
                    ),
                    None,
                )
                anon = subject.caller.anonymous
                if write is not None:
                    kind = "public-write" if anon else "cross-account"
                    self.add(
                        self._finding(
                            kind,
                            subject.name,
                            subject,
                            b,
                            write,
                            f"{'anyone' if anon else subject.name} can write to {b.name}",
                            self._outsider_fix(b, write),
                        )
                    )
                elif read is not None:
                    kind = "public-read" if anon else "cross-account"
                    self.add(
                        self._finding(
                            kind,
                            subject.name,
                            subject,
                            b,
                            read,
                            f"{'anyone' if anon else subject.name} can read {b.name}",
                            self._outsider_fix(b, read),
                        )
                    )

    def _outsider_fix(self, b: BucketSnap, hit: _Hit) -> str:
        if hit.decision is None:
            return f"set the ACL of {b.name} to private, or block public access on it"
        r = hit.decision.statements[0] if hit.decision.statements else None
        where = f"{r.policy} Statement[{r.index}]" if r else "the bucket policy"
        return f"remove or narrow {where} (its Principal)"

    # -- escalation
    def escalation(self, start: _Subject) -> None:
        seen = {_state_key(start)}
        frontier = [start]
        for _depth in range(MAX_DEPTH):
            nxt: list[_Subject] = []
            for s in frontier:
                for step, reached in self._moves(s):
                    k = _state_key(reached)
                    if k in seen:
                        continue
                    if len(seen) >= MAX_STATES:
                        self.acct.notes.append(
                            f"escalation from {start.name} stopped after {MAX_STATES} states"
                        )
                        return
                    seen.add(k)
                    reached = _Subject(
                        reached.name, reached.caller, reached.sources, (*s.steps, step)
                    )
                    self.add(
                        Finding(
                            kind="escalation",
                            principal=start.name,
                            bucket=None,
                            resources=(),
                            path=(start.name, *reached.steps),
                            witness=Witness(*_step_witness(step, self.acct.snap.account)),
                            why=f"{start.name} can gain the permissions of {reached.name}"
                            if reached.name != start.name
                            else f"{start.name} can grant itself more permissions",
                            fix=f"remove {_step_witness(step, self.acct.snap.account)[0]} from {start.name}'s grants "
                            "(or narrow its Resource)",
                        )
                    )
                    self.destructive(reached, start.name)
                    nxt.append(reached)
            frontier = nxt
            if not frontier:
                return

    def _moves(self, s: _Subject) -> list[tuple[str, _Subject]]:
        """The escalation steps from a subject state (kept: a state reached from many
        principals is expanded once)."""
        key = _state_key(s)
        got = self._move_cache.get(key)
        if got is None:
            got = self._move_cache[key] = list(self._expand(s))
        return got

    def _expand(self, s: _Subject) -> Iterable[tuple[str, _Subject]]:
        acct, account = self.acct, self.acct.snap.account
        allows = [st for p in s.policies for st in p.statements if st.effect != "Deny"]
        ev = Evaluator(s.policies)
        contexts = _contexts(allows)
        granted: dict[str, bool] = {}

        def mentions(action: str) -> bool:
            """Whether any Allow statement names the action (a quick filter)."""
            if action not in granted:
                granted[action] = any(
                    any(match(a, action, ignore_case=True) for a in st.actions) != st.not_action
                    for st in allows
                )
            return granted[action]

        def can(action: str, resource: str) -> bool:
            return mentions(action) and any(
                ev.allows(Request(action, resource, c)) for c in contexts
            )

        def ram(kind: str, name: str) -> str:
            return f"acs:ram:*:{account}:{kind}/{name}"

        admin = Policy((Statement("Allow", ("*",), ("*",)),), name=ADMIN_POLICY)
        kind, _, me = s.name.partition(":")
        # write a new default version of a custom policy it holds: any document
        for src in s.sources:
            name = src.policy.name
            if (
                src.key.startswith("Custom:")  # a system policy has no versions to write
                and can("ram:CreatePolicyVersion", ram("policy", name))
            ):
                yield (
                    f"ram:CreatePolicyVersion on {name} (any document)",
                    _Subject(s.name, s.caller, (*s.sources, _Source(admin, "")), ()),
                )
                break
        # attach a policy to itself (or, for a user, to one of its groups)
        attach = {
            "user": "ram:AttachPolicyToUser",
            "role": "ram:AttachPolicyToRole",
            "group": "ram:AttachPolicyToGroup",
        }
        targets = [(kind, me)]
        if kind == "user":
            targets += [("group", g) for g in acct.users[me].groups]
        for tkind, tname in targets:
            if can(attach[tkind], ram(tkind, tname)):
                extra = tuple(_Source(p, "", k) for k, p in acct.policies.items())
                what = "any policy in the account"
                if can("ram:CreatePolicy", ram("policy", "permgen-audit")):
                    extra += (_Source(admin, ""),)
                    what = "with ram:CreatePolicy, any permission"
                yield (
                    f"{attach[tkind]} on {tkind}:{tname} ({what})",
                    _Subject(s.name, s.caller, (*s.sources, *extra), ()),
                )
                break
        if kind == "user":
            for g in sorted(acct.groups):
                if g not in acct.users[me].groups and can("ram:AddUserToGroup", ram("group", g)):
                    yield (
                        f"ram:AddUserToGroup {me} to group:{g}",
                        _Subject(
                            s.name,
                            s.caller,
                            (*s.sources, *acct.sources(acct.groups[g].policies, f"group:{g}")),
                            (),
                        ),
                    )
        if kind in ("user", "role"):
            for u in sorted(acct.users):
                if kind == "user" and u == me:
                    continue
                for action in (
                    "ram:CreateAccessKey",
                    "ram:CreateLoginProfile",
                    "ram:UpdateLoginProfile",
                ):
                    if can(action, ram("user", u)):
                        yield (f"{action} for user:{u}", acct.user(u))
                        break
            for r in sorted(acct.roles):
                if not can("sts:AssumeRole", ram("role", r)):
                    continue
                if self._trusts(acct.roles[r], s, account):
                    yield (f"sts:AssumeRole role:{r} (its trust names {s.name})", acct.role(r))
                elif can("ram:UpdateRole", ram("role", r)):
                    yield (
                        f"ram:UpdateRole role:{r} (rewrite its trust), then sts:AssumeRole",
                        acct.role(r),
                    )

    @staticmethod
    def _trusts(role: RoleSnap, s: _Subject, account: str) -> bool:
        """Whether the role's trust policy lets ``s`` assume it (Allow naming the account or
        the principal; a Deny naming it wins)."""
        try:
            doc = json.loads(role.trust) if role.trust else {}
        except ValueError:
            return False
        kind, _, name = s.name.partition(":")
        me = {f"acs:ram::{account}:root", account, f"acs:ram::{account}:{kind}/{name}"}
        allowed = denied = False
        for st in doc.get("Statement", []) if isinstance(doc, dict) else []:
            if not isinstance(st, dict):
                continue
            ram = (
                st.get("Principal", {}).get("RAM", [])
                if isinstance(st.get("Principal"), dict)
                else []
            )
            names = [ram] if isinstance(ram, str) else list(ram)
            actions = st.get("Action", [])
            actions = [actions] if isinstance(actions, str) else actions
            if not any(
                match(a, "sts:AssumeRole", ignore_case=True) for a in actions if isinstance(a, str)
            ):
                continue
            if any(isinstance(n, str) and n in me for n in names):
                if st.get("Effect") == "Deny":
                    denied = True
                elif st.get("Effect") == "Allow":
                    allowed = True
        return allowed and not denied

    def run(self) -> AuditReport:
        for subject in self.acct.subjects():
            self.destructive(subject, subject.name)
            if not subject.name.startswith("group:"):
                self.escalation(subject)
        self.outsiders()
        findings = tuple(sorted(self.findings.values(), key=sort_key))
        return AuditReport(self.acct.snap.account, findings, tuple(self.acct.notes))


def _step_witness(step: str, account: str) -> tuple[str, str]:
    """The request an escalation step makes: its action and the RAM resource it names."""
    action, _, rest = step.partition(" ")
    target = re.search(r"\b(user|group|role):([^\s,()]+)", rest)
    if action == "ram:CreatePolicyVersion" or target is None:
        name = rest.removeprefix("on ").split(" ", 1)[0]
        return action, f"acs:ram:*:{account}:policy/{name}"
    if action.startswith("ram:AddUserToGroup"):
        target = re.search(r"\bgroup:([^\s,()]+)", rest)
        assert target is not None
        return action, f"acs:ram:*:{account}:group/{target.group(1)}"
    return action, f"acs:ram:*:{account}:{target.group(1)}/{target.group(2)}"


def audit(snapshot: Snapshot) -> AuditReport:
    """The findings of a snapshot (pure: no I/O)."""
    return _Auditor(snapshot).run()


def fail_kinds(text: str) -> set[str]:
    """``--fail-on KIND,...``; InputError for an unknown kind."""
    kinds = {k.strip() for k in text.split(",") if k.strip()}
    unknown = sorted(kinds - set(KINDS))
    if unknown:
        raise InputError(
            f"--fail-on: unknown kind {', '.join(unknown)} (one of {', '.join(KINDS)})"
        )
    return kinds


__all__ = [
    "KINDS",
    "MAX_DEPTH",
    "MAX_STATES",
    "SNAPSHOT_VERSION",
    "AuditReport",
    "BucketSnap",
    "Finding",
    "GroupSnap",
    "RoleSnap",
    "Snapshot",
    "UserSnap",
    "Witness",
    "audit",
    "fail_kinds",
    "load_snapshot",
    "read_snapshot",
    "save_snapshot",
]
