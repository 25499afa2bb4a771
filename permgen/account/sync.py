"""Sync a spec with the account: a pure plan, and an apply that carries it out.

What permgen manages: one custom policy per role, named after the role, whose description
starts with :data:`MARKER`; its attachments to the principals in the role's ``attach:``; and
for a role with an ``sts:`` block, its ceiling attached to the RAM role in ``sts.role_arn``.
Policies without the marker are never changed, detached or deleted; one with a role's name is
a conflict the plan reports and apply refuses to go past, unless the role says ``adopt: true``
(``permgen import`` writes it): then the policy is the role's, its document and attachments
are managed, and its description is left as it is (so prune never deletes it).

Order and safety: policies are created or given a new default version (or description) first (a
new version is created only when the documents differ semantically, and the 5-version limit is
handled by rotation); then attachments are added; detachments and, for policies whose role
left the spec, deletions (only with ``prune``) come last. A failure midway therefore never
leaves a principal without a policy it had, and running apply again completes the change
(attaching what is already attached, detaching what is already detached and deleting what is
already gone count as done). A plan that names principals the account does not have, or that
has conflicts, is refused before the first write.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal

from permgen.account.types import Principal, RamApi
from permgen.errors import CloudError, InputError, SpecError
from permgen.policy.model import Policy, parse_policy
from permgen.spec.compile import CompiledSpec

if TYPE_CHECKING:
    from permgen.semantics.diff import DiffResult
    from permgen.spec.types import Role

MARKER = "[permgen]"

Kind = Literal[
    "create-policy", "update-policy", "update-description", "attach", "detach", "delete-policy"
]


@dataclass(frozen=True)
class Desired:
    name: str
    document: str
    description: str
    principals: frozenset[Principal]
    #: ``adopt: true``: a same-name policy without the marker is this role's, not a conflict.
    adopt: bool = False


@dataclass(frozen=True)
class Current:
    name: str
    exists: bool
    managed: bool = False
    document: str = ""
    principals: frozenset[Principal] = frozenset()
    description: str = ""


@dataclass(frozen=True)
class Change:
    kind: Kind
    policy: str
    principal: Principal | None = None
    document: str = ""
    description: str = ""
    #: For update-policy: the semantic diff from the account's default version (old) to the
    #: spec's document (new); None when the account's document does not parse.
    diff: DiffResult | None = field(default=None, compare=False, repr=False)

    def describe(self) -> str:
        if self.kind == "create-policy":
            return f"+ create policy {self.policy}"
        if self.kind == "update-policy":
            return f"~ new default version of policy {self.policy}"
        if self.kind == "update-description":
            return f"~ description of policy {self.policy}: {self.description!r}"
        if self.kind == "delete-policy":
            return f"- delete policy {self.policy} (its role left the spec)"
        sign = "+" if self.kind == "attach" else "-"
        return f"{sign} {self.kind} {self.policy} {'to' if self.kind == 'attach' else 'from'} {self.principal}"

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "action": self.kind,
            "policy": self.policy,
            "principal": str(self.principal) if self.principal else None,
        }
        if self.kind == "update-description":
            out["description"] = self.description
        if self.kind == "update-policy":
            out["parsed"] = self.diff is not None
            out["new_access"] = [i.to_json() for i in self.diff.new_access] if self.diff else []
            out["removed_access"] = (
                [i.to_json() for i in self.diff.removed_access] if self.diff else []
            )
        return out


@dataclass(frozen=True)
class Missing:
    """A principal the spec attaches a policy to that the account does not have."""

    principal: Principal
    roles: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"principal": str(self.principal), "roles": list(self.roles)}


@dataclass(frozen=True)
class Plan:
    actions: tuple[Change, ...] = ()
    refused: tuple[str, ...] = field(default=())  # policies that exist but are not permgen's
    missing: tuple[Missing, ...] = field(default=())  # principals the account does not have
    # things apply does not change but that will fail later (a token longer than the RAM
    # role allows); they do not make the plan blocked or non-empty
    warnings: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """The account matches the spec: nothing to do and nothing in the way."""
        return not self.actions and not self.blocked

    @property
    def blocked(self) -> bool:
        """Apply refuses this plan: a conflict or a principal that does not exist."""
        return bool(self.refused or self.missing)


def role_principals(role: Role) -> frozenset[Principal]:
    """Who a role's policy is attached to: its ``attach:`` list and, for a role with an
    ``sts:`` block, the RAM role its ``role_arn`` names."""
    principals = {Principal.parse(p) for p in role.attach}
    if role.sts is not None:
        principals.add(Principal("role", role.sts.role_arn.rsplit("/", 1)[1]))
    return frozenset(principals)


def desired_state(compiled: CompiledSpec) -> list[Desired]:
    """What the account should hold for every role. A role whose ``sts.role_arn`` names
    another account than the spec's ``account`` is refused: permgen attaches the ceiling to a
    role of the account it talks to, which would be another role than the one named."""
    out = []
    for name, role in compiled.roles.items():
        sts = role.role.sts
        if sts is not None and role.role.account != "*":
            arn_account = sts.role_arn.split(":")[3]
            if arn_account != role.role.account:
                raise SpecError(
                    f"sts.role_arn names account {arn_account}, but the spec's account is "
                    f"{role.role.account}; plan and apply attach the ceiling to a role of the "
                    "spec's account only",
                    file=compiled.spec.path,
                    line=role.role.line,
                    path=f"roles.{name}.sts.role_arn",
                )
        what = role.role.description or role.role.template or "policy"
        description = f"{MARKER} {what}"[:1024]
        out.append(
            Desired(
                name,
                role.policy.dumps(),
                description,
                role_principals(role.role),
                adopt=role.role.adopt,
            )
        )
    return out


def read_current(ram: RamApi, names: Iterable[str]) -> list[Current]:
    """The account's side of every named policy (one GetPolicy and one ListEntitiesForPolicy
    per policy)."""
    out = []
    for name in names:
        try:
            info = ram.get_policy(name, "Custom")
        except CloudError as exc:
            if exc.code == "EntityNotExist.Policy":
                out.append(Current(name, exists=False))
                continue
            raise
        entities = ram.list_entities_for_policy(name, "Custom")
        principals = frozenset(
            [Principal("user", u) for u in entities.users]
            + [Principal("group", g) for g in entities.groups]
            + [Principal("role", r) for r in entities.roles]
        )
        out.append(
            Current(
                name,
                True,
                info.description.startswith(MARKER),
                info.default_document,
                principals,
                info.description,
            )
        )
    return out


def read_orphans(ram: RamApi, names: Iterable[str]) -> list[Current]:
    """permgen's policies in the account whose role is not among ``names`` (one ListPolicies,
    then one ListEntitiesForPolicy per such policy). Every policy whose description carries
    :data:`MARKER` counts as permgen's: one spec per account."""
    keep = set(names)
    out = []
    for info in ram.list_policies("Custom"):
        if info.policy_name in keep or not info.description.startswith(MARKER):
            continue
        entities = ram.list_entities_for_policy(info.policy_name, "Custom")
        principals = frozenset(
            [Principal("user", u) for u in entities.users]
            + [Principal("group", g) for g in entities.groups]
            + [Principal("role", r) for r in entities.roles]
        )
        out.append(
            Current(info.policy_name, True, True, "", principals, description=info.description)
        )
    return sorted(out, key=lambda c: c.name)


