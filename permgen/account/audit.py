"""``permgen audit``: who can destroy which data for good.

Two parts: :func:`read_snapshot` reads the account (RAM principals, groups, roles with their
trust policies, attached policies; every bucket's protections, policy and ACL) into a frozen,
JSON-serialisable :class:`Snapshot`; :func:`audit` decides the findings from a snapshot
alone (pure, no I/O), so an audit is reproducible offline.

Every finding is proven and, within the limits, none is missed: each bucket's statements
split its requests into cells (classes of keys and condition values no statement tells
apart, :mod:`permgen.semantics.bucket_cells`),
each principal is decided on every cell, and the witness request of an allowing cell is
decided again by the evaluator (identity policies and the bucket policy together) and
reported only when it allows. Conditions narrow a finding, they do not remove it: the witness
shows the values it needs. Past the cells' limits a bucket's report is ``exact: false``.

Escalation is a breadth-first search over what a principal can make itself into (attach a
policy, write a new version of an attached policy, join a group, take over another user's
keys, rewrite a role's trust, assume a role whose trust names it and for which it holds
``sts:AssumeRole``), bounded by :data:`MAX_DEPTH` and :data:`MAX_STATES`.

Large accounts are audited by forked workers, each on a share of the buckets (``jobs``).
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import operator
import re
from collections.abc import Container, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from permgen.account.oss import LifecycleRule, OssApi, OverwriteRule, ReplicationRule, WormConfig
from permgen.account.types import Principal, RamApi
from permgen.errors import CloudError, InputError, PolicyParseError
from permgen.policy.model import Policy, Statement, parse_policy
from permgen.policy.wildcard import PatternSet, has_wildcard, match
from permgen.semantics.automata import ANY, STAR, residuals, tokens
from permgen.semantics.bucket_cells import BucketCells, Cell
from permgen.semantics.bucket_policy import (
    BucketPolicy,
    BucketStatement,
    Caller,
    CombinedDecision,
    combine,
    parse_bucket_policy,
)
from permgen.semantics.conditions import CompiledCondition, MissingKey, check_conditions
from permgen.semantics.evaluate import (
    CompiledStatement,
    Decision,
    Evaluator,
    Request,
    StatementRef,
    _sample_values,
)
from permgen.semantics.regions import set_bits

SNAPSHOT_VERSION = 1
#: The largest snapshot file permgen loads, in bytes.
SNAPSHOT_LIMIT = 64 * 1024 * 1024
#: Escalation: steps followed from a principal, and states visited per principal, at most.
MAX_DEPTH = 4
MAX_STATES = 2000

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
#: Read actions that name the bucket, not an object.
BUCKET_READS = frozenset({"oss:ListObjects"})
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
#: The key of that policy among a subject's sources.
ADMIN_KEY = "Generated:" + ADMIN_POLICY
ADMIN = Policy((Statement("Allow", ("*",), ("*",)),), name=ADMIN_POLICY)
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


#: A finding's witness: one request the evaluator allows.
Witness = Request


@dataclass(frozen=True, slots=True)
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
    #: False when some bucket's policies needed more work than the audit allows to decide
    #: every key and condition (a note names it): every finding is still proven
    exact: bool = True

    def to_json(self) -> dict[str, Any]:
        return {
            "account": self.account,
            "exact": self.exact,
            "findings": [f.to_json() for f in self.findings],
            "notes": list(self.notes),
        }

    def kinds(self) -> set[str]:
        return {f.kind for f in self.findings}


#: (severity rank, kind rank) per kind: a report's order, worst first
_KIND_ORDER = {k: (SEVERITY_RANK[SEVERITY[k]], n) for n, k in enumerate(KINDS)}


def sort_key(f: Finding) -> tuple[Any, ...]:
    return (*_KIND_ORDER[f.kind], f.bucket or "", f.principal, f.path)


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
    #: it may attach any one policy of the account (it picks which: that policy's Denies
    #: come only with that policy's Allows, so each policy is tried alone)
    pool: bool = False

    @property
    def policies(self) -> list[Policy]:
        return [s.policy for s in self.sources]


def _parse(key: str, text: str, notes: list[str]) -> Policy | None:
    """The policy, or None with a note: one RAM would refuse (it does not parse, or a
    condition constant its operator cannot compare) is left out."""
    try:
        policy = parse_policy(text, source=key.split(":", 1)[1])
        check_conditions((st, policy.name, i) for i, st in enumerate(policy.statements))
    except PolicyParseError as exc:
        notes.append(f"policy {key} does not parse and is left out: {exc.message}")
        return None
    return policy


class _Account:
    """A snapshot compiled for the audit."""

    def __init__(self, snap: Snapshot) -> None:
        self.snap = snap
        self.notes: list[str] = []  # what the snapshot holds that does not parse
        #: per bucket whose policies need more work than allowed, why it is not exact
        self.bucket_notes: dict[str, str] = {}
        self.walk_notes: list[str] = []  # escalation walks stopped at their limit
        self._base: dict[tuple[str, str], _Subject] = {}  # each principal as it is
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
                    parsed = parse_bucket_policy(b.policy, source=f"bucket-policy {b.name}")
                    check_conditions(
                        (bs.statement, parsed.name, i) for i, bs in enumerate(parsed.statements)
                    )
                    bp = _any_session(parsed)
                except PolicyParseError as exc:
                    self.notes.append(
                        f"the bucket policy of {b.name} does not parse and is left out: "
                        f"{exc.message}"
                    )
            self.bucket_policies[b.name] = bp

    def sources(self, keys: Iterable[str], via: str) -> list[_Source]:
        return [_Source(self.policies[k], via, k) for k in keys if k in self.policies]

    def user(self, name: str) -> _Subject:
        """The user as it is (one object per user: its state key is computed once)."""
        got = self._base.get(("user", name))
        if got is None:
            u = self.users[name]
            src = self.sources(u.policies, "")
            for g in u.groups:
                if g in self.groups:
                    src += self.sources(self.groups[g].policies, f"group:{g}")
            caller = Caller((u.user_id,) if u.user_id else ())
            got = self._base[("user", name)] = _Subject(f"user:{name}", caller, tuple(src))
        return got

    def group(self, name: str) -> _Subject:
        return _Subject(
            f"group:{name}", Caller(()), tuple(self.sources(self.groups[name].policies, ""))
        )

    def role(self, name: str) -> _Subject:
        """The role as a session of it (one object per role)."""
        got = self._base.get(("role", name))
        if got is None:
            session = f"arn:sts::{self.snap.account}:assumed-role/{name}/permgen-audit"
            got = self._base[("role", name)] = _Subject(
                f"role:{name}",
                Caller((session,)),
                tuple(self.sources(self.roles[name].policies, "")),
            )
        return got

    def subjects(self) -> list[_Subject]:
        out = [self.user(u.name) for u in self.snap.users]
        out += [self.group(g.name) for g in self.snap.groups]
        out += [self.role(r.name) for r in self.snap.roles]
        return out

    def outsiders(self) -> list[_Subject]:
        """Anonymous callers, and each other account a bucket policy names."""
        out = [_Subject("anonymous", Caller.anonymous_caller())]
        known = {self.snap.account} | {u.user_id for u in self.snap.users if u.user_id}
        others: set[tuple[str, str]] = set()  # (account, the caller it stands for)
        for bp in self.bucket_policies.values():
            for bs in bp.statements if bp else ():
                for p in bs.principals:
                    if p.isdigit() and p not in known:
                        others.add((p, p))
                    session = _ROLE_SESSION.fullmatch(p)
                    if session and session.group(1) != self.snap.account:
                        # a role session of another account (any session name it picks)
                        others.add((session.group(1), p.replace("*", "permgen-audit")))
        out += [_Subject(f"account:{uid}", Caller((caller,))) for uid, caller in sorted(others)]
        return out


#: A bucket-policy principal naming a role's sessions: the account, the role, the session.
_ROLE_SESSION = re.compile(r"arn:sts::(\d+):assumed-role/([^/]+)/(.*)")


def _any_session(bp: BucketPolicy) -> BucketPolicy:
    """The bucket policy with each principal that names one session of a role read as every
    session of it: whoever may assume the role picks the session name, so a statement for
    ``.../assumed-role/etl/app`` is one that anyone who can become ``etl`` can use."""
    changed = False
    out = []
    for bs in bp.statements:
        names = tuple(
            f"arn:sts::{m.group(1)}:assumed-role/{m.group(2)}/*"
            if (m := _ROLE_SESSION.fullmatch(p))
            else p
            for p in bs.principals
        )
        changed |= names != bs.principals
        out.append(dataclasses.replace(bs, principals=names))
    return dataclasses.replace(bp, statements=tuple(out)) if changed else bp


def _arn(account: str, bucket: BucketSnap, key: str | None = None) -> str:
    """A request's resource: the bucket's region (``*`` when unknown) and owner."""
    region = bucket.region or "*"
    return f"acs:oss:{region}:{account}:{bucket.name}" + ("" if key is None else f"/{key}")


def _instantiate(text: str) -> str:
    return text.replace("*", "example").replace("?", "x")


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


def _acl_allows(bucket: BucketSnap, action: str) -> bool:
    """A public ACL grants everyone; it is reported once, for ``anonymous`` (every other
    caller has it too)."""
    if bucket.block_public_access:
        return False
    return action in ACL_GRANTS.get(bucket.acl, frozenset())


@dataclass(frozen=True)
class _Hit:
    witness: Witness
    decision: CombinedDecision | None  # None: the ACL allowed it
    conditions: tuple[str, ...]
    #: the statements that decided it (the decision's, read once)
    refs: tuple[StatementRef, ...] = ()


def _state_key(s: _Subject) -> tuple[Any, ...]:
    """What decides a subject's requests: who it is, which policies it holds and whether it
    may attach any policy (computed once per subject: it keys every memo)."""
    got: tuple[Any, ...] | None = s.__dict__.get("_state_key")
    if got is None:
        got = (s.name, frozenset(x.key for x in s.sources), s.pool)
        s.__dict__["_state_key"] = got  # a cache beside the frozen fields, not a field
    return got


#: The OSS actions a principal's own findings are about.
_AUDITED = (*DELETE_ACTIONS, *OVERWRITE_ACTIONS, "oss:DeleteObjectVersion", *PROTECTION_ACTIONS)


def _names(st: Statement, action: str) -> bool:
    """Whether the statement's Action (or NotAction) covers ``action``."""
    return any(match(a, action, ignore_case=True) for a in st.actions) != st.not_action


