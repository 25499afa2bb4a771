"""The values a spec becomes (frozen; nothing downstream sees raw YAML), and how they are
built from a spec that passed every check."""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from permgen.policy.model import Policy, parse_policy

BUILTIN_TEMPLATES = ("reader", "writer", "temporary-uploader")

#: Options each built-in template takes, with their defaults (DESIGN section 2).
BUILTIN_OPTIONS: dict[str, dict[str, bool]] = {
    "reader": {"versions": False, "browse": False},
    "writer": {"read": True, "delete": False, "versions": False, "browse": False},
    "temporary-uploader": {},
}

#: A placeholder value can never widen a grant: no wildcard, slash, dot-dot or ``${``.
#: Validators are applied with ``fullmatch`` (never ``match`` with ``$``, which accepts a
#: trailing newline).
PLACEHOLDER_VALUE_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,63}")
PLACEHOLDER_RE = re.compile(r"\{([^{}]*)\}")
PLACEHOLDER_NAME_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,31}")


# --------------------------------------------------------------------------- values


@dataclass(frozen=True)
class Conditions:
    source_ip: tuple[str, ...] = ()
    source_vpc: tuple[str, ...] = ()
    secure_transport: bool = False


@dataclass(frozen=True)
class Grant:
    bucket: str
    prefixes: tuple[str, ...] = ("",)


@dataclass(frozen=True)
class StsBlock:
    role_arn: str
    duration: int = 3600


@dataclass(frozen=True)
class Role:
    name: str
    template: str
    grants: tuple[Grant, ...]
    description: str = ""
    options: tuple[tuple[str, bool | str | int], ...] = ()
    conditions: Conditions = Conditions()
    account: str = "*"
    attach: tuple[str, ...] = ()
    sts: StsBlock | None = None
    line: int | None = None
    #: A raw ``policy:`` role's document, kept as written (``template`` is "" and there
    #: are no grants); None for a template role.
    policy: Policy | None = field(default=None, compare=False, repr=False)
    #: ``adopt: true``: the account's same-name policy without the marker is this role's.
    adopt: bool = False

    @property
    def option_map(self) -> dict[str, bool | str | int]:
        return dict(self.options)

    @property
    def placeholders(self) -> tuple[str, ...]:
        """Placeholder names used in this role's prefixes, in first-use order."""
        seen: dict[str, None] = {}
        for grant in self.grants:
            for prefix in grant.prefixes:
                for name in PLACEHOLDER_RE.findall(prefix):
                    seen.setdefault(name, None)
        return tuple(seen)


@dataclass(frozen=True)
class BucketRule:
    """An overwrite-protection, replication or lifecycle rule of a bucket (the fields its
    kind uses; the others keep their defaults)."""

    prefix: str = ""
    suffix: str = ""
    principals: tuple[str, ...] = ()
    target: str = ""
    location: str = ""
    expire_days: int = 0


@dataclass(frozen=True)
class BucketStatementSpec:
    """One bucket-policy statement as written: principals are ``user:NAME``,
    ``role:NAME``, ``account:UID`` or ``anonymous`` (none: everyone); resources are
    bucket-relative (``logs/exports/*``) or full ARNs."""

    effect: str
    principals: tuple[str, ...]
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    conditions: Conditions = Conditions()


@dataclass(frozen=True)
class BucketSpec:
    """A bucket's protections and policy. A setting that is ``None`` is not managed (the
    spec does not name it); an empty tuple for a rule list or the policy means "none"."""

    name: str
    versioning: str | None = None  # enabled | suspended | off
    retention_days: int | None = None
    overwrite_protection: tuple[BucketRule, ...] | None = None
    replication: tuple[BucketRule, ...] | None = None
    lifecycle: tuple[BucketRule, ...] | None = None
    policy: tuple[BucketStatementSpec, ...] | None = None
    line: int | None = None


@dataclass(frozen=True)
class Spec:
    path: str
    roles: Mapping[str, Role]
    templates_dir: Path | None = None
    source: str = field(default="", repr=False, compare=False)
    #: The spec's ``defaults`` and ``templates`` entries as written (for review's
    #: "what changed for every role" notes).
    defaults: Any = field(default=None, repr=False, compare=False)
    templates_entry: str | None = field(default=None, repr=False, compare=False)
    buckets: Mapping[str, BucketSpec] = field(default_factory=dict)
    #: ``defaults.account`` (the bucket owner's UID for bucket policies), ``*`` if unset.
    account: str = "*"