def find_missing(ram: RamApi, desired: Sequence[Desired]) -> list[Missing]:
    """The principals the spec names that the account does not have (one GetUser, GetGroup
    or GetRole per distinct principal)."""
    wanted: dict[Principal, list[str]] = {}
    for d in desired:
        for p in d.principals:
            wanted.setdefault(p, []).append(d.name)
    return [
        Missing(p, tuple(sorted(roles)))
        for p, roles in sorted(wanted.items(), key=lambda kv: str(kv[0]))
        if not ram.principal_exists(p)
    ]


def principal_policies(ram: RamApi, principal: Principal) -> list[Policy]:
    """Every policy in force for a principal today: its own attachments and, for a user, its
    groups' (system policies fetched by type), each named ``TYPE:NAME via WHO``."""
    holders = [principal]
    if principal.kind == "user":
        holders += [Principal("group", g) for g in ram.list_groups_for_user(principal.name)]
    out: list[Policy] = []
    for holder in holders:
        for attached in ram.list_policies_for(holder):
            info = ram.get_policy(attached.policy_name, attached.policy_type)
            parsed = parse_policy(info.default_document, source=attached.policy_name)
            label = f"{attached.policy_type}:{attached.policy_name}" + (
                "" if holder == principal else f" via {holder}"
            )
            out.append(Policy(parsed.statements, name=label))
    return out