def _may_destroy(st: Statement) -> bool:
    """Whether an Allow statement could grant one of the audited actions (a quick, generous
    filter on where to look: an Allow of reads alone, on ``*`` say, sends nobody to every
    bucket)."""
    return st.effect != "Deny" and any(_names(st, x) for x in _AUDITED)


#: Every bucket (a statement whose resources could name any of them).
_ALL = None


class _Every:
    """Contains everything (a filter that lets every name through)."""

    def __contains__(self, item: object) -> bool:
        return True


_EVERY = _Every()


class _Index:
    """Which statements of the account's policies could apply to which bucket, computed once:
    a statement is relevant to a bucket when one of its patterns could match the bucket's
    ARN or an object in it (a linear run of the pattern's automaton over the ARN), or when it
    uses NotResource."""

    def __init__(self, acct: _Account) -> None:
        self.arns = {b.name: _arn(acct.snap.account, b) for b in acct.snap.buckets}
        self.by_bucket: dict[str, list[tuple[str, int]]] = {b: [] for b in self.arns}
        #: per policy key: the buckets an Allow statement of it could apply to
        self.allow_buckets: dict[str, frozenset[str]] = {}
        everywhere: list[tuple[str, int]] = []
        for key, policy in acct.policies.items():
            allows: set[str] = set()
            for i, st in enumerate(policy.statements):
                where = self._buckets(st)
                if where is _ALL:
                    everywhere.append((key, i))
                    if _may_destroy(st):
                        allows.update(self.arns)
                    continue
                for b in where:
                    self.by_bucket[b].append((key, i))
                if _may_destroy(st):
                    allows.update(where)
            self.allow_buckets[key] = frozenset(allows)
        order = {k: n for n, k in enumerate(acct.policies)}
        for refs in self.by_bucket.values():
            refs += everywhere
            refs.sort(key=lambda r: (order[r[0]], r[1]))
        self._policies = acct.policies
        self._naming: dict[str, frozenset[tuple[str, int]]] = {}
        self._naming_by_policy: dict[str, dict[str, tuple[int, ...]]] = {}
        #: per policy key: per bucket, the bits of its statements in the bucket's model
        #: (statement k of ``by_bucket[b]`` is bit k; the any-permission policy's follows)
        self.policy_bits: dict[str, dict[str, int]] = {}
        for b, refs in self.by_bucket.items():
            for k, (key, _i) in enumerate(refs):
                bits = self.policy_bits.setdefault(key, {})
                bits[b] = bits.get(b, 0) | 1 << k
        self.policy_bits[ADMIN_KEY] = {b: 1 << len(refs) for b, refs in self.by_bucket.items()}

    def naming_by_policy(self, action: str) -> dict[str, tuple[int, ...]]:
        """:meth:`naming` by policy key: the indexes of its statements that name ``action``."""
        got = self._naming_by_policy.get(action)
        if got is None:
            by: dict[str, list[int]] = {}
            for key, i in sorted(self.naming(action)):
                by.setdefault(key, []).append(i)
            got = self._naming_by_policy[action] = {k: tuple(v) for k, v in by.items()}
        return got

    def naming(self, action: str) -> frozenset[tuple[str, int]]:
        """The account's statements (policy key, index) whose Action covers ``action``."""
        got = self._naming.get(action)
        if got is None:
            got = self._naming[action] = frozenset(
                (key, i)
                for key, policy in self._policies.items()
                for i, st in enumerate(policy.statements)
                if _names(st, action)
            )
        return got

    def _buckets(self, st: Statement) -> list[str] | None:
        if st.not_resource:
            return _ALL
        out: set[str] = set()
        for pattern in st.resources:
            if pattern == "*":
                return _ALL
            parts = pattern.split(":", 4)
            literal = len(parts) == 5 and not any(c in parts[4].partition("/")[0] for c in "*?")
            names = [parts[4].partition("/")[0]] if literal else list(self.arns)
            for b in names:
                if b in self.arns and b not in out and _names_bucket(pattern, self.arns[b]):
                    out.add(b)
        return sorted(out)


def _names_bucket(pattern: str, bucket_arn: str) -> bool:
    """Whether ``pattern`` matches the bucket's ARN or the ARN of some object in it."""
    return any(
        not seq or seq[0] in (STAR, ANY) or "/" in seq[0]
        for seq in residuals(tokens(pattern, arn=True), bucket_arn)
    )


class _BucketModel:
    """One bucket's cells over every statement that could apply to it: the account's
    policies' (and the any-permission policy's), then the bucket policy's."""

    def __init__(self, acct: _Account, index: _Index, b: BucketSnap) -> None:
        self.snap = b
        self.index = index
        self.arn = index.arns[b.name]
        # statement k is bit k: the account's (as the index orders them), the any-permission
        # policy's, then the bucket policy's
        stmts: list[Statement] = []
        self.refs: list[tuple[str, int]] = []  # (policy key, index); ("", i): bucket policy
        for key, i in index.by_bucket[b.name]:
            stmts.append(acct.policies[key].statements[i])
            self.refs.append((key, i))
        self.policy_mask = {
            key: index.policy_bits[key][b.name] for key in dict.fromkeys(k for k, _ in self.refs)
        }
        self.policy_mask[ADMIN_KEY] = index.policy_bits[ADMIN_KEY][b.name]
        stmts.append(ADMIN.statements[0])
        self.refs.append((ADMIN_KEY, 0))
        self.bucket_policy = acct.bucket_policies.get(b.name)
        self.bucket_bits: list[tuple[int, BucketStatement]] = []
        for i, bs in enumerate(self.bucket_policy.statements if self.bucket_policy else ()):
            self.bucket_bits.append((1 << len(stmts), bs))
            stmts.append(bs.statement)
            self.refs.append(("", i))
        self.statements = stmts
        self._acct = acct
        #: statement k compiled for the evaluator, once asked for
        self.compiled: dict[int, CompiledStatement] = {}
        #: the bucket policy's Allow statements
        self.bucket_allows = sum(
            bit for bit, bs in self.bucket_bits if bs.statement.effect != "Deny"
        )
        self._actions: dict[str, int] = {}
        # who each bucket-policy statement applies to, for caller_mask
        self._everyone = self._everyone_owner = 0
        self._named: dict[str, int] = {}  # a principal named as it is -> statements
        self._named_wild: list[tuple[int, str]] = []  # a principal pattern, its statement
        for bit, bs in self.bucket_bits:
            if bs.everyone:
                self._everyone |= bit
                if bs.statement.conditions:
                    self._everyone_owner |= bit
            for p in bs.principals:
                if p == "*":
                    continue
                if has_wildcard(p):
                    self._named_wild.append((bit, p))
                else:
                    self._named[p] = self._named.get(p, 0) | bit
        self._pool: dict[tuple[str, int], str | None] = {}

    @functools.cached_property
    def cells(self) -> BucketCells:
        """The bucket's cells, built when first asked for (the masks above need none)."""
        got = BucketCells(self.arn, self.statements)
        if not got.exact:
            name = self.snap.name
            self._acct.bucket_notes[name] = (
                f"the policies that name {name} need more work than the audit allows to "
                "decide every key and condition: findings there are proven, but one may "
                "be missing (exact: false)"
            )
        return got

    def action_mask(self, action: str) -> int:
        got = self._actions.get(action)
        if got is None:
            got = 0
            naming = self.index.naming(action)
            for k, ref in enumerate(self.refs):
                if ref[0] and ref[0] != ADMIN_KEY:
                    named = ref in naming  # an account policy's statement, as the index read it
                else:
                    named = _names(self.statements[k], action)
                if named:
                    got |= 1 << k
            self._actions[action] = got
        return got

    @functools.cached_property
    def audited_mask(self) -> int:
        """The statements that name an action a principal's own findings are about."""
        return functools.reduce(operator.or_, (self.action_mask(a) for a in _AUDITED), 0)

    def caller_mask(self, caller: Caller) -> int:
        """The bucket-policy statements that apply to ``caller`` (:func:`applies_to`): those
        that name it, and those for everyone (for the owner, only with a condition)."""
        got = self._everyone_owner if caller.owner else self._everyone
        for i in caller.ids:
            got |= self._named.get(i, 0)
            for bit, pattern in self._named_wild:
                if match(pattern, i):
                    got |= bit
        return got

    def pool_policy(self, action: str, cell: Cell) -> str | None:
        """The first policy of the account that allows ``action`` in ``cell`` with no Deny of
        its own there (attached beside statements that do not deny it, it allows)."""
        memo = (action, cell.mask)
        if memo not in self._pool:
            m = cell.mask & self.action_mask(action)
            found = None
            for key, bits in self.policy_mask.items():
                if key == ADMIN_KEY:
                    continue
                here = m & bits
                if here & self.cells.allows and not here & self.cells.denies:
                    found = key
                    break
            self._pool[memo] = found
        return self._pool[memo]


