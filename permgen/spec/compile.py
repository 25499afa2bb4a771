"""Compile role specs into minimal RAM policies.

For each role: fill or widen its placeholders, render its template, parse the output
exactly like any other policy, add the role's conditions to every Allow statement, merge
statements where that keeps the meaning, sort, and check the size against RAM's limit.

A role with an ``sts:`` block compiles two ways. With values for its placeholders it gives
the narrow **session policy** (limit 2,048 bytes). Without values it gives its **ceiling**,
every placeholder widened to ``*``: the policy attached to the RAM role itself, so every
session policy is contained in what the role may do.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from permgen.errors import (
    PlaceholderError,
    PolicyParseError,
    PolicySizeError,
    SpecError,
)
from permgen.policy.model import (
    ALLOW,
    POLICY_LIMIT,
    SESSION_POLICY_LIMIT,
    Condition,
    Policy,
    Statement,
    merge_statements,
    parse_policy,
    sorted_statements,
)
from permgen.semantics.bucket_policy import (
    BUCKET_POLICY_LIMIT,
    BucketPolicy,
    BucketStatement,
    parse_bucket_policy,
)
from permgen.spec.load import load_spec
from permgen.spec.types import (
    BUILTIN_TEMPLATES,
    PLACEHOLDER_RE,
    BucketSpec,
    Conditions,
    Grant,
    Role,
    Spec,
    check_placeholder_value,
)

Mode = Literal["policy", "ceiling", "session"]


@dataclass(frozen=True)
class CompiledRole:
    """One role's policy. ``mode`` says which form: a plain policy (no sts: block), the
    ceiling of an STS role (placeholders widened to ``*``), or a session policy."""

    name: str
    role: Role
    policy: Policy
    mode: Mode
    values: Mapping[str, str] = field(default_factory=dict)

    @property
    def has_sts(self) -> bool:
        """True when the role mints tokens, so its session policies must fit 2,048 bytes."""
        return self.role.sts is not None

    @property
    def limit(self) -> int:
        return SESSION_POLICY_LIMIT if self.mode == "session" else POLICY_LIMIT


@dataclass(frozen=True)
class CompiledSpec:
    spec: Spec
    roles: Mapping[str, CompiledRole]
    #: Each ``buckets:`` entry's compiled bucket policy (None: the spec leaves it unmanaged).
    buckets: Mapping[str, BucketPolicy | None] = field(default_factory=dict)


# --------------------------------------------------------------------------- context


def _oss_arn(account: str, path: str) -> str:
    return f"acs:oss:*:{account}:{path}"


def _ancestors(prefix: str) -> list[str]:
    """``"a/b/c"`` -> ``["", "a/", "a/b/"]``: the folders a console walks through."""
    out = [""]
    for i, ch in enumerate(prefix):
        if ch == "/" and i + 1 < len(prefix):
            out.append(prefix[: i + 1])
    return out


def _fill(prefix: str, values: Mapping[str, str] | None) -> str:
    if values is None:
        return PLACEHOLDER_RE.sub("*", prefix)
    return PLACEHOLDER_RE.sub(lambda m: values[m.group(1)], prefix)


def _grant_context(grant: Grant, account: str, values: Mapping[str, str] | None) -> dict[str, Any]:
    prefixes = sorted({_fill(p, values) for p in grant.prefixes})
    whole = "" in prefixes
    if whole:
        prefixes = [""]
    ancestors = sorted({a for p in prefixes for a in _ancestors(p)})
    return {
        "bucket": grant.bucket,
        "bucket_arn": _oss_arn(account, grant.bucket),
        "prefixes": prefixes,
        "object_arns": [_oss_arn(account, f"{grant.bucket}/{p}*") for p in prefixes],
        "list_patterns": [] if whole else [f"{p}*" for p in prefixes],
        "whole_bucket": whole,
        "ancestors": ancestors,
    }


def _context(role: Role, values: Mapping[str, str] | None) -> dict[str, Any]:
    grants = [_grant_context(g, role.account, values) for g in role.grants]
    return {
        "role": {"name": role.name, "description": role.description, "template": role.template},
        "account": role.account,
        "options": role.option_map,
        "grants": grants,
        "all_object_arns": sorted({arn for g in grants for arn in g["object_arns"]}),
        "service_arn": _oss_arn(role.account, "*"),
        "values": dict(values or {}),
    }


# --------------------------------------------------------------------------- conditions


def condition_block(conditions: Conditions) -> tuple[Condition, ...]:
    """The RAM conditions a role's ``conditions:`` stands for."""
    out: list[Condition] = []
    if conditions.source_ip:
        out.append(Condition("IpAddress", "acs:SourceIp", conditions.source_ip))
    if conditions.source_vpc:
        out.append(Condition("StringEquals", "acs:SourceVpc", conditions.source_vpc))
    if conditions.secure_transport:
        out.append(Condition("Bool", "acs:SecureTransport", ("true",)))
    return tuple(out)


