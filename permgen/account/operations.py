"""The RAM interface permgen uses (:class:`RamOperations`), over any transport that answers
``invoke(action, params)``: the SDK adapter (:mod:`permgen.account.sdk`) or the emulator in
process. Every RAM and STS action permgen calls is declared here or next to its call in the
adapter (``requires``), and docs/required-permissions.json must list exactly those.
"""

from __future__ import annotations

from typing import Any

from permgen.account.types import (
    AttachedPolicy,
    PolicyEntities,
    PolicyInfo,
    PolicyType,
    PolicyVersion,
    Principal,
)
from permgen.errors import CloudError

#: The RAM/STS actions permgen calls, declared next to the calls (docs/required-permissions.json).
REQUIRED_ACTIONS: set[str] = set()


def requires(action: str) -> str:
    REQUIRED_ACTIONS.add(action)
    return action


RAM_READS = {
    "ListPoliciesForUser": requires("ram:ListPoliciesForUser"),
    "ListPoliciesForGroup": requires("ram:ListPoliciesForGroup"),
    "ListPoliciesForRole": requires("ram:ListPoliciesForRole"),
    "ListGroupsForUser": requires("ram:ListGroupsForUser"),
    "GetPolicy": requires("ram:GetPolicy"),
    "GetPolicyVersion": requires("ram:GetPolicyVersion"),
    "ListPolicyVersions": requires("ram:ListPolicyVersions"),
    "ListPolicies": requires("ram:ListPolicies"),
    "ListEntitiesForPolicy": requires("ram:ListEntitiesForPolicy"),
    "GetUser": requires("ram:GetUser"),
    "GetGroup": requires("ram:GetGroup"),
    "GetRole": requires("ram:GetRole"),
    # permgen audit reads every principal
    "ListUsers": requires("ram:ListUsers"),
    "ListGroups": requires("ram:ListGroups"),
    "ListRoles": requires("ram:ListRoles"),
}
#: Writes are not retried: a retry after a lost response could apply a change twice.
RAM_WRITES = {
    "CreatePolicy": requires("ram:CreatePolicy"),
    "CreatePolicyVersion": requires("ram:CreatePolicyVersion"),
    "DeletePolicyVersion": requires("ram:DeletePolicyVersion"),
    "SetDefaultPolicyVersion": requires("ram:SetDefaultPolicyVersion"),
    "DeletePolicy": requires("ram:DeletePolicy"),
    "AttachPolicyToUser": requires("ram:AttachPolicyToUser"),
    "AttachPolicyToGroup": requires("ram:AttachPolicyToGroup"),
    "AttachPolicyToRole": requires("ram:AttachPolicyToRole"),
    "DetachPolicyFromUser": requires("ram:DetachPolicyFromUser"),
    "DetachPolicyFromGroup": requires("ram:DetachPolicyFromGroup"),
    "DetachPolicyFromRole": requires("ram:DetachPolicyFromRole"),
    "UpdatePolicyDescription": requires("ram:UpdatePolicyDescription"),
}