class _Judge:
    """Decides (subject, bucket, action) exactly over the bucket's cells, with a witness
    request the evaluator confirms; what is decided for a subject state is kept, so a role
    reached from many principals is decided once."""

    def __init__(self, acct: _Account, share: frozenset[str] | None = None) -> None:
        self.acct = acct
        self.share = share  # the buckets findings are decided on (None: all)
        self.index = _Index(acct)
        self._models: dict[str, _BucketModel] = {}
        self._helds: dict[tuple[Any, ...], dict[str, int]] = {}
        self._hits: dict[tuple[Any, ...], _Hit | None] = {}
        self._evaluators: dict[tuple[Any, ...], tuple[Evaluator | None, Evaluator]] = {}
        self._caller_classes: dict[tuple[Any, ...], int] = {}
        self._class_ids: dict[tuple[Any, ...], int] = {}
        self._extra: dict[str, list[CompiledStatement]] = {}
        #: requests the cells allow that the evaluator did not: (bucket, action, resource)
        self.unconfirmed: set[tuple[str, str, str]] = set()

    def model(self, bucket: str) -> _BucketModel:
        got = self._models.get(bucket)
        if got is None:
            got = self._models[bucket] = _BucketModel(
                self.acct, self.index, self.acct.buckets[bucket]
            )
        return got

    def buckets(self, subject: _Subject) -> list[BucketSnap]:
        """The buckets where ``subject`` could be allowed anything, in snapshot order."""
        if subject.pool or any(s.key == ADMIN_KEY for s in subject.sources):
            return self.shared
        names: set[str] = set()
        if not subject.caller.anonymous:
            for src in subject.sources:
                names |= self.index.allow_buckets.get(src.key, frozenset())
        for b in self._open:
            if b.name in names:
                continue
            model = self.model(b.name)
            if (subject.caller.anonymous and b.acl in ACL_GRANTS) or (
                model.caller_mask(subject.caller) & model.bucket_allows
            ):
                names.add(b.name)
        return [b for b in self.shared if b.name in names]

    @functools.cached_property
    def _open(self) -> list[BucketSnap]:
        """The buckets of the share whose ACL or bucket policy could allow someone."""
        return [b for b in self.shared if b.acl in ACL_GRANTS or self.model(b.name).bucket_allows]

    @functools.cached_property
    def shared(self) -> list[BucketSnap]:
        """The buckets of this judge's share, in snapshot order."""
        return [b for b in self.acct.snap.buckets if self.share is None or b.name in self.share]

    def caller_class(self, caller: Caller) -> int:
        """How the snapshot's bucket policies and overwrite rules see ``caller``: callers
        alike here are decided alike everywhere (one number per class)."""
        key = (caller.ids, caller.anonymous, caller.owner)
        got = self._caller_classes.get(key)
        if got is None:
            parts: list[Any] = [caller.anonymous, caller.owner]
            for b in self.acct.snap.buckets:
                if self.acct.bucket_policies.get(b.name) is not None:
                    parts.append(self.model(b.name).caller_mask(caller))
                for r in b.overwrite:
                    parts.append(any(match(p, i) for p in r.principals for i in caller.ids))
            got = self._class_ids.setdefault(tuple(parts), len(self._class_ids))
            self._caller_classes[key] = got
        return got

    def held(self, subject: _Subject, bucket: str) -> int:
        """The statements ``subject`` holds that could apply to ``bucket`` (a bitmask)."""
        return self.held_in(subject, self.model(bucket))

    def held_in(self, subject: _Subject, model: _BucketModel) -> int:
        """:meth:`held`, for a bucket whose model is at hand."""
        got = self._held(subject).get(model.snap.name, 0)
        if model.bucket_bits:
            got |= model.caller_mask(subject.caller)
        return got

    def _held(self, subject: _Subject) -> dict[str, int]:
        """Per bucket, the statements of ``subject``'s policies that could apply there (kept
        per set of policies, and on the subject)."""
        got: dict[str, int] | None = subject.__dict__.get("_held")
        if got is None:
            key = (frozenset(x.key for x in subject.sources), subject.caller.anonymous)
            got = self._helds.get(key)
            if got is None:
                bits_of = self.index.policy_bits
                sources = () if subject.caller.anonymous else subject.sources
                parts = sorted(
                    (p for x in sources if (p := bits_of.get(x.key))), key=len, reverse=True
                )
                # the largest as it is (read only: shared) or copied, the others or-ed in
                got = parts[0] if len(parts) == 1 else dict(parts[0]) if parts else {}
                for more in parts[1:]:
                    for b, bits in more.items():
                        got[b] = got.get(b, 0) | bits
                self._helds[key] = got
            subject.__dict__["_held"] = got  # a cache beside the frozen fields
        return got

    def allowed(
        self,
        subject: _Subject,
        bucket: str,
        action: str,
        *,
        on_bucket: bool = False,
        keys: Sequence[str] | None = None,
    ) -> _Hit | None:
        """The first request on ``bucket`` (on the bucket itself, on the given ``keys``, or
        on any key) for which ``subject`` is allowed ``action``, or None. Decided by what
        the subject holds there (its statements that could apply to the bucket, and
        whether it may attach a policy), so subjects that hold the same are decided once."""
        model = self.model(bucket)
        # only the held statements that name the action decide it (and show in its
        # witness's decision), so subjects that differ elsewhere share the decision
        held = self.held_in(subject, model) & model.action_mask(action)
        anonymous = subject.caller.anonymous
        if not (held & model.cells.allows) and not (subject.pool or anonymous):
            return None  # nothing it holds here allows the action
        memo = (bucket, held, subject.pool, anonymous, action, on_bucket, tuple(keys or ()))
        if memo not in self._hits:
            self._hits[memo] = self._decide(
                model, held, subject.pool, anonymous, action, on_bucket, keys
            )
        return self._hits[memo]

    def _decide(
        self,
        model: _BucketModel,
        held: int,  # the held statements that name the action
        pool: bool,
        anonymous: bool,
        action: str,
        on_bucket: bool,
        keys: Sequence[str] | None,
    ) -> _Hit | None:
        cells_of = model.cells
        if on_bucket:
            cells = cells_of.bucket_cells
        elif keys:
            cells = [c for k in keys for c in cells_of.key_cells(k)]
        else:
            cells = cells_of.object_cells
        allows, denies = cells_of.allows, cells_of.denies
        first_open: Cell | None = None
        for cell in cells:
            m = cell.mask & held
            if m & denies:
                continue
            if first_open is None:
                first_open = cell
            if m & allows:
                return self._confirm(model, held, anonymous, cell, action, None)
            if pool and not anonymous:
                extra = model.pool_policy(action, cell)
                if extra is not None:
                    return self._confirm(model, held, anonymous, cell, action, extra)
        if first_open is not None and anonymous and _acl_allows(model.snap, action):
            return _Hit(Witness(action, cells_of.resource(first_open)), None, ())
        return None

    def _confirm(
        self,
        model: _BucketModel,
        held: int,
        anonymous: bool,
        cell: Cell,
        action: str,
        extra: str | None,
    ) -> _Hit | None:
        """The hit, once the evaluator allows the witness request: it reads the held
        statements again, on their own, so the cells and the evaluator are two readings
        that must agree (if they do not, nothing is claimed)."""
        memo = (model.snap.name, held, anonymous, extra)
        got = self._evaluators.get(memo)
        if got is None:
            got = self._evaluators[memo] = self._evaluators_for(model, held, anonymous, extra)
        identity, bucket_side = got
        request = Request(action, model.cells.resource(cell), dict(cell.context))
        ident = identity.decide(request) if identity is not None else Decision("implicit_deny")
        bdec = bucket_side.decide(request)
        d = CombinedDecision(combine(ident.kind, bdec.kind), ident, bdec)
        if not d.allowed:
            self.unconfirmed.add((model.snap.name, action, request.resource))
            return None
        refs = d.statements
        conds = tuple(
            f"{c.operator} {c.key} {list(c.values)}" for st in refs for c in st.statement.conditions
        )
        return _Hit(request, d, conds, refs)

    def _evaluators_for(
        self, model: _BucketModel, held: int, anonymous: bool, extra: str | None
    ) -> tuple[Evaluator | None, Evaluator]:
        """Evaluators over the held statements: the identity side (None for an anonymous
        caller) and the bucket-policy side, with each statement's own policy and index."""
        identity: list[CompiledStatement] = []
        bucket_side: list[CompiledStatement] = []
        bp_name = model.bucket_policy.name if model.bucket_policy else ""
        compiled = model.compiled
        for k in set_bits(held):
            key, index = model.refs[k]
            c = compiled.get(k)
            if c is None:
                name = self._policy(key).name if key else bp_name or "bucket-policy"
                c = compiled[k] = CompiledStatement(model.statements[k], name, index)
            (identity if key else bucket_side).append(c)
        if extra is not None:
            got = self._extra.get(extra)
            if got is None:
                policy = self._policy(extra)
                got = self._extra[extra] = [
                    CompiledStatement(st, policy.name, i) for i, st in enumerate(policy.statements)
                ]
            identity += got
        # (every statement's conditions were checked when its policy was read)
        return (
            None if anonymous else Evaluator.from_compiled(identity),
            Evaluator.from_compiled(bucket_side),
        )

    def _policy(self, key: str) -> Policy:
        return ADMIN if key == ADMIN_KEY else self.acct.policies[key]

    def tail(self, subject: _Subject, hit: _Hit, bucket: str) -> tuple[str, ...]:
        """The end of a finding's path, after the principal and its escalation steps: the
        group a policy comes through, and the statements that allow the witness."""
        if hit.decision is None:
            return (f"acl {self.acct.buckets[bucket].acl} on {bucket}",)
        out: list[str] = []
        names: dict[str, str] | None = subject.__dict__.get("_via")
        if names is None:
            names = subject.__dict__["_via"] = {s.policy.name: s.via for s in subject.sources}
        for ref in hit.refs:
            where = names.get(ref.policy, "")
            if where and where not in out:
                out.append(where)
            out.append(
                f"{'' if ref.policy.startswith('bucket-policy') else 'policy '}{ref.policy} Statement[{ref.index}]"
            )
        return tuple(out)

    def path(self, subject: _Subject, hit: _Hit, bucket: str, as_name: str) -> tuple[str, ...]:
        return (as_name, *subject.steps, *self.tail(subject, hit, bucket))