def _diff(old: str, new: str, name: str) -> DiffResult | None:
    """The semantic diff from the account's document to the spec's; None when the account's
    does not parse."""
    from permgen.semantics import diff_policies

    try:
        pa, pb = parse_policy(old), parse_policy(new)
    except Exception:
        return None
    return diff_policies(
        [Policy(pa.statements, name=f"{name} (account)")],
        [Policy(pb.statements, name=f"{name} (spec)")],
    )


def plan(
    desired: Sequence[Desired],
    current: Sequence[Current],
    *,
    prune: bool = False,
    orphans: Sequence[Current] = (),
    missing: Sequence[Missing] = (),
) -> Plan:
    """What apply would do: pure, from the two states. ``orphans`` are permgen's policies
    whose role left the spec (:func:`read_orphans`): with ``prune`` they are detached from
    everyone and deleted. Attachments to ``missing`` principals are not planned (apply
    refuses the plan until they exist or leave the spec)."""
    now = {c.name: c for c in current}
    absent = {m.principal for m in missing}
    creates: list[Change] = []
    attaches: list[Change] = []
    detaches: list[Change] = []
    deletes: list[Change] = []
    refused: list[str] = []
    for d in desired:
        c = now.get(d.name, Current(d.name, exists=False))
        if not c.exists:
            creates.append(
                Change("create-policy", d.name, document=d.document, description=d.description)
            )
            have: frozenset[Principal] = frozenset()
        elif not c.managed and not d.adopt:
            refused.append(d.name)
            continue
        else:
            diff = _diff(c.document, d.document, d.name)
            if diff is None or not diff.equivalent:
                creates.append(Change("update-policy", d.name, document=d.document, diff=diff))
            # an adopted policy keeps its own description (no marker is added): prune
            # never deletes it, and without adopt: true it is a conflict again
            if c.managed and c.description != d.description:
                creates.append(Change("update-description", d.name, description=d.description))
            have = c.principals
        for p in sorted(d.principals - have - absent, key=str):
            attaches.append(Change("attach", d.name, p))
        if prune:
            for p in sorted(have - d.principals, key=str):
                detaches.append(Change("detach", d.name, p))
    if prune:
        for o in orphans:
            for p in sorted(o.principals, key=str):
                detaches.append(Change("detach", o.name, p))
            deletes.append(Change("delete-policy", o.name))
    return Plan(tuple(creates + attaches + detaches + deletes), tuple(refused), tuple(missing))


def plan_account(compiled: CompiledSpec, ram: RamApi, *, prune: bool = False) -> Plan:
    """What :func:`apply` would change to make the account match ``compiled``: reads the
    account's managed policies, the principals the spec attaches to and (with ``prune``) the
    managed policies the spec no longer names, then plans. Changes nothing."""
    desired = desired_state(compiled)
    names = [d.name for d in desired]
    current = read_current(ram, names)
    missing = find_missing(ram, desired)
    orphans = read_orphans(ram, names) if prune else []
    planned = plan(desired, current, prune=prune, orphans=orphans, missing=missing)
    warnings = sts_warnings(compiled, ram)
    return replace(planned, warnings=warnings) if warnings else planned