def _with_conditions(statement: Statement, extra: tuple[Condition, ...], role: str) -> Statement:
    if statement.effect != ALLOW or not extra:
        return statement
    have = {(c.operator, c.key) for c in statement.conditions}
    for cond in extra:
        if (cond.operator, cond.key) in have:
            raise SpecError(
                f"the template already sets {cond.operator} {cond.key}; the role's conditions "
                "would collide with it (remove one of them)",
                path=f"roles.{role}.conditions",
            )
    return Statement(
        statement.effect,
        statement.actions,
        statement.resources,
        statement.conditions + extra,
        statement.not_action,
        statement.not_resource,
        statement.sid,
    )


# --------------------------------------------------------------------------- compile


def _check_values(role: Role, values: Mapping[str, str]) -> dict[str, str]:
    needed = role.placeholders
    missing = [n for n in needed if n not in values]
    if missing:
        raise PlaceholderError(
            f"role {role.name}: no value for placeholder {{{missing[0]}}} "
            f"(give --var {missing[0]}=VALUE, or no --var at all for the ceiling)"
        )
    for name in needed:
        problem = check_placeholder_value(name, values[name])
        if problem:
            raise PlaceholderError(f"role {role.name}: {problem}")
    return {n: values[n] for n in needed}


def compile_role(
    role: Role,
    *,
    values: Mapping[str, str] | None = None,
    templates_dir: Path | None = None,
    spec_path: str | None = None,
) -> CompiledRole:
    """Compile one role. ``values`` fill its placeholders (session policy); without them a
    role with an sts: block gives its ceiling."""
    from permgen.spec.templates import render

    mode: Mode
    used: dict[str, str] = {}
    if role.sts is None:
        mode = "policy"
        fill: Mapping[str, str] | None = None
    elif values is None:
        mode = "ceiling"
        fill = None
    else:
        mode = "session"
        used = _check_values(role, values)
        fill = used
    if role.policy is not None:  # a raw policy: kept as written (no conditions are added)
        raw = Policy(sorted_statements(merge_statements(role.policy.statements)), name=role.name)
        compiled = CompiledRole(name=role.name, role=role, policy=raw, mode=mode, values=used)
        _check_size(compiled)
        return compiled
    text = render(role.template, _context(role, fill), user_dir=templates_dir, role=role.name)
    trusted = role.template in BUILTIN_TEMPLATES
    try:
        # built-in templates emit the whole policy with one json.dumps: no key repeats, no
        # trailing comma
        rendered = parse_policy(
            text,
            source=f"template {role.template!r} for role {role.name}",
            trusted=trusted,
        )
    except PolicyParseError as exc:
        raise SpecError(
            f"template {role.template!r} did not render a valid policy: {exc.detail}"
            + (f" (at {exc.path})" if exc.path else "")
            + (f" (rendered line {exc.line})" if exc.line else ""),
            file=spec_path,
            line=role.line,
            path=f"roles.{role.name}.template",
        ) from None
    extra = condition_block(role.conditions)
    statements = [_with_conditions(s, extra, role.name) for s in rendered.statements]
    policy = Policy(sorted_statements(merge_statements(statements)), name=role.name)
    compiled = CompiledRole(name=role.name, role=role, policy=policy, mode=mode, values=used)
    _check_size(compiled)
    return compiled