def _granted(hit: _Hit, bucket: str) -> tuple[str, ...]:
    """What the allowing statements grant around the witness, as ``bucket/pattern``."""
    out: list[str] = []
    for ref in hit.refs:
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
    refs = hit.refs
    if not refs:
        return ""
    r = refs[0]
    return f"; or remove {hit.witness.action} from {r.policy} Statement[{r.index}]"


#: (kind, hit, why, fix without the principal's first step, the path's tail)
_Candidate = tuple[str, _Hit, str, str, tuple[str, ...]]
#: Escalation steps that make a principal into another one as it is (not a changed self).
_TO_ANOTHER = frozenset(
    {
        "ram:CreateAccessKey",
        "ram:CreateLoginProfile",
        "ram:UpdateLoginProfile",
        "sts:AssumeRole",
        "ram:UpdateRole",
    }
)


def _principals_alike(acct: _Account) -> bool:
    """Whether no bucket policy or overwrite rule names a principal of the account itself
    (a user, a role's session, or the account), so they decide alike for all of them; and
    no bucket policy has two Allow statements, so a path through the any-permission policy
    names at most two statements (no longer than any path one step further)."""
    own = {acct.snap.account} | {u.user_id for u in acct.snap.users if u.user_id}
    for b in acct.snap.buckets:
        if any(r.principals for r in b.overwrite):
            return False
        bp = acct.bucket_policies.get(b.name)
        if bp is not None and sum(bs.statement.effect != "Deny" for bs in bp.statements) > 1:
            return False
        for bs in bp.statements if bp else ():
            for p in bs.principals:
                if p != "*" and (p in own or not p.isdigit()):
                    return False
    return True


def _with_admin(sources: Iterable[_Source]) -> tuple[_Source, ...]:
    """The any-permission policy beside ``sources``: of those, only policies with a Deny
    still change what is allowed (their Allows add nothing to it)."""
    keep = tuple(
        x
        for x in sources
        if x.key != ADMIN_KEY and any(st.effect == "Deny" for st in x.policy.statements)
    )
    return (*keep, _Source(ADMIN, "", ADMIN_KEY))


#: A step in a shared table: its text, or (before, after) the parent's name when the step
#: names the parent (so parents with the same moves share one table)
_Step = str | tuple[str, str]
#: A children table's entry: (kind, bucket, hit, why, fix, the path's tail, the step taken)
_Entry = tuple[str, str, _Hit, str, str, tuple[str, ...], _Step]
_TRUST_NAMES = " (its trust names "


def _assume_step(role: str, name: str) -> str:
    return f"sts:AssumeRole role:{role}{_TRUST_NAMES}{name})"


def _step_text(step: _Step, parent: str) -> str:
    return step if isinstance(step, str) else step[0] + parent + step[1]


def _shared_step(step: str, parent: str) -> _Step:
    """``step`` as a shared table keeps it: a mention of the parent's name left open."""
    end = f"{_TRUST_NAMES}{parent})"
    if step.startswith("sts:AssumeRole ") and step.endswith(end):
        return (step[: -len(end)] + _TRUST_NAMES, ")")
    return step


def _step_action(step: _Step) -> str:
    return (step if isinstance(step, str) else step[0]).split(" ", 1)[0]


