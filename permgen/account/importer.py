"""Read an account into a spec (``permgen import``): every custom policy becomes a role.

A policy that is exactly what a built-in template compiles to (for grants, options and
conditions derived from its own resources and conditions) becomes a template role; the
match is accepted only when the semantic diff proves the two equivalent, exactly. Any other
policy keeps its statements as a raw ``policy:`` role. Every role carries ``adopt: true``
so that ``plan`` takes the same-name policy as the role's rather than as a conflict.
Attachments become ``attach:`` lists; system policies attached to the same principals are
listed in comments and left alone. Nothing is written to the account.
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from typing import Any

from permgen.account.sync import MARKER
from permgen.account.types import Principal, RamApi
from permgen.errors import InputError, PolicyParseError, SpecError
from permgen.policy.model import ALLOW, Policy, parse_policy
from permgen.spec.types import BUILTIN_OPTIONS, BUILTIN_TEMPLATES, Conditions, Grant, Role

#: A role name (and so a policy name permgen can manage): spec-v1.json's roleName.
ROLE_NAME_RE = re.compile(r"[A-Za-z0-9-]{1,128}")
_OBJECT_ARN_RE = re.compile(r"acs:oss:\*:(\*|[0-9]{16}):([a-z0-9][a-z0-9-]{1,61}[a-z0-9])/(.*)\*")
_PREFIX_OK_RE = re.compile(r"[^*?{}$\x00-\x1f\x7f]*")
_CONDITION_KEYS = {
    ("IpAddress", "acs:sourceip"),
    ("StringEquals", "acs:sourcevpc"),
    ("Bool", "acs:securetransport"),
}
#: Candidates tried per policy at most (templates x option combinations x condition sets).
MAX_CANDIDATES = 64


@dataclass(frozen=True)
class ImportedRole:
    """One custom policy as a role: a template match, or ``document`` kept raw."""

    name: str
    version: str
    description: str
    attach: tuple[str, ...]
    template: str = ""
    grants: tuple[Grant, ...] = ()
    options: tuple[tuple[str, bool], ...] = ()
    conditions: Conditions = field(default_factory=Conditions)
    account: str = "*"
    document: dict[str, Any] | None = None
    #: The account's document (normalized), kept for every role.
    original: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    #: Why the statements are kept raw (empty for a template match).
    reason: str = ""


@dataclass(frozen=True)
class Imported:
    roles: tuple[ImportedRole, ...]
    #: (principal, system policy name) pairs seen on the imported roles' principals.
    system: tuple[tuple[str, str], ...] = ()
    #: Policies not imported, with why (a name that is not a valid role name).
    skipped: tuple[tuple[str, str], ...] = field(default=())


# --------------------------------------------------------------------------- recognition


def _conditions_of(policy: Policy) -> list[Conditions]:
    """Candidate role conditions: those every Allow statement has (the compiler adds the
    role's conditions to each), and none."""
    allows = [s for s in policy.statements if s.effect == ALLOW]
    if not allows:
        return [Conditions()]
    common = set(allows[0].conditions)
    for s in allows[1:]:
        common &= set(s.conditions)
    ip: tuple[str, ...] = ()
    vpc: tuple[str, ...] = ()
    secure = False
    for c in common:
        if (c.operator, c.key.lower()) not in _CONDITION_KEYS:
            continue
        key = c.key.lower()
        if key == "acs:sourceip":
            ip = tuple(c.values)
        elif key == "acs:sourcevpc":
            vpc = tuple(c.values)
        elif tuple(v.lower() for v in c.values) == ("true",):
            secure = True
    found = Conditions(ip, vpc, secure)
    return [found] if found == Conditions() else [found, Conditions()]


def _grants_of(policy: Policy) -> tuple[str, tuple[Grant, ...]] | None:
    """The account and grants the policy's object ARNs name, or None when they do not
    look like a template's (several accounts, or a prefix a spec cannot write)."""
    accounts: set[str] = set()
    buckets: dict[str, set[str]] = {}
    for s in policy.statements:
        for r in s.resources:
            m = _OBJECT_ARN_RE.fullmatch(r)
            if not m:
                continue
            account, bucket, prefix = m.groups()
            if not _PREFIX_OK_RE.fullmatch(prefix) or prefix.startswith("/") or ".." in prefix:
                return None
            accounts.add(account)
            buckets.setdefault(bucket, set()).add(prefix)
    if len(accounts) != 1 or not buckets:
        return None
    grants = tuple(
        Grant(b, ("",) if "" in ps else tuple(sorted(ps))) for b, ps in sorted(buckets.items())
    )
    return accounts.pop(), grants


def _option_combos(template: str) -> list[tuple[tuple[str, bool], ...]]:
    names = sorted(BUILTIN_OPTIONS[template])
    return [
        tuple(zip(names, values, strict=True))
        for values in itertools.product((False, True), repeat=len(names))
    ]


def _actions(policy: Policy) -> set[tuple[str, str]]:
    return {(s.effect, a.lower()) for s in policy.statements for a in s.actions}


def recognise(name: str, policy: Policy) -> tuple[Role | None, str]:
    """The template role whose compiled policy is proven equivalent to ``policy`` (the
    exact semantic diff finds no difference), or None and why not."""
    from permgen.semantics.diff import diff_policies
    from permgen.spec.compile import compile_role

    if any(s.not_action or s.not_resource for s in policy.statements):
        return None, "it uses NotAction or NotResource, which no built-in template writes"
    found = _grants_of(policy)
    if found is None:
        return None, "its resources are not the object ARNs of a built-in template's grants"
    account, grants = found
    want = _actions(policy)
    tried = 0
    for template in BUILTIN_TEMPLATES:
        for options in _option_combos(template):
            for conditions in _conditions_of(policy):
                tried += 1
                if tried > MAX_CANDIDATES:
                    return None, f"no match within {MAX_CANDIDATES} candidates"
                role = Role(
                    name=name,
                    template=template,
                    grants=grants,
                    options=options,
                    conditions=conditions,
                    account=account,
                )
                try:
                    compiled = compile_role(role)
                except (SpecError, InputError):
                    continue
                if _actions(compiled.policy) != want:
                    continue
                diff = diff_policies([policy], [compiled.policy])
                if diff.exact and diff.equivalent:
                    return role, ""
    return None, "no built-in template with these grants and conditions compiles to it exactly"


# --------------------------------------------------------------------------- reading


def _principals(ram: RamApi, name: str) -> list[Principal]:
    entities = ram.list_entities_for_policy(name, "Custom")
    return sorted(
        [Principal("user", u) for u in entities.users]
        + [Principal("group", g) for g in entities.groups]
        + [Principal("role", r) for r in entities.roles],
        key=str,
    )


def _description(text: str) -> str:
    if text.startswith(MARKER):
        text = text[len(MARKER) :].lstrip(" ")
    return text[:1024]


def import_account(ram: RamApi, *, recognise_templates: bool = True) -> Imported:
    """Read every custom policy, its default version and attachments (ListPolicies, then a
    GetPolicy and a ListEntitiesForPolicy per policy, and a ListPoliciesFor* per principal
    for the system policies). Reads only."""
    roles: list[ImportedRole] = []
    skipped: list[tuple[str, str]] = []
    holders: set[Principal] = set()
    for listed in sorted(ram.list_policies("Custom"), key=lambda p: p.policy_name):
        name = listed.policy_name
        if not ROLE_NAME_RE.fullmatch(name):
            skipped.append((name, "not a valid role name (letters, digits and hyphens)"))
            continue
        info = ram.get_policy(name, "Custom")
        principals = _principals(ram, name)
        holders.update(principals)
        attach = tuple(str(p) for p in principals)
        description = _description(info.description)
        try:
            policy = parse_policy(info.default_document, source=name)
        except PolicyParseError as exc:
            skipped.append((name, f"its default version does not parse: {exc.detail}"))
            continue
        role, reason = (
            recognise(name, policy) if recognise_templates else (None, "template matching is off")
        )
        if role is not None:
            roles.append(
                ImportedRole(
                    name,
                    info.default_version,
                    description,
                    attach,
                    template=role.template,
                    grants=role.grants,
                    options=tuple((k, bool(v)) for k, v in role.options),
                    conditions=role.conditions,
                    account=role.account,
                    original=Policy(policy.statements).to_json(),
                )
            )
        else:
            roles.append(
                ImportedRole(
                    name,
                    info.default_version,
                    description,
                    attach,
                    document=Policy(policy.statements).to_json(),
                    reason=reason,
                )
            )
    roles = _one_account(roles)
    system: set[tuple[str, str]] = set()
    for p in sorted(holders, key=str):
        for attached in ram.list_policies_for(p):
            if attached.policy_type == "System":
                system.add((str(p), attached.policy_name))
    return Imported(tuple(roles), tuple(sorted(system)), tuple(skipped))


def _one_account(roles: list[ImportedRole]) -> list[ImportedRole]:
    """A spec has one account (``defaults.account``): template roles whose ARNs name
    another account than the most common one are kept raw."""
    counts: dict[str, int] = {}
    for r in roles:
        if r.document is None:
            counts[r.account] = counts.get(r.account, 0) + 1
    if len(counts) <= 1:
        return roles
    chosen = max(sorted(counts), key=lambda a: counts[a])
    out = []
    for r in roles:
        if r.document is None and r.account != chosen:
            r = ImportedRole(
                r.name, r.version, r.description, r.attach, document=r.original,
                reason=f"its ARNs name account {r.account}; the spec's account is {chosen}",
            )  # fmt: skip
        out.append(r)
    return out


# --------------------------------------------------------------------------- writing


def _scalar(value: Any) -> str:
    """One YAML scalar or flow value (JSON is YAML, and quotes every string)."""
    return json.dumps(value, ensure_ascii=False)


def _comment(text: str) -> str:
    return " ".join(text.split())


def _options_text(role: ImportedRole) -> str:
    defaults = BUILTIN_OPTIONS.get(role.template, {})
    changed = {k: v for k, v in role.options if defaults.get(k) != v}
    if not changed:
        return ""
    return "{" + ", ".join(f"{k}: {'true' if v else 'false'}" for k, v in changed.items()) + "}"


def _document_lines(document: dict[str, Any], indent: str) -> list[str]:
    """The document as block YAML: one flow mapping (JSON) per statement."""
    lines = [f"{indent}Version: {_scalar(document.get('Version', '1'))}", f"{indent}Statement:"]
    for statement in document.get("Statement", []):
        lines.append(f"{indent}  - {json.dumps(statement, ensure_ascii=False)}")
    return lines


def render_spec(imported: Imported, *, source: str = "the account") -> str:
    """The imported spec as YAML, roles in name order, each with a comment naming its source
    policy and version (and why it is kept raw)."""
    out = [
        f"# Imported from {source} by permgen import: one role per custom policy.",
        "# adopt: true makes each role the owner of the existing same-name policy (see",
        "# docs/adopting.md); plan right after import shows no changes.",
        "version: 1",
    ]
    accounts = {r.account for r in imported.roles if r.document is None}
    if accounts - {"*"}:
        out += ["defaults:", f"  account: {_scalar(accounts.pop())}"]
    if imported.system:
        out.append("# System policies attached to these principals (left alone; not managed):")
        out += [f"#   {who}: {name}" for who, name in imported.system]
    for name, why in imported.skipped:
        out.append(f"# NOT imported: policy {_comment(name)}: {_comment(why)}")
    out.append("roles:")
    for role in sorted(imported.roles, key=lambda r: r.name):
        out.append(f"  # source: custom policy {role.name}, version {role.version}")
        if role.document is not None:
            out.append(f"  # kept raw: {_comment(role.reason)}")
        out.append(f"  {role.name}:")
        if role.description:
            out.append(f"    description: {_scalar(role.description)}")
        if role.document is not None:
            out.append("    policy:")
            out += _document_lines(role.document, "      ")
        else:
            out.append(f"    template: {role.template}")
            out.append("    grants:")
            for g in role.grants:
                out.append(f"      - bucket: {g.bucket}")
                if g.prefixes != ("",):
                    out.append(f"        prefixes: {_scalar(list(g.prefixes))}")
            options = _options_text(role)
            if options:
                out.append(f"    options: {options}")
            c = role.conditions
            if c != Conditions():
                out.append("    conditions:")
            if c.source_ip:
                out.append(f"      source_ip: {_scalar(list(c.source_ip))}")
            if c.source_vpc:
                out.append(f"      source_vpc: {_scalar(list(c.source_vpc))}")
            if c.secure_transport:
                out.append("      secure_transport: true")
        if role.attach:
            out.append(f"    attach: {_scalar(list(role.attach))}")
        out.append("    adopt: true")
    return "\n".join(out) + "\n"


def verify(imported: Imported, text: str) -> list[str]:
    """Compile the rendered spec and diff every role against the account's document: one
    line per role that is not proven equivalent, exactly (none when the import is exact)."""
    from permgen.semantics.diff import diff_policies
    from permgen.spec.compile import compile_spec
    from permgen.spec.load import parse_spec

    compiled = compile_spec(parse_spec(text, source="<imported spec>"))
    problems = []
    for r in imported.roles:
        original = r.document if r.document is not None else r.original
        account = parse_policy(json.dumps(original), source=r.name)
        got = compiled.roles[r.name].policy
        diff = diff_policies([account], [got])
        if not (diff.exact and diff.equivalent):
            problems.append(f"role {r.name}: the compiled spec is not equivalent to the account")
    return problems


def summary(imported: Imported) -> list[str]:
    """One line per role (template or raw, and why), per skipped policy, and the system
    policies seen."""
    lines = []
    for r in imported.roles:
        if r.document is None:
            lines.append(f"{r.name}: template {r.template} (proven equivalent)")
        else:
            lines.append(f"{r.name}: raw policy ({r.reason})")
    lines += [f"{n}: NOT imported ({why})" for n, why in imported.skipped]
    lines += [f"{who}: system policy {n} left alone" for who, n in imported.system]
    return lines


__all__ = [
    "Imported",
    "ImportedRole",
    "import_account",
    "recognise",
    "render_spec",
    "summary",
    "verify",
]