def _check_size(compiled: CompiledRole) -> None:
    size = compiled.policy.size()
    limit = compiled.limit
    if size <= limit:
        return
    what = "session policy" if compiled.mode == "session" else "policy"
    hint = (
        "use fewer or shorter prefixes in this role, or split its grants over several roles"
        if compiled.mode == "session"
        else "split its grants over several roles (a principal can have up to 10 custom policies)"
    )
    raise PolicySizeError(
        f"role {compiled.name}: the compiled {what} is {size} bytes, {size - limit} over "
        f"RAM's limit of {limit}; {hint}",
        role=compiled.name,
        size=size,
        limit=limit,
    )


def compile_spec(
    spec: Spec,
    *,
    roles: Iterable[str] | None = None,
    values: Mapping[str, str] | None = None,
) -> CompiledSpec:
    """Compile the selected roles (all by default) of a loaded spec.

    ``values`` fill placeholders; every value must be used by some selected role, so a
    misspelt ``--var`` is an error rather than a silent ceiling.
    """
    names = list(roles) if roles is not None else list(spec.roles)
    for name in names:
        if name not in spec.roles:
            import difflib

            hint = difflib.get_close_matches(name, list(spec.roles), n=1)
            extra = f"; did you mean {hint[0]!r}?" if hint else ""
            raise SpecError(f"no role named {name!r}{extra}", file=spec.path)
    selected = [spec.roles[n] for n in dict.fromkeys(names)]
    if values:
        used = {p for r in selected for p in r.placeholders}
        unused = [k for k in values if k not in used]
        if unused:
            raise PlaceholderError(
                f"--var {unused[0]}: no selected role has a placeholder {{{unused[0]}}}"
            )
    out: dict[str, CompiledRole] = {}
    for role in selected:
        out[role.name] = compile_role(
            role,
            values=values if (values and role.placeholders) else None,
            templates_dir=spec.templates_dir,
            spec_path=spec.path,
        )
    buckets = {name: compile_bucket_policy(b, spec.account) for name, b in spec.buckets.items()}
    return CompiledSpec(spec=spec, roles=out, buckets=buckets)


def compile_file(
    path: str | Path,
    *,
    roles: Iterable[str] | None = None,
    values: Mapping[str, str] | None = None,
    templates_dir: Path | None = None,
) -> CompiledSpec:
    """Load, validate and compile a spec file."""
    spec = load_spec(path, templates_dir=templates_dir)
    return compile_spec(spec, roles=roles, values=values)


def session_policy(spec: Spec, role_name: str, values: Mapping[str, str]) -> CompiledRole:
    """The session policy of an STS role for the given placeholder values."""
    role = spec.roles.get(role_name)
    if role is None:
        raise SpecError(f"no role named {role_name!r}", file=spec.path)
    if role.sts is None:
        raise SpecError(
            f"role {role_name} has no sts: block, so it cannot mint tokens",
            file=spec.path,
            path=f"roles.{role_name}",
        )
    missing = [n for n in role.placeholders if n not in values]
    if missing:  # a token needs every value: there is no ceiling to fall back to
        wanted = " ".join(f"--var {n}=VALUE" for n in missing)
        given = "" if values else " (no --var was given)"
        raise PlaceholderError(
            f"role {role_name}: a token needs a value for each placeholder; give {wanted}{given}"
        )
    return compile_role(
        role, values=dict(values), templates_dir=spec.templates_dir, spec_path=spec.path
    )


# --------------------------------------------------------------------------- output


# --------------------------------------------------------------------------- bucket policies

#: The marker a ``user:NAME`` principal compiles to offline: OSS names a RAM user by its
#: numeric UID, which only the account knows; ``plan`` resolves it (RAM GetUser's UserId).
USER_MARKER = "user:"