class _Auditor:
    """Decides the findings of a snapshot: on every bucket, or on a share of them (the
    account's principals, policies and escalation walks are read in full either way)."""

    def __init__(self, snap: Snapshot, share: frozenset[str] | None = None) -> None:
        self.acct = _Account(snap)
        self.judge = _Judge(self.acct, share)
        self.findings: dict[tuple[Any, ...], Finding] = {}
        self._granted: dict[tuple[int, str], tuple[_Hit, tuple[str, ...]]] = {}
        self._bucket_cache: dict[tuple[Any, ...], list[_Candidate]] = {}
        self._core_cache: dict[tuple[Any, ...], list[tuple[str, _Hit, str, str]]] = {}
        self._move_cache: dict[tuple[Any, ...], list[tuple[str, _Subject]]] = {}
        self._table_cache: dict[tuple[Any, ...], list[list[_Entry]]] = {}
        self._principals_alike = _principals_alike(self.acct)
        self._live_cache: dict[tuple[Any, ...], list[tuple[str, _Subject, tuple[Any, ...]]]] = {}
        self._own_tables: dict[tuple[Any, ...], dict[tuple[str, str], Any]] = {}
        self._shared_tables: dict[tuple[Any, ...], list[_Entry]] = {}
        self._block_tables: dict[tuple[Any, ...], dict[tuple[str, str], _Entry]] = {}
        self._pool_by_action: dict[str, list[tuple[Policy, Evaluator]]] = {}
        self._pool_ctx: dict[str, list[dict[str, str]]] = {}
        self._pool_memo: dict[tuple[Any, ...], bool] = {}
        self._can_memo: dict[tuple[Any, ...], bool] = {}
        self._target_memo: dict[tuple[Any, ...], Any] = {}
        self._sig_evaluators: dict[Any, tuple[Evaluator, list[dict[str, str]]]] = {}
        self._direct_fix: dict[tuple[str, int], tuple[_Hit, str]] = {}
        self._names_of: dict[str, list[str]] = {}
        self._trust_memo: dict[str, tuple[frozenset[str], frozenset[str]]] = {}
        #: per principal: the (kind, bucket) of its findings, and its longest path so far
        self._keys_of: dict[str, set[tuple[str, str | None]]] = {}
        self._longest: dict[str, int] = {}
        #: per children table: itself (kept alive), its entries by (kind, bucket), its
        #: shortest tail
        self._table_index: dict[int, tuple[list[_Entry], dict[tuple[str, str], _Entry], int]] = {}

    def add(self, f: Finding | None) -> None:
        if f is None:
            return
        key = (f.kind, f.principal, f.bucket)
        old = self.findings.get(key)
        if old is None or len(f.path) < len(old.path):
            self._put(key, f, old is None)

    def _put(self, key: tuple[str, str, str | None], f: Finding, new: bool) -> None:
        """Keep ``f`` (its key is ``new`` or its path shorter), and what :meth:`_replay`
        reads: per principal, its findings' (kind, bucket) and its longest path so far."""
        self.findings[key] = f
        if new:
            self._keys_of.setdefault(f.principal, set()).add((f.kind, f.bucket))
        if len(f.path) > self._longest.get(f.principal, 0):
            self._longest[f.principal] = len(f.path)

    # -- destructive findings of one subject, reported as ``as_name``
    def destructive(self, subject: _Subject, as_name: str) -> None:
        for b in self.judge.buckets(subject):
            self._bucket(subject, as_name, b)

    def _finding(
        self,
        kind: str,
        as_name: str,
        subject: _Subject,
        b: BucketSnap,
        hit: _Hit,
        why: str,
        fix: str,
        tail: tuple[str, ...] | None = None,
    ) -> Finding | None:
        """The finding, or None when :meth:`add` would keep the one it has (a path at least
        as short for the same kind, principal and bucket): nothing more is computed then."""
        if tail is None:
            tail = self.judge.tail(subject, hit, b.name)
        old = self.findings.get((kind, as_name, b.name))
        if old is not None and 1 + len(subject.steps) + len(tail) >= len(old.path):
            return None
        return Finding(
            kind=kind,
            principal=as_name,
            bucket=b.name,
            resources=self._resources(hit, b.name),
            path=(as_name, *subject.steps, *tail),
            witness=hit.witness,
            why=why,
            fix=fix,
            conditions=hit.conditions,
        )

    def _bucket(self, subject: _Subject, as_name: str, b: BucketSnap) -> None:
        """The destructive findings of ``subject`` on ``b``, reported as ``as_name``. What a
        subject state can do to a bucket is decided once (escalation reaches the same states
        from many principals); only the path and the fix's first step differ per principal.
        (:meth:`_finding` and :meth:`add`, inlined: this runs for every principal-bucket
        pair.)"""
        findings = self.findings
        steps = subject.steps
        name = b.name
        for kind, hit, why, fix, tail in self._candidates(subject, b):
            key = (kind, as_name, name)
            old = findings.get(key)
            if old is not None and 1 + len(steps) + len(tail) >= len(old.path):
                continue  # the path it has is as short
            self._put(
                key,
                Finding(
                    kind,
                    as_name,
                    name,
                    self._resources(hit, name),
                    (as_name, *steps, *tail),
                    hit.witness,
                    why,
                    self._fix(fix, hit, subject),
                    hit.conditions,
                ),
                old is None,
            )

    def _resources(self, hit: _Hit, bucket: str) -> tuple[str, ...]:
        """:func:`_granted`, kept per hit (hits live in the judge's memo: an id names one)."""
        memo = (id(hit), bucket)
        got = self._granted.get(memo)
        if got is None:
            got = self._granted[memo] = (hit, _granted(hit, bucket))
        return got[1]

    def _fix(self, fix: str, hit: _Hit, subject: _Subject) -> str:
        """``fix`` and :func:`_statement_fix`, kept per (fix, hit) for principals as they are
        (one string for the many findings that share them)."""
        if subject.steps:
            return fix + _statement_fix(hit, subject)
        memo = (fix, id(hit))
        got = self._direct_fix.get(memo)
        if got is None:
            got = self._direct_fix[memo] = (hit, fix + _statement_fix(hit, subject))
        return got[1]

    def _candidates(self, subject: _Subject, b: BucketSnap) -> list[_Candidate]:
        """What a subject state can do to a bucket, decided once per state."""
        key = (self._findings_key(subject), b.name)
        cands = self._bucket_cache.get(key)
        if cands is None:
            # what decides them: the statements held on the bucket (and on the buckets its
            # replication copies to), whether it may attach a policy, and who asks where an
            # overwrite rule names principals
            # (of those statements, only the ones that name an audited action: the
            # decisions below depend on no others)
            judge = self.judge
            model = judge.model(b.name)
            sig = (
                b.name,
                judge.held_in(subject, model) & model.audited_mask,
                subject.pool,
                subject.caller.anonymous,
                subject.caller.ids if b.overwrite else None,
                tuple(
                    judge.held(subject, r.destination_bucket)
                    & judge.model(r.destination_bucket).action_mask("oss:DeleteObject")
                    for r in b.replication
                    if r.destination_bucket in self.acct.buckets
                )
                if b.replication
                else (),
            )
            core = self._core_cache.get(sig)
            if core is None:
                core = self._core_cache[sig] = self._bucket_candidates(subject, b)
            cands = self._bucket_cache[key] = [
                (kind, hit, why, fix, judge.tail(subject, hit, b.name))
                for kind, hit, why, fix in core
            ]
        return cands

    def _bucket_candidates(
        self, subject: _Subject, b: BucketSnap
    ) -> list[tuple[str, _Hit, str, str]]:
        """(kind, hit, why, fix without the principal's first step) for a subject state."""
        out: list[tuple[str, _Hit, str, str]] = []
        judge = self.judge
        versioning = f"enable versioning on {b.name} (spec: buckets.{b.name}.versioning: enabled)"
        hit = judge.allowed(subject, b.name, "oss:DeleteObject")
        if (
            hit is not None
            and _keeps_deleted(judge, subject, b, _key_of(hit.witness.resource)) is None
        ):
            out.append(("irrecoverable-delete", hit, _lacks(b), versioning))
        hit = judge.allowed(subject, b.name, "oss:PutObject")
        if (
            hit is not None
            and _overwrite_protected(subject, b, _key_of(hit.witness.resource)) is None
        ):
            out.append(
                (
                    "irrecoverable-overwrite",
                    hit,
                    _lacks(b) + ", no overwrite protection rule covers it",
                    f"{versioning}, or add an overwrite protection rule for the key",
                )
            )
        if b.versioning is not None:
            hit = judge.allowed(subject, b.name, "oss:DeleteObjectVersion")
            locked = b.worm is not None and b.worm.locked and b.worm.retention_days > 0
            if hit is not None and not locked:
                out.append(
                    (
                        "version-purge",
                        hit,
                        f"{b.name} is versioned but oss:DeleteObjectVersion removes versions for "
                        "good and no locked retention policy stops it",
                        "remove oss:DeleteObjectVersion from the grant, or lock a retention "
                        f"policy on {b.name}",
                    )
                )
        for action in self._protection_actions(b):
            hit = judge.allowed(subject, b.name, action, on_bucket=True)
            if hit is not None:
                out.append(
                    (
                        "protection-removal",
                        hit,
                        f"{action} can weaken what keeps copies of {b.name}",
                        f"remove {action} from the grant (keep bucket configuration to an "
                        "administrator)",
                    )
                )
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
            for b in self.judge.shared:
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
                        if (
                            h := self.judge.allowed(subject, b.name, a, on_bucket=a in BUCKET_READS)
                        )
                        is not None
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
        r = hit.refs[0] if hit.refs else None
        where = f"{r.policy} Statement[{r.index}]" if r else "the bucket policy"
        return f"remove or narrow {where} (its Principal)"

    # -- escalation
    def escalation(self, start: _Subject) -> None:
        """Breadth first from ``start``: every state one step on is reported (its
        destructive findings, through the step) when its parent is expanded, from a table
        of the parent's children kept per set of children (an administrator who can take
        over every user shares one table with every other such administrator)."""
        seen = {_state_key(start)}
        # tables replayed already: a table replayed again is at the same depth or deeper,
        # so none of its paths is shorter than what it gave the first time
        replayed: set[int] = set()
        frontier = [start]
        for _depth in range(MAX_DEPTH):
            if any(self._top(s) for s in frontier):
                # a state that may do anything the account's policies can grant: what it
                # does was reported when it was reached, and every state past it does less
                # (or as much, by a longer path)
                return
            nxt: list[_Subject] = []
            for s in frontier:
                for table in self._tables(s):
                    if id(table) not in replayed:  # tables live in the caches: ids are stable
                        replayed.add(id(table))
                        self._replay(start.name, s, table)
                if ("escalation", start.name, None) not in self.findings:
                    first = next(
                        ((st, c) for st, c in self._moves(s) if _state_key(c) not in seen), None
                    )
                    if first is not None:
                        self._escalation_finding(start, s, *first)
                # a child with no moves of its own adds nothing past its findings, which the
                # tables above hold: only the others are walked on
                for step, reached, k in self._live(s):
                    if k in seen:
                        continue
                    if len(seen) >= MAX_STATES:
                        self.acct.walk_notes.append(
                            f"escalation from {start.name} stopped after {MAX_STATES} states "
                            "(exact: false)"
                        )
                        return
                    seen.add(k)
                    steps = (*s.steps, step)
                    reached = _Subject(
                        reached.name, reached.caller, reached.sources, steps, reached.pool
                    )
                    nxt.append(reached)
            frontier = nxt
            if not frontier:
                return

    def _top(self, s: _Subject) -> bool:
        """Whether ``s`` holds the any-permission policy with no Deny beside it, in an
        account whose bucket policies and overwrite rules treat all its principals alike:
        then no request of any principal is allowed that ``s``'s are not."""
        if not self._principals_alike or s.caller.anonymous:
            return False
        return any(x.key == ADMIN_KEY for x in s.sources) and all(
            x.key == ADMIN_KEY or not any(st.effect == "Deny" for st in x.policy.statements)
            for x in s.sources
        )

    def _escalation_finding(
        self, start: _Subject, s: _Subject, step: str, reached: _Subject
    ) -> None:
        """The principal's escalation finding: its first step (the shortest path)."""
        account = self.acct.snap.account
        steps = (*s.steps, step)
        action = _step_witness(step, account)[0]
        self.add(
            Finding(
                kind="escalation",
                principal=start.name,
                bucket=None,
                resources=(),
                path=(start.name, *steps),
                witness=Witness(*_step_witness(step, account)),
                why=f"{start.name} can gain the permissions of {reached.name}"
                if reached.name != start.name
                else f"{start.name} can grant itself more permissions",
                fix=f"remove {action} from {start.name}'s grants (or narrow its Resource)",
            )
        )

    def _live(self, s: _Subject) -> list[tuple[str, _Subject, tuple[Any, ...]]]:
        """``s``'s moves to states that have moves of their own, with their state keys."""
        key = _state_key(s)
        got = self._live_cache.get(key)
        if got is None:
            got = self._live_cache[key] = [
                (step, c, _state_key(c)) for step, c in self._moves(s) if self._moves(c)
            ]
        return got

    def _replay(self, as_name: str, parent: _Subject, table: list[_Entry]) -> None:
        """Report a children table's findings for ``as_name``, who reached ``parent`` by
        its steps (a finding is built only when its path is the shortest so far)."""
        findings = self.findings
        steps = parent.steps
        index = self._table_index.get(id(table))
        if index is None:  # (tables live in the caches: an id names one)
            index = self._table_index[id(table)] = (
                table,
                {(e[0], e[1]): e for e in table},
                min((len(e[5]) for e in table), default=0),
            )
        _table, by_key, shortest = index
        todo: Iterable[_Entry] = table
        if 2 + len(steps) + shortest >= self._longest.get(as_name, 0):
            # no path of this table is shorter than any the principal has: only the
            # (kind, bucket) it has no finding for yet can change anything
            have = self._keys_of.get(as_name)
            if have:
                todo = [by_key[k] for k in by_key.keys() - have]
        for kind, bucket, hit, why, fix, tail, step in todo:
            key = (kind, as_name, bucket)
            old = findings.get(key)
            if old is not None and 2 + len(steps) + len(tail) >= len(old.path):
                continue
            path_steps = (*steps, _step_text(step, parent.name))
            self._put(
                key,
                Finding(
                    kind=kind,
                    principal=as_name,
                    bucket=bucket,
                    resources=self._resources(hit, bucket),
                    path=(as_name, *path_steps, *tail),
                    witness=hit.witness,
                    why=why,
                    fix=f"{fix}; or take away the first step of the path ({path_steps[0]})",
                    conditions=hit.conditions,
                ),
                old is None,
            )

    def _tables(self, s: _Subject) -> list[list[_Entry]]:
        """The findings of ``s``'s children, merged per (kind, bucket): the child with the
        shortest path's tail, the first in move order on a tie. Moves to another principal
        as it is (a user taken over, a role assumed) form one table kept per set of such
        moves; moves to a changed ``s`` form a table of ``s``'s own."""
        key = _state_key(s)
        got = self._table_cache.get(key)
        if got is None:
            moves = self._moves(s)
            # the parent's name in a step ("its trust names user:x") is written in when the
            # table is replayed, so parents with the same moves share one table
            shared = [
                (_shared_step(step, s.name), c)
                for step, c in moves
                if _step_action(step) in _TO_ANOTHER
            ]
            own = [(step, c) for step, c in moves if _step_action(step) not in _TO_ANOTHER]
            sig = tuple((step, _state_key(c)) for step, c in shared)
            table = self._shared_tables.get(sig)
            if table is None:
                table = self._shared_tables[sig] = self._merge(shared)
            got = self._table_cache[key] = [t for t in (table, self._merge(own)) if t]
        return got

    def _merge(self, children: Sequence[tuple[_Step, _Subject]]) -> list[_Entry]:
        """The children's findings per (kind, bucket): the shortest tail, the first child in
        move order on a tie. Merged a block at a time (a run of moves by one action): a
        block's merge is kept, so parents that share one (every principal that can take over
        all users) merge it once; blocks in move order, a later one winning only when
        strictly shorter, give the same table as one merge of all the children."""
        best: dict[tuple[str, str], _Entry] = {}
        for _action, block in itertools.groupby(children, key=lambda m: _step_action(m[0])):
            moves = list(block)
            sig = tuple((step, _state_key(c)) for step, c in moves)
            part = self._block_tables.get(sig)
            if part is None:
                part = self._block_tables[sig] = {}
                for step, child in moves:
                    for k, (kind, bucket, hit, why, fix, tail) in self._own_table(child).items():
                        old = part.get(k)
                        if old is None or len(tail) < len(old[5]):
                            part[k] = (kind, bucket, hit, why, fix, tail, step)
            if not best:
                best = dict(part)
                continue
            for k, entry in part.items():
                old = best.get(k)
                if old is None or len(entry[5]) < len(old[5]):
                    best[k] = entry
        return list(best.values())

    def _own_table(
        self, s: _Subject
    ) -> dict[tuple[str, str], tuple[str, str, _Hit, str, str, tuple[str, ...]]]:
        """A state's own findings per (kind, bucket): the shortest tail, the first on a tie."""
        key = self._findings_key(s)
        got = self._own_tables.get(key)
        if got is None:
            got = {}
            for b in self.judge.buckets(s):
                for kind, hit, why, fix, tail in self._candidates(s, b):
                    k = (kind, b.name)
                    old = got.get(k)
                    if old is None or len(tail) < len(old[5]):
                        got[k] = (kind, b.name, hit, why, fix, tail)
            self._own_tables[key] = got
        return got

    def _findings_key(self, s: _Subject) -> tuple[Any, ...]:
        """What decides a state's findings (its name does not): the policies it holds and
        through which group, whether it may attach any, and how bucket policies and
        overwrite rules see the caller. Principals alike in these share their work."""
        got: tuple[Any, ...] | None = s.__dict__.get("_findings_key")
        if got is None:
            got = (
                self.judge.caller_class(s.caller),
                frozenset((x.key, x.via) for x in s.sources),
                s.pool,
            )
            s.__dict__["_findings_key"] = got  # a cache beside the frozen fields
        return got

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
        per_action: dict[str, tuple[Any, list[tuple[str, int, Statement]], bool, bool]] = {}

        def naming(action: str) -> tuple[Any, list[tuple[str, int, Statement]], bool, bool]:
            """The statements it holds that name ``action`` (they alone decide it: the key of
            what is kept) and the statements, whether it could hold the action at all, and
            whether those statements all name every resource (``"*"``)."""
            got = per_action.get(action)
            if got is None:
                by_policy = self.judge.index.naming_by_policy(action)
                mine = []
                for src in s.sources:
                    statements = src.policy.statements
                    if src.key == ADMIN_KEY:  # not an account policy: read here
                        mine += [
                            (src.key, i, st)
                            for i, st in enumerate(statements)
                            if _names(st, action)
                        ]
                    else:
                        mine += [(src.key, i, statements[i]) for i in by_policy.get(src.key, ())]
                could = any(st.effect != "Deny" for _k, _i, st in mine) or (
                    s.pool and bool(self._pool_policies(action))
                )
                anywhere = all(st.resources == ("*",) and not st.not_resource for *_, st in mine)
                got = per_action[action] = (
                    (frozenset((key, i) for key, i, _st in mine), s.pool),
                    mine,
                    could,
                    anywhere,
                )
            return got

        def may(action: str) -> bool:
            """Whether it could hold ``action`` at all (a quick filter before the loops)."""
            return naming(action)[2]

        def can(action: str, resource: str) -> bool:
            sig, mine, could, anywhere = naming(action)
            if not could:
                return False
            # the same statements decide alike for anyone; statements that all name every
            # resource, alike for every resource (unless it may attach any policy: the
            # account's policies are read for the resource then)
            memo = (sig, action, None if anywhere and not s.pool else resource)
            got = self._can_memo.get(memo)
            if got is None:
                ev, contexts = self._evaluator(sig, mine)
                got = self._can_memo[memo] = decide(ev, contexts, action, resource)
            return got

        def decide(
            ev: Evaluator, contexts: list[dict[str, str]], action: str, resource: str
        ) -> bool:
            if any(ev.allows(Request(action, resource, c)) for c in contexts):
                return True
            if not s.pool:
                return False
            # it may attach any one policy first: one that allows the request with no Deny
            # of its own, beside policies of its own that do not deny it
            if not self._pool_allows(action, resource):
                return False
            return any(
                ev.decide(Request(action, resource, c)).kind != "explicit_deny"
                and self._pool_allows(action, resource, c)
                for c in [{}, *self._pool_contexts(action)]
            )

        def ram(kind: str, name: str) -> str:
            return f"acs:ram:*:{account}:{kind}/{name}"

        def within(action: str, kind: str) -> Container[str]:
            """The users or roles an Allow that names ``action`` could cover, of those it
            holds or (when it may attach any policy) of the account's policies: a generous
            filter (case ignored), before can() decides each one. Every one of them when
            its statements name every resource (decided once then)."""
            sig, mine, could, anywhere = naming(action)
            if not could:
                return ()
            if anywhere and not s.pool:
                return _EVERY
            memo = ("within", sig, kind)
            got = self._target_memo.get(memo)
            if got is None:
                got = self._covered(kind, [st for *_, st in mine if st.effect != "Deny"])
                if s.pool:
                    got |= self._pool_covered(action, kind)
                self._target_memo[memo] = got
            return got

        kind, _, me = s.name.partition(":")
        # write a new default version of the custom policies it holds: any document, in
        # place of the old ones (whose Denies go with them). All it can write at once: that
        # state allows everything any subset of the rewrites would (fewer Denies, and the
        # new document allows all), so the subsets need no states of their own.
        writable = [
            src.key
            for src in s.sources
            if src.key.startswith("Custom:")  # a system policy has no versions to write
            and can("ram:CreatePolicyVersion", ram("policy", src.policy.name))
        ]
        if writable:
            rest = tuple(x for x in s.sources if x.key not in writable)
            names = [k.split(":", 1)[1] for k in writable]
            also = f"and {', '.join(names[1:])}; " if len(names) > 1 else ""
            yield (
                f"ram:CreatePolicyVersion on {names[0]} ({also}any document)",
                _Subject(s.name, s.caller, _with_admin(rest), (), s.pool),
            )
        # A state that holds the any-permission policy, or may attach any policy, gains
        # nothing by joining a group or attaching a policy: every request the bigger state
        # allows, the smaller one allows already (its Allows are there, and it has fewer
        # Denies), and so does every state the bigger one leads to. Those moves are left out.
        admin = any(src.key == ADMIN_KEY for src in s.sources)
        strong = admin or s.pool
        # attach a policy to itself (or, for a user, to one of its groups)
        attach = {
            "user": "ram:AttachPolicyToUser",
            "role": "ram:AttachPolicyToRole",
            "group": "ram:AttachPolicyToGroup",
        }
        targets = [(kind, me)]
        if kind == "user":
            targets += [("group", g) for g in acct.users[me].groups]
        for tkind, tname in targets if not admin else ():
            if can(attach[tkind], ram(tkind, tname)):
                if can("ram:CreatePolicy", ram("policy", "permgen-audit")):
                    yield (
                        f"{attach[tkind]} on {tkind}:{tname} (with ram:CreatePolicy, any "
                        "permission)",
                        _Subject(s.name, s.caller, _with_admin(s.sources), ()),
                    )
                elif not s.pool:
                    yield (
                        f"{attach[tkind]} on {tkind}:{tname} (any policy in the account)",
                        _Subject(s.name, s.caller, s.sources, (), True),
                    )
                break
        if kind == "user":
            for g in sorted(acct.groups) if may("ram:AddUserToGroup") and not strong else ():
                if g not in acct.users[me].groups and can("ram:AddUserToGroup", ram("group", g)):
                    yield (
                        f"ram:AddUserToGroup {me} to group:{g}",
                        _Subject(
                            s.name,
                            s.caller,
                            (*s.sources, *acct.sources(acct.groups[g].policies, f"group:{g}")),
                            (),
                            s.pool,
                        ),
                    )
        if kind in ("user", "role"):
            takeover = [
                a
                for a in ("ram:CreateAccessKey", "ram:CreateLoginProfile", "ram:UpdateLoginProfile")
                if may(a)
            ]
            # every user, itself included (a state already seen: it changes nothing, and
            # the list of these moves is then the same for every holder of the grant)
            # which users and roles it can act on depends only on the statements that name
            # those actions (kept per set of them: every holder of one grant shares the list)
            memo = ("takeover", *((a, naming(a)[0]) for a in takeover))
            moves = self._target_memo.get(memo)
            if moves is None:
                near = {a: within(a, "user") for a in takeover}

                def first(u: str) -> str | None:
                    return next(
                        (a for a in takeover if u in near[a] and can(a, ram("user", u))), None
                    )

                moves = self._target_memo[memo] = [
                    (f"{a} for user:{u}", acct.user(u))
                    for u in self._entity_names("user")
                    if any(u in near[a] for a in takeover) and (a := first(u))
                ]
            yield from moves
            memo = ("roles", naming("sts:AssumeRole")[0], naming("ram:UpdateRole")[0])
            roles = self._target_memo.get(memo)
            if roles is None:
                near_roles = within("sts:AssumeRole", "role")
                roles = self._target_memo[memo] = [
                    (r, can("ram:UpdateRole", ram("role", r)))
                    for r in self._entity_names("role")
                    if r in near_roles and can("sts:AssumeRole", ram("role", r))
                ]
            for r, update in roles:
                if self._trusts(acct.roles[r], s, account):
                    yield (_assume_step(r, s.name), acct.role(r))
                elif update:
                    yield (
                        f"ram:UpdateRole role:{r} (rewrite its trust), then sts:AssumeRole",
                        acct.role(r),
                    )

    def _entity_names(self, kind: str) -> list[str]:
        """The account's users or roles by name, in order."""
        got = self._names_of.get(kind)
        if got is None:
            got = self._names_of[kind] = sorted(
                self.acct.users if kind == "user" else self.acct.roles
            )
        return got

    def _pool_covered(self, action: str, kind: str) -> frozenset[str]:
        """:meth:`_covered` by the Allows that name ``action`` in any of the account's
        policies (what a state that may attach any one of them could be allowed)."""
        memo = ("pool", action, kind)
        got: frozenset[str] | None = self._target_memo.get(memo)
        if got is None:
            allows = [
                st
                for policy, _ev in self._pool_policies(action)
                for st in policy.statements
                if st.effect != "Deny" and _names(st, action)
            ]
            got = self._target_memo[memo] = self._covered(kind, allows)
        return got

    def _arns(self, kind: str) -> tuple[dict[str, str], dict[str, list[str]], frozenset[str]]:
        """The users' or roles' ARNs by name, the ASCII ones by their lower case, and the
        names of the others."""
        got = self._target_memo.get(("arns", kind))
        if got is None:
            account = self.acct.snap.account
            arns = {n: f"acs:ram:*:{account}:{kind}/{n}" for n in self._entity_names(kind)}
            by_lower: dict[str, list[str]] = {}
            for n, arn in arns.items():
                if arn.isascii():
                    by_lower.setdefault(arn.lower(), []).append(n)
            beyond = frozenset(n for n, arn in arns.items() if not arn.isascii())
            got = self._target_memo[("arns", kind)] = (arns, by_lower, beyond)
        return got

    def _covered(self, kind: str, allows: Iterable[Statement]) -> frozenset[str]:
        """The users or roles whose ARN one of ``allows``' Resource patterns could match in
        any case (a superset of what the evaluator matches: it ignores case at most)."""
        names = self._entity_names(kind)
        arns, by_lower, beyond = self._arns(kind)
        out = set(beyond)  # case folding beyond ASCII: left to the evaluator
        for st in allows:
            if st.not_resource:
                return frozenset(names)
            wild = []
            for p in st.resources:
                if has_wildcard(p) or not p.isascii():
                    wild.append(p)
                else:
                    out.update(by_lower.get(p.lower(), ()))
            if wild:
                some = PatternSet(wild, ignore_case=True, arn=True)
                out.update(n for n, arn in arns.items() if some.match(arn))
        return frozenset(out)

    def _evaluator(
        self, sig: Any, mine: list[tuple[str, int, Statement]]
    ) -> tuple[Evaluator, list[dict[str, str]]]:
        """An evaluator over held statements, and contexts that meet their Allows'
        conditions (kept per set of statements)."""
        got = self._sig_evaluators.get(sig)
        if got is None:
            got = self._sig_evaluators[sig] = (
                Evaluator.from_statements([(st, key.split(":", 1)[-1], i) for key, i, st in mine]),
                _contexts(st for _k, _i, st in mine if st.effect != "Deny"),
            )
        return got

    def _pool_policies(self, action: str) -> list[tuple[Policy, Evaluator]]:
        """The account's policies with an Allow that names ``action``, each compiled alone."""
        got = self._pool_by_action.get(action)
        if got is None:
            got = self._pool_by_action[action] = [
                (p, Evaluator([p]))
                for p in self.acct.policies.values()
                if any(st.effect != "Deny" and _names(st, action) for st in p.statements)
            ]
        return got

    def _pool_contexts(self, action: str) -> list[dict[str, str]]:
        got = self._pool_ctx.get(action)
        if got is None:
            allows = [
                st
                for p, _ in self._pool_policies(action)
                for st in p.statements
                if st.effect != "Deny"
            ]
            got = self._pool_ctx[action] = _contexts(allows)[1:]
        return got

    def _pool_allows(
        self, action: str, resource: str, context: Mapping[str, str] | None = None
    ) -> bool:
        """Whether some policy of the account, alone, allows the request (in ``context``, or
        in some context tried when None). Kept per request: it does not depend on who asks."""
        memo = (action, resource, None if context is None else tuple(sorted(context.items())))
        got = self._pool_memo.get(memo)
        if got is None:
            contexts = [{}, *self._pool_contexts(action)] if context is None else [context]
            got = self._pool_memo[memo] = any(
                one.allows(Request(action, resource, dict(c)))
                for _p, one in self._pool_policies(action)
                for c in contexts
            )
        return got

    def _trusts(self, role: RoleSnap, s: _Subject, account: str) -> bool:
        """Whether the role's trust policy lets ``s`` assume it (Allow naming the account or
        the principal; a Deny naming it wins)."""
        allowed, denied = self._trust_names(role)
        kind, _, name = s.name.partition(":")
        me = {f"acs:ram::{account}:root", account, f"acs:ram::{account}:{kind}/{name}"}
        return not me.isdisjoint(allowed) and me.isdisjoint(denied)

    def _trust_names(self, role: RoleSnap) -> tuple[frozenset[str], frozenset[str]]:
        """The RAM principals the role's trust policy allows, and denies, sts:AssumeRole
        (read once per role; a trust that is not JSON allows nobody)."""
        got = self._trust_memo.get(role.name)
        if got is None:
            allowed: set[str] = set()
            denied: set[str] = set()
            try:
                doc = json.loads(role.trust) if role.trust else {}
            except ValueError:
                doc = {}
            for st in doc.get("Statement", []) if isinstance(doc, dict) else []:
                if not isinstance(st, dict):
                    continue
                principal = st.get("Principal")
                ram = principal.get("RAM", []) if isinstance(principal, dict) else []
                names = [ram] if isinstance(ram, str) else list(ram)
                actions = st.get("Action", [])
                actions = [actions] if isinstance(actions, str) else actions
                if not any(
                    match(a, "sts:AssumeRole", ignore_case=True)
                    for a in actions
                    if isinstance(a, str)
                ):
                    continue
                strings = {n for n in names if isinstance(n, str)}
                if st.get("Effect") == "Deny":
                    denied |= strings
                elif st.get("Effect") == "Allow":
                    allowed |= strings
            got = self._trust_memo[role.name] = (frozenset(allowed), frozenset(denied))
        return got

    def run(self, *, account_wide: bool = True) -> _Part:
        """Every finding on this auditor's buckets, and the account-wide ones (escalation)
        when ``account_wide``."""
        for subject in self.acct.subjects():
            self.destructive(subject, subject.name)
            if not subject.name.startswith("group:"):
                self.escalation(subject)
        self.outsiders()
        return _Part(
            [f for f in self.findings.values() if account_wide or f.bucket is not None],
            self.acct.notes,
            self.acct.bucket_notes,
            self.acct.walk_notes,
            self.judge.unconfirmed,
        )