class RamOperations:
    """The RAM operations of :class:`permgen.account.types.RamApi` over any transport that
    answers ``invoke(action, params) -> dict`` (the SDK, or the emulator in process)."""

    def invoke(self, action: str, params: dict[str, str]) -> dict[str, Any]:  # pragma: no cover
        raise NotImplementedError

    def list_policies_for(self, principal: Principal) -> list[AttachedPolicy]:
        kind = principal.kind.capitalize()
        out = self.invoke(f"ListPoliciesFor{kind}", {f"{kind}Name": principal.name})
        return [
            AttachedPolicy(
                p["PolicyName"],
                p["PolicyType"],
                p.get("DefaultVersion", ""),
                p.get("Description", ""),
                p.get("AttachDate", ""),
            )
            for p in _items(out, "Policies", "Policy")
        ]

    def list_groups_for_user(self, user_name: str) -> list[str]:
        out = self.invoke("ListGroupsForUser", {"UserName": user_name})
        return [g["GroupName"] for g in _items(out, "Groups", "Group")]

    def get_policy(self, name: str, policy_type: PolicyType) -> PolicyInfo:
        out = self.invoke("GetPolicy", {"PolicyName": name, "PolicyType": policy_type})
        p = out["Policy"]
        return PolicyInfo(
            p["PolicyName"], p["PolicyType"], p.get("DefaultVersion", ""), p.get("Description", ""),
            int(p.get("AttachmentCount", 0)), out.get("DefaultPolicyVersion", {}).get("PolicyDocument", ""),
        )  # fmt: skip

    def get_policy_version(
        self, name: str, policy_type: PolicyType, version_id: str
    ) -> PolicyVersion:
        out = self.invoke(
            "GetPolicyVersion",
            {"PolicyName": name, "PolicyType": policy_type, "VersionId": version_id},
        )
        return _version(out["PolicyVersion"])

    def list_policy_versions(self, name: str, policy_type: PolicyType) -> list[PolicyVersion]:
        out = self.invoke("ListPolicyVersions", {"PolicyName": name, "PolicyType": policy_type})
        return [_version(v) for v in _items(out, "PolicyVersions", "PolicyVersion")]

    def list_policies(
        self, policy_type: PolicyType | None = None, *, page_size: int = 1000
    ) -> list[PolicyInfo]:
        """Every policy (of one type), following ListPolicies' Marker from page to page."""
        params = {"MaxItems": str(page_size)}
        if policy_type:
            params["PolicyType"] = policy_type
        found: list[PolicyInfo] = []
        seen: set[str] = set()
        while True:
            out = self.invoke("ListPolicies", params)
            found += [
                PolicyInfo(
                    p["PolicyName"],
                    p["PolicyType"],
                    p.get("DefaultVersion", ""),
                    p.get("Description", ""),
                )
                for p in _items(out, "Policies", "Policy")
            ]
            marker = out.get("Marker") or ""
            if str(out.get("IsTruncated")).lower() != "true" or not marker:
                return found
            if marker in seen:
                raise CloudError(
                    "Ram ListPolicies returned the same Marker twice; stopping rather than looping",
                    code="InvalidResponse",
                    action="ListPolicies",
                )
            seen.add(marker)
            params = {**params, "Marker": marker}

    def _paged(self, action: str, outer: str, inner: str) -> list[dict[str, Any]]:
        """Every item of a ListUsers/ListGroups/ListRoles answer, following its Marker."""
        params = {"MaxItems": "1000"}
        found: list[dict[str, Any]] = []
        seen: set[str] = set()
        while True:
            out = self.invoke(action, params)
            found += _items(out, outer, inner)
            marker = out.get("Marker") or ""
            if str(out.get("IsTruncated")).lower() != "true" or not marker:
                return found
            if marker in seen:
                raise CloudError(
                    f"Ram {action} returned the same Marker twice; stopping rather than looping",
                    code="InvalidResponse",
                    action=action,
                )
            seen.add(marker)
            params = {**params, "Marker": marker}

    def list_users(self) -> list[tuple[str, str]]:
        """Every RAM user as (name, UserId)."""
        return [
            (u["UserName"], str(u.get("UserId", "")))
            for u in self._paged("ListUsers", "Users", "User")
        ]

    def list_groups(self) -> list[str]:
        return [g["GroupName"] for g in self._paged("ListGroups", "Groups", "Group")]

    def list_roles(self) -> list[str]:
        return [r["RoleName"] for r in self._paged("ListRoles", "Roles", "Role")]

    def get_role_trust(self, name: str) -> str:
        """A role's trust policy (AssumeRolePolicyDocument) as RAM returns it."""
        role = self.invoke("GetRole", {"RoleName": name})["Role"]
        return str(role.get("AssumeRolePolicyDocument", ""))

    def create_policy(self, name: str, document: str, description: str = "") -> PolicyInfo:
        params = {"PolicyName": name, "PolicyDocument": document}
        if description:
            params["Description"] = description
        p = self.invoke("CreatePolicy", params)["Policy"]
        return PolicyInfo(
            p["PolicyName"], "Custom", p.get("DefaultVersion", "v1"), p.get("Description", "")
        )

    def create_policy_version(
        self, name: str, document: str, *, set_as_default: bool, rotate: bool
    ) -> PolicyVersion:
        params = {
            "PolicyName": name,
            "PolicyDocument": document,
            "SetAsDefault": "true" if set_as_default else "false",
        }
        if rotate:
            params["RotateStrategy"] = "DeleteOldestNonDefaultVersionWhenLimitExceeded"
        return _version(self.invoke("CreatePolicyVersion", params)["PolicyVersion"])

    def delete_policy_version(self, name: str, version_id: str) -> None:
        self.invoke("DeletePolicyVersion", {"PolicyName": name, "VersionId": version_id})

    def set_default_policy_version(self, name: str, version_id: str) -> None:
        self.invoke("SetDefaultPolicyVersion", {"PolicyName": name, "VersionId": version_id})

    def delete_policy(self, name: str) -> None:
        self.invoke("DeletePolicy", {"PolicyName": name})

    def attach_policy(self, principal: Principal, name: str, policy_type: PolicyType) -> None:
        kind = principal.kind.capitalize()
        self.invoke(
            f"AttachPolicyTo{kind}",
            {f"{kind}Name": principal.name, "PolicyName": name, "PolicyType": policy_type},
        )

    def detach_policy(self, principal: Principal, name: str, policy_type: PolicyType) -> None:
        kind = principal.kind.capitalize()
        self.invoke(
            f"DetachPolicyFrom{kind}",
            {f"{kind}Name": principal.name, "PolicyName": name, "PolicyType": policy_type},
        )

    def list_entities_for_policy(self, name: str, policy_type: PolicyType) -> PolicyEntities:
        out = self.invoke("ListEntitiesForPolicy", {"PolicyName": name, "PolicyType": policy_type})
        return PolicyEntities(
            tuple(u["UserName"] for u in _items(out, "Users", "User")),
            tuple(g["GroupName"] for g in _items(out, "Groups", "Group")),
            tuple(r["RoleName"] for r in _items(out, "Roles", "Role")),
        )

    def update_policy_description(self, name: str, description: str) -> None:
        self.invoke("UpdatePolicyDescription", {"PolicyName": name, "NewDescription": description})

    def principal_exists(self, principal: Principal) -> bool:
        """GetUser, GetGroup or GetRole: False on EntityNotExist.User/.Group/.Role."""
        kind = principal.kind.capitalize()
        try:
            self.invoke(f"Get{kind}", {f"{kind}Name": principal.name})
        except CloudError as exc:
            if exc.code == f"EntityNotExist.{kind}":
                return False
            raise
        return True

    def role_max_session(self, role_name: str) -> int | None:
        """GetRole: the role's MaxSessionDuration in seconds; None when the role does not
        exist or the answer has no number."""
        try:
            out = self.invoke("GetRole", {"RoleName": role_name})
        except CloudError as exc:
            if exc.code == "EntityNotExist.Role":
                return None
            raise
        value = (out.get("Role") or {}).get("MaxSessionDuration")
        if isinstance(value, str) and value.isdigit():
            return int(value)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def user_id(self, user_name: str) -> str | None:
        """A RAM user's UID (GetUser's UserId), the name OSS bucket policies use for the user;
        None on EntityNotExist.User."""
        try:
            out = self.invoke("GetUser", {"UserName": user_name})
        except CloudError as exc:
            if exc.code == "EntityNotExist.User":
                return None
            raise
        return str(out["User"]["UserId"])


def _items(out: dict[str, Any], outer: str, inner: str) -> list[dict[str, Any]]:
    """RAM wraps lists as ``{"Policies": {"Policy": [...]}}``; an empty list may come back
    as an empty or missing array (UNCONFIRMED), so both are accepted."""
    wrapper = out.get(outer) or {}
    items = wrapper.get(inner) if isinstance(wrapper, dict) else None
    return list(items or [])


def _version(v: dict[str, Any]) -> PolicyVersion:
    default = v.get("IsDefaultVersion")
    is_default = default is True or str(default).lower() == "true"
    return PolicyVersion(
        v["VersionId"], is_default, v.get("PolicyDocument", ""), v.get("CreateDate", "")
    )


__all__ = ["RAM_READS", "RAM_WRITES", "REQUIRED_ACTIONS", "RamOperations", "requires"]