def bucket_principal(principal: str, account: str) -> str:
    """The OSS Principal string a spec principal stands for (ram-facts O1, O3).

    ``account:UID`` -> ``UID``; ``anonymous`` -> ``*`` (OSS has no narrower name for
    unsigned callers); ``role:NAME`` -> ``arn:sts::<account>:assumed-role/NAME/*`` (every
    session of the role); ``user:NAME`` stays ``user:NAME`` until plan resolves the UID."""
    kind, _, name = principal.partition(":")
    if principal == "anonymous":
        return "*"
    if kind == "account":
        return name
    if kind == "role":
        return f"arn:sts::{account}:assumed-role/{name}/*"
    return principal


def unresolved_users(policy: BucketPolicy) -> list[str]:
    """The RAM user names still written as ``user:NAME`` markers, in first-use order."""
    seen: dict[str, None] = {}
    for bs in policy.statements:
        for p in bs.principals:
            if p.startswith(USER_MARKER):
                seen.setdefault(p[len(USER_MARKER) :], None)
    return list(seen)


def resolve_users(policy: BucketPolicy, uids: Mapping[str, str]) -> BucketPolicy:
    """``policy`` with each ``user:NAME`` marker replaced by ``uids[NAME]``."""
    return BucketPolicy(
        tuple(
            BucketStatement(
                tuple(
                    uids[p[len(USER_MARKER) :]] if p.startswith(USER_MARKER) else p
                    for p in bs.principals
                ),
                bs.statement,
            )
            for bs in policy.statements
        ),
        name=policy.name,
    )


def _bucket_resource(resource: str, account: str) -> str:
    return resource if resource.startswith("acs:") else _oss_arn(account, resource)


def compile_bucket_policy(bucket: BucketSpec, account: str) -> BucketPolicy | None:
    """The bucket policy a ``buckets:`` entry declares (None: no ``policy:`` key).

    Resources are ARNs in the owner's account (``defaults.account``, ``*`` if unset); a
    statement's ``conditions:`` become its Condition block, for Deny statements too."""
    if bucket.policy is None:
        return None
    statements = []
    for st in bucket.policy:
        statement: dict[str, Any] = {
            "Effect": st.effect,
            "Principal": [bucket_principal(p, account) for p in st.principals],
            "Action": list(st.actions),
            "Resource": [_bucket_resource(r, account) for r in st.resources],
        }
        cond: dict[str, dict[str, list[str]]] = {}
        for c in condition_block(st.conditions):
            cond.setdefault(c.operator, {})[c.key] = list(c.values)
        if cond:
            statement["Condition"] = cond
        statements.append(statement)
    try:
        policy = parse_bucket_policy({"Version": "1", "Statement": statements})
    except PolicyParseError as exc:
        raise SpecError(
            f"bucket {bucket.name}: {exc}", path=f"buckets.{bucket.name}.policy"
        ) from None
    policy = BucketPolicy(policy.statements, name=bucket.name)
    size = len(bucket_policy_text(policy).encode()) - 1  # without the final newline
    if size > BUCKET_POLICY_LIMIT:
        raise PolicySizeError(
            f"bucket {bucket.name}: the compiled bucket policy is {size} bytes, "
            f"{size - BUCKET_POLICY_LIMIT} over OSS's limit of {BUCKET_POLICY_LIMIT}",
            role=bucket.name,
            size=size,
            limit=BUCKET_POLICY_LIMIT,
        )
    return policy


def bucket_policy_text(policy: BucketPolicy, *, indent: int | None = None) -> str:
    """A bucket policy as JSON text (compact by default, the form OSS's limit is on)."""
    if indent is None:
        return json.dumps(policy.to_json(), separators=(",", ":"), ensure_ascii=False) + "\n"
    return json.dumps(policy.to_json(), indent=indent, ensure_ascii=False) + "\n"


def policy_text(policy: Policy, *, indent: int | None = None) -> str:
    """The policy JSON as written to files and stdout (compact unless ``indent``)."""
    if indent is None:
        return policy.dumps() + "\n"
    return json.dumps(policy.to_json(), indent=indent, ensure_ascii=False) + "\n"


_HCL_TEMPLATE_RE = re.compile(r"([$%])\{")


