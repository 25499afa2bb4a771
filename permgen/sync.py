"""Sync a spec with the account: a pure plan, and an apply that carries it out.

What permgen manages: one custom policy per role, named after the role, whose description
starts with :data:`MARKER`; its attachments to the principals in the role's ``attach:``; and
for a role with an ``sts:`` block, its ceiling attached to the RAM role in ``sts.role_arn``.
Policies without the marker are never changed or detached.

Order and safety: policies are created or given a new default version first (a new version is
created only when the documents differ semantically, and the 5-version limit is handled by
rotation); then attachments are added; detachments (only with ``prune``) come last. A failure
midway therefore never leaves a principal without a policy it had, and running apply again
completes the change (attaching what is already attached counts as done).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from permgen.account.types import Principal, RamApi
from permgen.compiler import CompiledSpec
from permgen.errors import CloudError
from permgen.model import Policy, parse_policy

MARKER = "[permgen]"

Kind = Literal["create-policy", "update-policy", "attach", "detach"]


@dataclass(frozen=True)
class Desired:
    name: str
    document: str
    description: str
    principals: frozenset[Principal]


@dataclass(frozen=True)
class Current:
    name: str
    exists: bool
    managed: bool = False
    document: str = ""
    principals: frozenset[Principal] = frozenset()


@dataclass(frozen=True)
class Action:
    kind: Kind
    policy: str
    principal: Principal | None = None
    document: str = ""
    description: str = ""

    def describe(self) -> str:
        if self.kind == "create-policy":
            return f"+ create policy {self.policy}"
        if self.kind == "update-policy":
            return f"~ new default version of policy {self.policy}"
        sign = "+" if self.kind == "attach" else "-"
        return f"{sign} {self.kind} {self.policy} {'to' if self.kind == 'attach' else 'from'} {self.principal}"

    def to_json(self) -> dict[str, Any]:
        return {
            "action": self.kind,
            "policy": self.policy,
            "principal": str(self.principal) if self.principal else None,
        }


@dataclass(frozen=True)
class Plan:
    actions: tuple[Action, ...] = ()
    refused: tuple[str, ...] = field(default=())  # policies that exist but are not permgen's

    @property
    def empty(self) -> bool:
        return not self.actions


def desired_state(compiled: CompiledSpec) -> list[Desired]:
    out = []
    for name, role in compiled.roles.items():
        principals = {Principal.parse(p) for p in role.role.attach}
        if role.role.sts is not None:
            principals.add(Principal("role", role.role.sts.role_arn.rsplit("/", 1)[1]))
        description = f"{MARKER} {role.role.description or role.role.template}"[:1024]
        out.append(Desired(name, role.policy.dumps(), description, frozenset(principals)))
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
                name, True, info.description.startswith(MARKER), info.default_document, principals
            )
        )
    return out


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


def _same(a: str, b: str) -> bool:
    from permgen.semantics import diff_policies

    try:
        pa, pb = parse_policy(a), parse_policy(b)
    except Exception:
        return False
    return diff_policies([Policy(pa.statements)], [Policy(pb.statements)]).equivalent


def plan(desired: Sequence[Desired], current: Sequence[Current], *, prune: bool = False) -> Plan:
    """What apply would do: pure, from the two states."""
    now = {c.name: c for c in current}
    creates: list[Action] = []
    attaches: list[Action] = []
    detaches: list[Action] = []
    refused: list[str] = []
    for d in desired:
        c = now.get(d.name, Current(d.name, exists=False))
        if not c.exists:
            creates.append(
                Action("create-policy", d.name, document=d.document, description=d.description)
            )
            have: frozenset[Principal] = frozenset()
        elif not c.managed:
            refused.append(d.name)
            continue
        else:
            if not _same(c.document, d.document):
                creates.append(Action("update-policy", d.name, document=d.document))
            have = c.principals
        for p in sorted(d.principals - have, key=str):
            attaches.append(Action("attach", d.name, p))
        if prune:
            for p in sorted(have - d.principals, key=str):
                detaches.append(Action("detach", d.name, p))
    return Plan(tuple(creates + attaches + detaches), tuple(refused))


def apply(ram: RamApi, planned: Plan) -> list[Action]:
    """Carry out a plan in its (safe) order; returns the actions done. Stops at the first
    error, which is raised: every earlier action has taken effect, none later has."""
    done = []
    for a in planned.actions:
        if a.kind == "create-policy":
            ram.create_policy(a.policy, a.document, a.description)
        elif a.kind == "update-policy":
            ram.create_policy_version(a.policy, a.document, set_as_default=True, rotate=True)
        elif a.kind == "attach":
            assert a.principal is not None
            try:
                ram.attach_policy(a.principal, a.policy, "Custom")
            except CloudError as exc:
                if not exc.code.startswith("EntityAlreadyExists"):
                    raise
        else:
            assert a.principal is not None
            try:
                ram.detach_policy(a.principal, a.policy, "Custom")
            except CloudError as exc:
                if not (exc.code.startswith("EntityNotExist") and exc.code.endswith(".Policy")):
                    raise
        done.append(a)
    return done


__all__ = [
    "MARKER",
    "Action",
    "Current",
    "Desired",
    "Plan",
    "apply",
    "desired_state",
    "plan",
    "read_current",
]