def sts_warnings(compiled: CompiledSpec, ram: RamApi) -> tuple[str, ...]:
    """A role whose ``sts.duration`` is over its RAM role's MaxSessionDuration: every token
    for it would fail (STS refuses the DurationSeconds)."""
    out = []
    for name in sorted(compiled.roles):
        block = compiled.roles[name].role.sts
        if block is None:
            continue
        ram_role = block.role_arn.rsplit("/", 1)[1]
        maximum = ram.role_max_session(ram_role) if ram_role else None
        if maximum and block.duration > maximum:
            out.append(
                f"role {name}: sts.duration {block.duration} s is over RAM role {ram_role}'s "
                f"MaxSessionDuration of {maximum} s: STS would refuse every token (lower "
                "sts.duration or raise MaxSessionDuration)"
            )
    return tuple(out)


def apply(ram: RamApi, planned: Plan, done: list[Change] | None = None) -> list[Change]:
    """Carry out a plan in its (safe) order; returns the actions done (also appended to
    ``done`` as they happen, so a caller still has them when an error is raised). Stops at
    the first error, which is raised: every earlier action has taken effect, none later has.
    A blocked plan (:attr:`Plan.blocked`) raises :class:`InputError` before any write."""
    if planned.refused:
        raise InputError(
            f"policy {planned.refused[0]} exists but was not created by permgen (no "
            f"{MARKER} marker in its description); rename the role or remove the policy. "
            "Nothing was changed"
        )
    if planned.missing:
        m = planned.missing[0]
        raise InputError(
            f"{m.principal} does not exist in the account (named by role "
            f"{', '.join(m.roles)}){f' and {len(planned.missing) - 1} more' if len(planned.missing) > 1 else ''}; "
            "create it or take it out of the spec. Nothing was changed"
        )
    out = done if done is not None else []
    for a in planned.actions:
        if a.kind == "create-policy":
            ram.create_policy(a.policy, a.document, a.description)
        elif a.kind == "update-policy":
            ram.create_policy_version(a.policy, a.document, set_as_default=True, rotate=True)
        elif a.kind == "update-description":
            ram.update_policy_description(a.policy, a.description)
        elif a.kind == "attach":
            assert a.principal is not None
            try:
                ram.attach_policy(a.principal, a.policy, "Custom")
            except CloudError as exc:
                if not exc.code.startswith("EntityAlreadyExists"):
                    raise
        elif a.kind == "detach":
            assert a.principal is not None
            try:
                ram.detach_policy(a.principal, a.policy, "Custom")
            except CloudError as exc:
                if not (exc.code.startswith("EntityNotExist") and exc.code.endswith(".Policy")):
                    raise
        else:
            _delete_policy(ram, a.policy)
        out.append(a)
    return out


def _delete_policy(ram: RamApi, name: str) -> None:
    """Delete a policy: its non-default versions first (RAM refuses DeletePolicy while they
    exist: DeleteConflict.Policy.Version), then the policy. Gone already counts as done."""
    try:
        versions = ram.list_policy_versions(name, "Custom")
        for v in versions:
            if not v.is_default:
                try:
                    ram.delete_policy_version(name, v.version_id)
                except CloudError as exc:
                    if exc.code != "EntityNotExist.Policy.Version":
                        raise
        ram.delete_policy(name)
    except CloudError as exc:
        if exc.code != "EntityNotExist.Policy":
            raise


__all__ = [
    "MARKER",
    "Change",
    "Current",
    "Desired",
    "Missing",
    "Plan",
    "apply",
    "desired_state",
    "find_missing",
    "plan",
    "plan_account",
    "read_current",
    "read_orphans",
    "role_principals",
]