def _hcl_label(name: str) -> str:
    label = name.replace("-", "_")
    return label if re.match(r"^[A-Za-z_]", label) else f"role_{label}"


_ATTACHMENT = {
    "user": ("alicloud_ram_user_policy_attachment", "user_name"),
    "group": ("alicloud_ram_group_policy_attachment", "group_name"),
    "role": ("alicloud_ram_role_policy_attachment", "role_name"),
}


def _hcl_string(value: str) -> str:
    return _HCL_TEMPLATE_RE.sub(
        lambda m: m.group(1) * 2 + "{", json.dumps(value, ensure_ascii=False)
    )


def _principals(role: Role) -> list[tuple[str, str]]:
    """(kind, name) of everyone the role's policy is attached to: ``attach:`` and the RAM
    role an ``sts:`` block names (as plan and apply attach it), sorted."""
    out = {tuple(p.split(":", 1)) for p in role.attach}
    if role.sts is not None:
        out.add(("role", role.sts.role_arn.rsplit("/", 1)[1]))
    return sorted((k, n) for k, n in out)


def terraform_text(compiled: CompiledRole, *, import_existing: bool = False) -> str:
    """One ``alicloud_ram_policy`` resource, an attachment resource per principal the role
    is attached to, and with ``import_existing`` an ``import`` block (Terraform 1.5+) for the
    policy and each attachment, so an existing account is adopted rather than recreated.

    The text is what ``terraform fmt`` writes: ``=`` aligned within a block, and the policy
    document as JSON with `` : `` between keys and values inside ``jsonencode`` (JSON is valid
    HCL expression syntax); ``${`` and ``%{`` are escaped so HCL never interpolates a
    value."""
    body = json.dumps(
        compiled.policy.to_json(), indent=2, ensure_ascii=False, separators=(",", " : ")
    )
    body = _HCL_TEMPLATE_RE.sub(lambda m: m.group(1) * 2 + "{", body)
    body = "\n".join(("  " + line) if i else line for i, line in enumerate(body.splitlines()))
    role = compiled.role
    description = role.description or f"permgen role {compiled.name} ({role.template or 'policy'})"
    label = _hcl_label(compiled.name)
    blocks = [
        f'resource "alicloud_ram_policy" "{label}" {{\n'
        f"  policy_name     = {_hcl_string(compiled.name)}\n"
        f"  description     = {_hcl_string(description)}\n"
        f'  rotate_strategy = "DeleteOldestNonDefaultVersionWhenLimitExceeded"\n'
        f"  policy_document = jsonencode({body})\n"
        f"}}\n"
    ]
    imports = []
    if import_existing:
        imports.append(
            f"import {{\n  to = alicloud_ram_policy.{label}\n  id = {_hcl_string(compiled.name)}\n}}\n"
        )
    used: set[str] = set()
    for kind, name in _principals(role):
        resource, key = _ATTACHMENT[kind]
        base = f"{label}_{kind}_{re.sub(r'[^A-Za-z0-9_]', '_', name)}"
        alabel, n = base, 2
        while alabel in used:
            alabel, n = f"{base}_{n}", n + 1
        used.add(alabel)
        pad = " " * (len("policy_name") - len(key)) if len(key) < len("policy_name") else ""
        blocks.append(
            f'resource "{resource}" "{alabel}" {{\n'
            f"  policy_name = alicloud_ram_policy.{label}.policy_name\n"
            f'  policy_type = "Custom"\n'
            f"  {key}{pad} = {_hcl_string(name)}\n"
            f"}}\n"
        )
        if import_existing:
            ident = f"{kind}:{compiled.name}:Custom:{name}"
            imports.append(
                f"import {{\n  to = {resource}.{alabel}\n  id = {_hcl_string(ident)}\n}}\n"
            )
    return "\n".join(blocks + imports)


__all__ = [
    "CompiledRole",
    "CompiledSpec",
    "compile_file",
    "compile_role",
    "compile_spec",
    "condition_block",
    "policy_text",
    "session_policy",
    "terraform_text",
]