def check_placeholder_value(name: str, value: str) -> str | None:
    """Why ``value`` may not fill ``{name}``, or None when it may."""
    if PLACEHOLDER_VALUE_RE.fullmatch(value) and ".." not in value:
        return None
    if not value:
        return f"--var {name}: the value is empty"
    if len(value) > 64:
        return f"--var {name}: the value is {len(value)} characters; at most 64 are allowed"
    return (
        f"--var {name}={value!r}: a placeholder value must match "
        f"{PLACEHOLDER_VALUE_RE.pattern} (no '*', '?', '/', '..' or '${{'), so it can never widen a grant"
    )


@dataclass(frozen=True)
class Problem:
    """One thing wrong with a spec: where (a path of keys and indexes) and what."""

    path: tuple[Any, ...]
    message: str
    suggests: str | None = None  # an unknown key's likely meaning
    missing: str | None = None  # a required key that is absent


# --------------------------------------------------------------------------- building values


def _conditions(block: Mapping[str, Any] | None, base: Conditions) -> Conditions:
    if not block:
        return base
    return Conditions(
        source_ip=tuple(block["source_ip"]) if "source_ip" in block else base.source_ip,
        source_vpc=tuple(block["source_vpc"]) if "source_vpc" in block else base.source_vpc,
        secure_transport=block.get("secure_transport", base.secure_transport),
    )


def build(
    data: dict[str, Any],
    path: str,
    line_of: Callable[[tuple[Any, ...]], int | None],
    templates_dir: Path | None,
    text: str,
) -> Spec:
    """The :class:`Spec` of checked data (``line_of``: the line a path starts on)."""
    defaults = data.get("defaults") or {}
    default_conditions = _conditions(defaults.get("conditions"), Conditions())
    account = defaults.get("account", "*")
    roles: dict[str, Role] = {}
    for name, raw in data["roles"].items():
        if "policy" in raw:
            roles[name] = Role(
                name=name,
                template="",
                grants=(),
                description=raw.get("description", ""),
                account=account,
                attach=tuple(raw.get("attach") or ()),
                line=line_of(("roles", name)),
                policy=parse_policy(json.dumps(raw["policy"]), source=f"roles.{name}.policy"),
                adopt=bool(raw.get("adopt", False)),
            )
            continue
        template = raw["template"]
        options: dict[str, bool | str | int] = dict(BUILTIN_OPTIONS.get(template, {}))
        options.update(raw.get("options") or {})
        sts = raw.get("sts")
        roles[name] = Role(
            name=name,
            template=template,
            grants=tuple(
                Grant(bucket=g["bucket"], prefixes=tuple(g.get("prefixes", [""])))
                for g in raw["grants"]
            ),
            description=raw.get("description", ""),
            options=tuple(sorted(options.items())),
            conditions=_conditions(raw.get("conditions"), default_conditions),
            account=account,
            attach=tuple(raw.get("attach") or ()),
            sts=StsBlock(role_arn=sts["role_arn"], duration=int(sts.get("duration", 3600)))
            if sts
            else None,
            line=line_of(("roles", name)),
            adopt=bool(raw.get("adopt", False)),
        )
    buckets: dict[str, BucketSpec] = {}
    for name, raw in (data.get("buckets") or {}).items():
        buckets[name] = _bucket(name, raw, line_of(("buckets", name)))
    return Spec(
        path=path,
        roles=roles,
        templates_dir=templates_dir,
        source=text,
        defaults=data.get("defaults"),
        templates_entry=data.get("templates"),
        buckets=buckets,
        account=account,
    )


def _rules(raw: Any) -> tuple[BucketRule, ...] | None:
    if raw is None:
        return None
    return tuple(
        BucketRule(
            prefix=r.get("prefix", ""),
            suffix=r.get("suffix", ""),
            principals=tuple(r.get("principals") or ()),
            target=r.get("target", ""),
            location=r.get("location", ""),
            expire_days=int(r.get("expire_days", 0)),
        )
        for r in raw
    )


def _bucket(name: str, raw: Mapping[str, Any], line: int | None) -> BucketSpec:
    policy = raw.get("policy")
    return BucketSpec(
        name=name,
        versioning=raw.get("versioning"),
        retention_days=raw.get("retention_days"),
        overwrite_protection=_rules(raw.get("overwrite_protection")),
        replication=_rules(raw.get("replication")),
        lifecycle=_rules(raw.get("lifecycle")),
        policy=None
        if policy is None
        else tuple(
            BucketStatementSpec(
                effect=st["effect"],
                principals=tuple(st["principals"]),
                actions=tuple(st["actions"]),
                resources=tuple(st.get("resources") or (name, f"{name}/*")),
                conditions=_conditions(st.get("conditions"), Conditions()),
            )
            for st in policy
        ),
        line=line,
    )