@dataclass
class _Part:
    """What one auditor found (on its share of the buckets)."""

    findings: list[Finding]
    notes: list[str]
    bucket_notes: dict[str, str]
    walk_notes: list[str]
    unconfirmed: set[tuple[str, str, str]]


def _report(snapshot: Snapshot, parts: Sequence[_Part]) -> AuditReport:
    """The report of auditors that shared out the buckets (the first one also reported the
    account-wide findings). Its notes: what does not parse, buckets not decided in full (in
    snapshot order), walks stopped at their limit, requests not confirmed."""
    first = parts[0]
    bucket_notes: dict[str, str] = {}
    unconfirmed: set[tuple[str, str, str]] = set()
    for part in parts:
        bucket_notes.update(part.bucket_notes)
        unconfirmed |= part.unconfirmed
    notes = list(first.notes)
    notes += [bucket_notes[b.name] for b in snapshot.buckets if b.name in bucket_notes]
    notes += first.walk_notes
    if unconfirmed:
        notes.append(
            f"{len(unconfirmed)} request(s) the cells allow were not confirmed by the "
            "evaluator and are left out (exact: false)"
        )
    findings = sorted((f for part in parts for f in part.findings), key=sort_key)
    # a policy left out may have granted (or denied) something: not exact either
    exact = not (first.notes or bucket_notes or first.walk_notes or unconfirmed)
    return AuditReport(snapshot.account, tuple(findings), tuple(notes), exact=exact)


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


