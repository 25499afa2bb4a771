"""The emulator's RAM API (2015-05-01): users, groups, roles, policies, attachments.

Every handler's docstring says which real behaviours it reproduces and which it does not.
"""

from __future__ import annotations

import base64
import json
from typing import Any

from permgen.emulator.state import (
    ACCOUNT,
    DIGITS_RE,
    NAME_RE,
    RAM_VERSION,
    EmulatorError,
    Key,
    PolicyRecord,
    RoleRecord,
    State,
    handler,
    integer_param,
    now_text,
    parse_trust,
)


class RamHandlers(State):
    """The RAM actions, as methods of the account they change."""

    @handler(RAM_VERSION)
    def CreateUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Create a RAM user. Reproduces: EntityAlreadyExists.User. Not: display names, tags."""
        name = p.get("UserName", "")
        self._unused("User", name)
        self.users[name] = self._id("2")
        return {"User": {"UserName": name, "UserId": self.users[name]}}

    @handler(RAM_VERSION)
    def CreateAccessKey(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Create an AccessKey for a RAM user (the secret is returned once, as in the cloud).
        Reproduces: EntityNotExist.User. Not: the two-key limit, key status changes."""
        name = self._principal("User", p.get("UserName", ""))[1]
        key = self.add_key(f"user/{name}")
        return {
            "AccessKey": {
                "AccessKeyId": key.key_id,
                "AccessKeySecret": key.secret,
                "Status": "Active",
                "CreateDate": now_text(self.clock()),
            }
        }

    @handler(RAM_VERSION)
    def CreateGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Create a RAM group. Reproduces: EntityAlreadyExists.Group."""
        name = p.get("GroupName", "")
        self._unused("Group", name)
        self.groups[name] = set()
        return {"Group": {"GroupName": name}}

    @handler(RAM_VERSION)
    def AddUserToGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Add a user to a group. Reproduces: EntityNotExist.User / .Group."""
        user = self._principal("User", p.get("UserName", ""))[1]
        group = self._principal("Group", p.get("GroupName", ""))[1]
        self.groups[group].add(user)
        return {}

    @handler(RAM_VERSION)
    def CreateRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Create a RAM role with its trust policy and MaxSessionDuration (3,600-43,200).
        Reproduces: EntityAlreadyExists.Role, InvalidParameter.MaxSessionDuration, the trust
        policy's grammar (MalformedPolicyDocument)."""
        name = p.get("RoleName", "")
        self._unused("Role", name)
        trust = parse_trust(p.get("AssumeRolePolicyDocument", ""))
        max_session = integer_param(
            p,
            "MaxSessionDuration",
            3600,
            "InvalidParameter.MaxSessionDuration",
            "MaxSessionDuration must be 3600-43200.",
        )
        if not 3600 <= max_session <= 43200:
            raise EmulatorError(
                "InvalidParameter.MaxSessionDuration", 400, "MaxSessionDuration must be 3600-43200."
            )
        self.roles[name] = RoleRecord(name, trust, max_session, self._id("3"))
        return {"Role": self._role_json(self.roles[name])}

    def _role_json(self, r: RoleRecord) -> dict[str, Any]:
        return {
            "RoleName": r.name,
            "RoleId": r.role_id,
            "Arn": f"acs:ram::{ACCOUNT}:role/{r.name.lower()}",
            "MaxSessionDuration": r.max_session,
        }

    @handler(RAM_VERSION)
    def GetUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.User."""
        name = self._principal("User", p.get("UserName", ""))[1]
        return {"User": {"UserName": name, "UserId": self.users[name]}}

    @handler(RAM_VERSION)
    def GetGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Group."""
        name = self._principal("Group", p.get("GroupName", ""))[1]
        return {"Group": {"GroupName": name}}

    @handler(RAM_VERSION)
    def GetRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Role."""
        name = self._principal("Role", p.get("RoleName", ""))[1]
        role = self.roles[name]
        return {
            "Role": {**self._role_json(role), "AssumeRolePolicyDocument": json.dumps(role.trust)}
        }

    def _page(self, p: dict[str, str], items: list[dict[str, Any]]) -> dict[str, Any]:
        """One page of a list: MaxItems (1-1000, default 100) and an opaque Marker."""
        size = integer_param(
            p, "MaxItems", 100, "InvalidParameter.MaxItems", "MaxItems must be 1-1000."
        )
        if not 1 <= size <= 1000:
            raise EmulatorError("InvalidParameter.MaxItems", 400, "MaxItems must be 1-1000.")
        marker = p.get("Marker", "")
        start = 0
        if marker:
            try:
                start = int(base64.b64decode(marker.encode(), validate=True).decode())
            except (ValueError, UnicodeDecodeError):
                raise EmulatorError("InvalidParameter.Marker", 400, "Marker is invalid.") from None
        page = items[start : start + size]
        out: dict[str, Any] = {"IsTruncated": start + size < len(items), "items": page}
        if out["IsTruncated"]:
            out["Marker"] = base64.b64encode(str(start + size).encode()).decode()
        return out

    @handler(RAM_VERSION)
    def ListUsers(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Every user, by name. Reproduces: the Users.User wrapper, MaxItems and Marker
        paging (IsTruncated). Not: display names, tags."""
        page = self._page(
            p, [{"UserName": n, "UserId": uid} for n, uid in sorted(self.users.items())]
        )
        return {"Users": {"User": page.pop("items")}, **page}

    @handler(RAM_VERSION)
    def ListGroups(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Every group, by name. Reproduces: the Groups.Group wrapper, MaxItems and Marker
        paging."""
        page = self._page(p, [{"GroupName": n} for n in sorted(self.groups)])
        return {"Groups": {"Group": page.pop("items")}, **page}

    @handler(RAM_VERSION)
    def ListRoles(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Every role, by name. Reproduces: the Roles.Role wrapper (without the trust
        policy, which only GetRole returns), MaxItems and Marker paging."""
        page = self._page(p, [self._role_json(self.roles[n]) for n in sorted(self.roles)])
        return {"Roles": {"Role": page.pop("items")}, **page}

    # ------------------------------------------------------------------ policies

    @handler(RAM_VERSION)
    def CreatePolicy(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Create a custom policy (version v1, default). Reproduces: name rules
        (InvalidParameter.PolicyName.InvalidChars / .Length), EntityAlreadyExists.Policy,
        document grammar (MalformedPolicyDocument) and size (6,144 bytes). Not: tags, quotas."""
        name = p.get("PolicyName", "")
        if not name or len(name) > 128:
            raise EmulatorError(
                "InvalidParameter.PolicyName.Length",
                400,
                "The policy name must be 1-128 characters.",
            )
        if not NAME_RE.fullmatch(name):
            raise EmulatorError(
                "InvalidParameter.PolicyName.InvalidChars",
                400,
                "The policy name has invalid characters.",
            )
        if ("Custom", name) in self.policies:
            raise EmulatorError(
                "EntityAlreadyExists.Policy", 409, f"The policy already exists: {name}."
            )
        doc = p.get("PolicyDocument", "")
        self._check_document(doc)
        rec = PolicyRecord(
            name, "Custom", p.get("Description", ""), {"v1": doc}, created=now_text(self.clock())
        )
        self.policies[("Custom", name)] = rec
        return {
            "Policy": {
                "PolicyName": name,
                "PolicyType": "Custom",
                "Description": rec.description,
                "DefaultVersion": "v1",
                "CreateDate": rec.created,
            }
        }

    @handler(RAM_VERSION)
    def GetPolicy(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the Policy and DefaultPolicyVersion objects, EntityNotExist.Policy."""
        rec = self._policy(p.get("PolicyName", ""), p.get("PolicyType"))
        count = sum(1 for v in self.attachments.values() if (rec.type, rec.name) in v)
        return {
            "Policy": {
                "PolicyName": rec.name,
                "PolicyType": rec.type,
                "Description": rec.description,
                "DefaultVersion": rec.default,
                "AttachmentCount": count,
            },
            "DefaultPolicyVersion": self._version_json(rec, rec.default),
        }

    @handler(RAM_VERSION)
    def UpdatePolicyDescription(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Replace a custom policy's description (``NewDescription``). Reproduces:
        EntityNotExist.Policy, InvalidParameter.Description.Length (1-1,024 characters), the
        Policy object in the answer. Not: UpdateDate."""
        rec = self._policy(p.get("PolicyName", ""), "Custom")
        text = p.get("NewDescription", "")
        if not 1 <= len(text) <= 1024:
            raise EmulatorError(
                "InvalidParameter.Description.Length",
                400,
                "The description must be 1-1,024 characters.",
            )
        rec.description = text
        return {
            "Policy": {
                "PolicyName": rec.name,
                "PolicyType": rec.type,
                "Description": rec.description,
                "DefaultVersion": rec.default,
                "CreateDate": rec.created,
            }
        }

    @handler(RAM_VERSION)
    def GetPolicyVersion(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Policy, EntityNotExist.Policy.Version."""
        rec = self._policy(p.get("PolicyName", ""), p.get("PolicyType"))
        vid = p.get("VersionId", "")
        if vid not in rec.versions:
            raise EmulatorError(
                "EntityNotExist.Policy.Version", 404, f"The policy version does not exist: {vid}."
            )
        return {"PolicyVersion": self._version_json(rec, vid)}

    @handler(RAM_VERSION)
    def ListPolicyVersions(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the PolicyVersions.PolicyVersion wrapper."""
        rec = self._policy(p.get("PolicyName", ""), p.get("PolicyType"))
        return {
            "PolicyVersions": {"PolicyVersion": [self._version_json(rec, v) for v in rec.versions]}
        }

    @handler(RAM_VERSION)
    def ListPolicies(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the PolicyType filter, the Policies.Policy wrapper, and paging
        (MaxItems 1-1000, default 100; an opaque Marker while IsTruncated). The error codes
        for a bad MaxItems or Marker are UNCONFIRMED (InvalidParameter.MaxItems / .Marker)."""
        ptype = p.get("PolicyType")
        max_items = integer_param(
            p, "MaxItems", 100, "InvalidParameter.MaxItems", "The parameter MaxItems is invalid."
        )
        if not 1 <= max_items <= 1000:
            raise EmulatorError(
                "InvalidParameter.MaxItems", 400, "The parameter MaxItems is invalid."
            )
        start = 0
        if p.get("Marker"):
            try:
                offset = base64.urlsafe_b64decode(p["Marker"].encode()).decode().split(":")[1]
                if not DIGITS_RE.fullmatch(offset):
                    raise ValueError(offset)
                start = int(offset)
            except (ValueError, IndexError, UnicodeError):
                raise EmulatorError(
                    "InvalidParameter.Marker", 400, "The parameter Marker is invalid."
                ) from None
        out = [
            {
                "PolicyName": r.name,
                "PolicyType": r.type,
                "DefaultVersion": r.default,
                "Description": r.description,
            }
            for (t, _), r in sorted(self.policies.items())
            if not ptype or t == ptype
        ]
        end = start + max_items
        page: dict[str, Any] = {
            "Policies": {"Policy": out[start:end]},
            "IsTruncated": end < len(out),
        }
        if end < len(out):
            page["Marker"] = base64.urlsafe_b64encode(f"policies:{end}".encode()).decode()
        return page

    @handler(RAM_VERSION)
    def CreatePolicyVersion(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the 5-version limit (LimitExceeded.Policy.Version) unless
        RotateStrategy=DeleteOldestNonDefaultVersionWhenLimitExceeded, SetAsDefault (sent by the
        SDK as 'True'/'true'), document checks. Custom policies only."""
        rec = self._policy(p.get("PolicyName", ""), "Custom")
        doc = p.get("PolicyDocument", "")
        self._check_document(doc)
        if len(rec.versions) >= 5:
            if p.get("RotateStrategy") != "DeleteOldestNonDefaultVersionWhenLimitExceeded":
                raise EmulatorError(
                    "LimitExceeded.Policy.Version", 409, "The policy already has 5 versions."
                )
            oldest = next(v for v in rec.versions if v != rec.default)
            del rec.versions[oldest]
        vid = f"v{rec.next_version}"
        rec.next_version += 1
        rec.versions[vid] = doc
        if p.get("SetAsDefault", "").lower() == "true":
            rec.default = vid
        return {"PolicyVersion": self._version_json(rec, vid)}

    @handler(RAM_VERSION)
    def SetDefaultPolicyVersion(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Policy.Version."""
        rec = self._policy(p.get("PolicyName", ""), "Custom")
        if p.get("VersionId") not in rec.versions:
            raise EmulatorError(
                "EntityNotExist.Policy.Version", 404, "The policy version does not exist."
            )
        rec.default = p["VersionId"]
        return {}

    @handler(RAM_VERSION)
    def DeletePolicyVersion(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: DeleteConflict.Policy.Version.Default for the default version."""
        rec = self._policy(p.get("PolicyName", ""), "Custom")
        vid = p.get("VersionId", "")
        if vid not in rec.versions:
            raise EmulatorError(
                "EntityNotExist.Policy.Version", 404, "The policy version does not exist."
            )
        if vid == rec.default:
            raise EmulatorError(
                "DeleteConflict.Policy.Version.Default",
                409,
                "The default version cannot be deleted.",
            )
        del rec.versions[vid]
        return {}

    @handler(RAM_VERSION)
    def DeletePolicy(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: DeleteConflict.Policy.User/.Group/.Role while attached,
        DeleteConflict.Policy.Version while non-default versions exist."""
        rec = self._policy(p.get("PolicyName", ""), "Custom")
        for (kind, _), pols in self.attachments.items():
            if ("Custom", rec.name) in pols:
                raise EmulatorError(
                    f"DeleteConflict.Policy.{kind}", 409, "The policy is still attached."
                )
        if len(rec.versions) > 1:
            raise EmulatorError(
                "DeleteConflict.Policy.Version", 409, "The policy has non-default versions."
            )
        del self.policies[("Custom", rec.name)]
        return {}

    def _attach(self, kind: str, p: dict[str, str], attach: bool) -> dict[str, Any]:
        target = self._principal(kind, p.get(f"{kind}Name", ""))
        rec = self._policy(p.get("PolicyName", ""), p.get("PolicyType"))
        pols = self.attachments.setdefault(target, set())
        ident = (rec.type, rec.name)
        if attach:
            if ident in pols:
                raise EmulatorError(
                    f"EntityAlreadyExists.{kind}.Policy", 409, "The policy is already attached."
                )
            pols.add(ident)
        else:
            if ident not in pols:
                raise EmulatorError(
                    f"EntityNotExist.{kind}.Policy", 404, "The policy is not attached."
                )
            pols.discard(ident)
        return {}

    @handler(RAM_VERSION)
    def AttachPolicyToUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.User/.Policy, EntityAlreadyExists.User.Policy."""
        return self._attach("User", p, True)

    @handler(RAM_VERSION)
    def AttachPolicyToGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Group/.Policy, EntityAlreadyExists.Group.Policy."""
        return self._attach("Group", p, True)

    @handler(RAM_VERSION)
    def AttachPolicyToRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Role/.Policy; EntityAlreadyExists.Role.Policy (that code is
        UNCONFIRMED for roles; the user and group analogues are documented)."""
        return self._attach("Role", p, True)

    @handler(RAM_VERSION)
    def DetachPolicyFromUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.User.Policy."""
        return self._attach("User", p, False)

    @handler(RAM_VERSION)
    def DetachPolicyFromGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Group.Policy."""
        return self._attach("Group", p, False)

    @handler(RAM_VERSION)
    def DetachPolicyFromRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Role.Policy."""
        return self._attach("Role", p, False)

    def _list_for(self, kind: str, p: dict[str, str]) -> dict[str, Any]:
        target = self._principal(kind, p.get(f"{kind}Name", ""))
        out = []
        for ptype, name in sorted(self.attachments.get(target, set())):
            rec = self.policies[(ptype, name)]
            out.append(
                {
                    "PolicyName": name,
                    "PolicyType": ptype,
                    "DefaultVersion": rec.default,
                    "Description": rec.description,
                }
            )
        return {"Policies": {"Policy": out}}

    @handler(RAM_VERSION)
    def ListPoliciesForUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the Policies.Policy wrapper, no paging, EntityNotExist.User."""
        return self._list_for("User", p)

    @handler(RAM_VERSION)
    def ListPoliciesForGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the Policies.Policy wrapper, EntityNotExist.Group."""
        return self._list_for("Group", p)

    @handler(RAM_VERSION)
    def ListPoliciesForRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the Policies.Policy wrapper, EntityNotExist.Role."""
        return self._list_for("Role", p)

    @handler(RAM_VERSION)
    def ListGroupsForUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the Groups.Group wrapper, EntityNotExist.User."""
        name = self._principal("User", p.get("UserName", ""))[1]
        return {
            "Groups": {
                "Group": [
                    {"GroupName": g}
                    for g, members in sorted(self.groups.items())
                    if name in members
                ]
            }
        }

    @handler(RAM_VERSION)
    def ListEntitiesForPolicy(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: Users.User, Groups.Group and Roles.Role wrappers."""
        rec = self._policy(p.get("PolicyName", ""), p.get("PolicyType"))
        ident = (rec.type, rec.name)
        found: dict[str, list[str]] = {"User": [], "Group": [], "Role": []}
        for (kind, name), pols in sorted(self.attachments.items()):
            if ident in pols:
                found[kind].append(name)
        return {
            "Users": {"User": [{"UserName": n, "UserId": self.users[n]} for n in found["User"]]},
            "Groups": {"Group": [{"GroupName": n} for n in found["Group"]]},
            "Roles": {"Role": [self._role_json(self.roles[n]) for n in found["Role"]]},
        }