#: Forked workers audit a share of the buckets each only from this many principal-bucket
#: pairs (users, groups and roles times buckets): below it a fork costs more than it saves.
PARALLEL_MIN_PAIRS = 20_000


def audit(snapshot: Snapshot, *, jobs: int = 1) -> AuditReport:
    """The findings of a snapshot (pure: no I/O besides forking).

    With ``jobs`` > 1 (where the platform forks, and for an account of at least
    :data:`PARALLEL_MIN_PAIRS` principal-bucket pairs) the buckets are shared out, round
    robin, to this process and forked workers: each decides every principal against its
    buckets (the escalation walk is followed in each, its findings kept from this
    process's), and a share whose worker failed is audited again here. The report is the
    same as with one process. A process that runs other threads is not forked (its locks
    would be copied mid-use)."""
    import threading

    from permgen._internal import parallel

    names = [b.name for b in snapshot.buckets]
    principals = len(snapshot.users) + len(snapshot.groups) + len(snapshot.roles)
    jobs = min(jobs, len(names))
    if (
        jobs <= 1
        or principals * len(names) < PARALLEL_MIN_PAIRS
        or not parallel.available()
        or threading.active_count() > 1  # a fork would copy other threads' locks mid-use
    ):
        return _report(snapshot, [_Auditor(snapshot).run()])
    shares = [frozenset(names[i::jobs]) for i in range(jobs)]

    def share(n: int) -> _Part:
        return _Auditor(snapshot, shares[n]).run(account_wide=n == 0)

    parts = parallel.fork_map(share, range(jobs), first_here=True)
    return _report(snapshot, [p if p is not None else share(n) for n, p in enumerate(parts)])


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
