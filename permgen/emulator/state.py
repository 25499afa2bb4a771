"""The emulator's in-process backend: one account's RAM and STS state, and one handler per
RPC action.

Deterministic: ids come from a counter, time from an injectable clock. Every handler's
docstring says which real behaviours it reproduces. Errors use RAM's and STS's real codes and
HTTP statuses (:class:`EmulatorError`).
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from permgen._internal.safejson import JsonLimitError
from permgen._internal.safejson import loads as bounded_loads
from permgen.errors import PolicyParseError
from permgen.policy.model import POLICY_LIMIT, SESSION_POLICY_LIMIT, Policy, parse_policy
from permgen.semantics.conditions import check_conditions

ACCOUNT = "1234567890123456"
ADMIN_KEY_ID = "LTAI-permgen-emulator-admin"
ADMIN_KEY_SECRET = "permgen-emulator-admin-secret-not-real"  # exists only inside the emulator

# Applied with fullmatch: "$" in re.match would also accept a trailing newline.
_NAME_RE = re.compile(r"[A-Za-z0-9-]{1,128}")
_SESSION_RE = re.compile(r"[A-Za-z0-9.@_-]{2,64}")
_ROLE_ARN_RE = re.compile(r"acs:ram::([0-9]+):role/([A-Za-z0-9.-]{1,64})")
_DIGITS_RE = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²".isdigit() is true
#: RAM's limit for a role's trust policy (AssumeRolePolicyDocument). UNCONFIRMED: the
#: CreateRole model gives no number; the custom-policy limit is used.
TRUST_POLICY_LIMIT = POLICY_LIMIT
_PRINCIPAL_KINDS = ("RAM", "Service", "Federated")


def _integer(p: dict[str, str], name: str, default: int, code: str, message: str) -> int:
    """A whole-number parameter, or the parameter's InvalidParameter error."""
    raw = p.get(name)
    if raw is None or raw == "":
        return default
    if not _DIGITS_RE.fullmatch(raw):
        raise EmulatorError(code, 400, message)
    return int(raw)


def _strings(value: Any) -> bool:
    return isinstance(value, str) or (
        isinstance(value, list) and bool(value) and all(isinstance(v, str) for v in value)
    )


def parse_trust(text: str) -> dict[str, Any]:
    """A trust policy's grammar (D15): an object with Version "1" (the emulator lets it be
    left out) and a Statement list of objects, each with Effect, Action and a Principal
    object of RAM/Service/Federated strings or lists of strings. Anything else (a list,
    deep nesting, a number for a principal) is MalformedPolicyDocument."""

    def bad(why: str) -> EmulatorError:
        return EmulatorError(
            "MalformedPolicyDocument", 400, f"The trust policy is malformed: {why}."
        )

    if len(text.encode()) > TRUST_POLICY_LIMIT:
        raise EmulatorError(
            "InvalidParameter.PolicyDocument.Length",
            400,
            f"The policy document exceeds {TRUST_POLICY_LIMIT} bytes.",
        )
    try:
        doc = bounded_loads(text, max_depth=8, numbers="python")
    except (JsonLimitError, ValueError) as exc:
        raise bad(str(exc).split(":")[0]) from None
    if not isinstance(doc, dict) or doc.get("Version", "1") != "1":
        raise bad('a JSON object with Version "1" is expected')
    statements = doc.get("Statement")
    if not isinstance(statements, list):
        raise bad("Statement must be a list of statements")
    for st in statements:
        if not isinstance(st, dict) or st.get("Effect") not in ("Allow", "Deny"):
            raise bad('each statement needs Effect "Allow" or "Deny"')
        if not _strings(st.get("Action")):
            raise bad("each statement needs an Action string or list of strings")
        principal = st.get("Principal")
        if (
            not isinstance(principal, dict)
            or not principal
            or any(k not in _PRINCIPAL_KINDS or not _strings(v) for k, v in principal.items())
        ):
            raise bad("Principal must be an object of RAM, Service or Federated strings")
    return doc


class EmulatorError(Exception):
    def __init__(self, code: str, status: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.message = message


@lru_cache(maxsize=1024)
def _parsed(document: str) -> Policy:
    return parse_policy(document)


def now_text(t: float) -> str:
    """Seconds since the epoch as RAM writes times (``2015-04-09T11:52:19Z``, UTC)."""
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class Key:
    key_id: str
    secret: str
    principal: str  # "root", "user/<name>" or "role/<name>/<session>"
    token: str | None = None
    expires: float | None = None
    session_policy: str | None = None  # the Policy an STS key was narrowed to at AssumeRole


@dataclass
class PolicyRecord:
    name: str
    type: str  # System | Custom
    description: str
    versions: dict[str, str] = field(default_factory=dict)  # version id -> document
    default: str = "v1"
    created: str = ""
    next_version: int = 2


@dataclass
class RoleRecord:
    name: str
    trust: dict[str, Any]
    max_session: int = 3600
    role_id: str = ""


SYSTEM_POLICIES = {
    "AliyunOSSFullAccess": {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "oss:*", "Resource": "*"}],
    },
    "AliyunOSSReadOnlyAccess": {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["oss:Get*", "oss:List*"], "Resource": "*"}],
    },
    "AliyunSTSAssumeRoleAccess": {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole", "Resource": "*"}],
    },
    "AliyunRAMFullAccess": {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": "ram:*", "Resource": "*"}],
    },
    "AliyunRAMReadOnlyAccess": {
        "Version": "1",
        "Statement": [{"Effect": "Allow", "Action": ["ram:Get*", "ram:List*"], "Resource": "*"}],
    },
}


class Backend:
    """One account. ``clock`` returns seconds since the epoch (tests move it)."""

    def __init__(self, clock: Callable[[], float] = time.time) -> None:
        self.clock = clock
        self.reset()

    def reset(self) -> None:
        self.counter = 0
        #: Condition keys of the request being handled (set by the server, under its lock).
        self.request_context: dict[str, str] = {}
        self.session_policies: list[str] = []  # every session policy AssumeRole was given
        self.keys: dict[str, Key] = {ADMIN_KEY_ID: Key(ADMIN_KEY_ID, ADMIN_KEY_SECRET, "root")}
        self.users: dict[str, str] = {}  # name -> user id
        self.groups: dict[str, set[str]] = {}  # name -> member user names
        self.roles: dict[str, RoleRecord] = {}
        self.policies: dict[tuple[str, str], PolicyRecord] = {}
        self.attachments: dict[
            tuple[str, str], set[tuple[str, str]]
        ] = {}  # (kind, name) -> {(type, policy)}
        for name, doc in SYSTEM_POLICIES.items():
            self.policies[("System", name)] = PolicyRecord(
                name, "System", name, {"v1": json.dumps(doc)}
            )

    @property
    def last_session_policy(self) -> str:
        """What the last AssumeRole was asked to narrow to ("" when none)."""
        return self.session_policies[-1] if self.session_policies else ""

    # ------------------------------------------------------------------ persistence

    def dump(self) -> dict[str, Any]:
        """The whole state as JSON-able data (for ``--state FILE``)."""
        return {
            "version": 1,
            "counter": self.counter,
            "keys": [vars(k) for k in self.keys.values()],
            "users": self.users,
            "groups": {g: sorted(m) for g, m in self.groups.items()},
            "roles": [vars(r) for r in self.roles.values()],
            "policies": [vars(p) for p in self.policies.values() if p.type == "Custom"],
            "attachments": [
                {"kind": kind, "name": name, "policies": sorted([list(x) for x in pols])}
                for (kind, name), pols in sorted(self.attachments.items())
            ],
        }

    def load(self, data: dict[str, Any]) -> None:
        """Replace the state with what :meth:`dump` wrote."""
        self.reset()
        self.counter = int(data.get("counter", 0))
        for k in data.get("keys", []):
            self.keys[k["key_id"]] = Key(**k)
        self.users = dict(data.get("users", {}))
        self.groups = {g: set(m) for g, m in data.get("groups", {}).items()}
        self.roles = {r["name"]: RoleRecord(**r) for r in data.get("roles", [])}
        for p in data.get("policies", []):
            rec = PolicyRecord(**p)
            self.policies[(rec.type, rec.name)] = rec
        for a in data.get("attachments", []):
            self.attachments[(a["kind"], a["name"])] = {(t, n) for t, n in a["policies"]}

    def seed(self, data: dict[str, Any]) -> list[dict[str, Any]]:
        """Create what a seed file describes, through the same handlers the API uses (so the
        same checks apply); returns its ``faults`` entries for the server.

        ``{users: [{name, groups: [..], access_keys: [{id, secret}]}], groups: [..],
        roles: [{name, trust: {..} | trusted: [principal ARN..], max_session}],
        policies: [{name, document: {..}, description}], attachments: [{policy, type, to: "user:NAME"}],
        faults: [{action, code, status, times, delay, drop}]}``
        """
        root = self.keys[ADMIN_KEY_ID]
        for g in data.get("groups", []):
            self.CreateGroup({"GroupName": g}, root)
        for u in data.get("users", []):
            self.CreateUser({"UserName": u["name"]}, root)
            for g in u.get("groups", []):
                if g not in self.groups:
                    self.CreateGroup({"GroupName": g}, root)
                self.AddUserToGroup({"UserName": u["name"], "GroupName": g}, root)
            for k in u.get("access_keys", []):
                self.keys[k["id"]] = Key(k["id"], k["secret"], f"user/{u['name']}")
        for r in data.get("roles", []):
            trust = r.get("trust") or {
                "Version": "1",
                "Statement": [
                    {
                        "Effect": "Allow",
                        "Action": "sts:AssumeRole",
                        "Principal": {"RAM": r.get("trusted", [f"acs:ram::{ACCOUNT}:root"])},
                    }
                ],
            }
            self.CreateRole(
                {
                    "RoleName": r["name"],
                    "AssumeRolePolicyDocument": json.dumps(trust),
                    "MaxSessionDuration": str(r.get("max_session", 3600)),
                },
                root,
            )
        for p in data.get("policies", []):
            self.CreatePolicy(
                {
                    "PolicyName": p["name"],
                    "PolicyDocument": json.dumps(p["document"]),
                    "Description": p.get("description", ""),
                },
                root,
            )
        for a in data.get("attachments", []):
            kind, _, name = a["to"].partition(":")
            handler = {
                "user": self.AttachPolicyToUser,
                "group": self.AttachPolicyToGroup,
                "role": self.AttachPolicyToRole,
            }[kind]
            handler(
                {
                    f"{kind.capitalize()}Name": name,
                    "PolicyName": a["policy"],
                    "PolicyType": a.get("type", "Custom"),
                },
                root,
            )
        faults: list[dict[str, Any]] = list(data.get("faults", []))
        return faults

    # ------------------------------------------------------------------ helpers

    def _id(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}{self.counter:016d}"

    def _policy(self, name: str, ptype: str | None) -> PolicyRecord:
        if ptype not in (None, "", "System", "Custom"):
            raise EmulatorError(
                "InvalidParameter.PolicyType",
                400,
                f"The parameter PolicyType {ptype!r} is invalid.",
            )
        for t in [ptype] if ptype else ["Custom", "System"]:
            rec = self.policies.get((t, name))
            if rec is not None:
                return rec
        raise EmulatorError("EntityNotExist.Policy", 404, f"The policy does not exist: {name}.")

    def _check_document(self, text: str, limit: int = POLICY_LIMIT) -> None:
        if len(text.encode()) > limit:
            raise EmulatorError(
                "InvalidParameter.PolicyDocument.Length",
                400,
                f"The policy document exceeds {limit} bytes.",
            )
        try:
            check_conditions((s, None, i) for i, s in enumerate(parse_policy(text).statements))
        except PolicyParseError as exc:
            raise EmulatorError(
                "MalformedPolicyDocument", 400, f"The policy document is malformed: {exc}"
            ) from None

    def stored_name(self, kind: str, name: str) -> str | None:
        """The stored spelling of the user, group or role called ``name``, compared without
        regard to case (RAM entity names are unique ignoring case: docs/unconfirmed.md), or
        None when there is none. Lookup and authorization both go through this, so the
        spelling of a request cannot reach an entity that a policy's spelling misses."""
        table: dict[str, Any]
        if kind == "User":
            table = self.users
        elif kind == "Group":
            table = self.groups
        else:
            table = self.roles
        if name in table:
            return name
        folded = name.casefold()
        return next((n for n in table if n.casefold() == folded), None)

    def _principal(self, kind: str, name: str) -> tuple[str, str]:
        stored = self.stored_name(kind, name)
        if stored is None:
            raise EmulatorError(
                f"EntityNotExist.{kind}", 404, f"The {kind.lower()} does not exist: {name}."
            )
        return (kind, stored)

    def _unused(self, kind: str, name: str) -> None:
        """EntityAlreadyExists when a user, group or role with this name, in any case, exists."""
        if self.stored_name(kind, name) is not None:
            raise EmulatorError(
                f"EntityAlreadyExists.{kind}", 409, f"The {kind.lower()} already exists: {name}."
            )

    def _version_json(self, rec: PolicyRecord, vid: str) -> dict[str, Any]:
        return {
            "VersionId": vid,
            "IsDefaultVersion": vid == rec.default,
            "PolicyDocument": rec.versions[vid],
            "CreateDate": rec.created,
        }

    def add_key(self, principal: str) -> Key:
        # obviously an emulator key: a dash never appears in a real AccessKeyId
        key_id = "LTAI-emu-" + hashlib.sha1(f"{principal}{self.counter}".encode()).hexdigest()[:12]
        self.counter += 1
        key = Key(key_id, hashlib.sha256(key_id.encode()).hexdigest()[:30], principal)
        self.keys[key_id] = key
        return key

    # ------------------------------------------------------------------ seeding

    def CreateUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Create a RAM user. Reproduces: EntityAlreadyExists.User. Not: display names, tags."""
        name = p.get("UserName", "")
        self._unused("User", name)
        self.users[name] = self._id("2")
        return {"User": {"UserName": name, "UserId": self.users[name]}}

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

    def CreateGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Create a RAM group. Reproduces: EntityAlreadyExists.Group."""
        name = p.get("GroupName", "")
        self._unused("Group", name)
        self.groups[name] = set()
        return {"Group": {"GroupName": name}}

    def AddUserToGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Add a user to a group. Reproduces: EntityNotExist.User / .Group."""
        user = self._principal("User", p.get("UserName", ""))[1]
        group = self._principal("Group", p.get("GroupName", ""))[1]
        self.groups[group].add(user)
        return {}

    def CreateRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Create a RAM role with its trust policy and MaxSessionDuration (3,600-43,200).
        Reproduces: EntityAlreadyExists.Role, InvalidParameter.MaxSessionDuration, the trust
        policy's grammar (MalformedPolicyDocument)."""
        name = p.get("RoleName", "")
        self._unused("Role", name)
        trust = parse_trust(p.get("AssumeRolePolicyDocument", ""))
        max_session = _integer(
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

    def GetUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.User."""
        name = self._principal("User", p.get("UserName", ""))[1]
        return {"User": {"UserName": name, "UserId": self.users[name]}}

    def GetGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Group."""
        name = self._principal("Group", p.get("GroupName", ""))[1]
        return {"Group": {"GroupName": name}}

    def GetRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Role."""
        name = self._principal("Role", p.get("RoleName", ""))[1]
        return {"Role": self._role_json(self.roles[name])}

    # ------------------------------------------------------------------ policies

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
        if not _NAME_RE.fullmatch(name):
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

    def GetPolicyVersion(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Policy, EntityNotExist.Policy.Version."""
        rec = self._policy(p.get("PolicyName", ""), p.get("PolicyType"))
        vid = p.get("VersionId", "")
        if vid not in rec.versions:
            raise EmulatorError(
                "EntityNotExist.Policy.Version", 404, f"The policy version does not exist: {vid}."
            )
        return {"PolicyVersion": self._version_json(rec, vid)}

    def ListPolicyVersions(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the PolicyVersions.PolicyVersion wrapper."""
        rec = self._policy(p.get("PolicyName", ""), p.get("PolicyType"))
        return {
            "PolicyVersions": {"PolicyVersion": [self._version_json(rec, v) for v in rec.versions]}
        }

    def ListPolicies(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the PolicyType filter, the Policies.Policy wrapper, and paging
        (MaxItems 1-1000, default 100; an opaque Marker while IsTruncated). The error codes
        for a bad MaxItems or Marker are UNCONFIRMED (InvalidParameter.MaxItems / .Marker)."""
        ptype = p.get("PolicyType")
        max_items = _integer(
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
                if not _DIGITS_RE.fullmatch(offset):
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

    def SetDefaultPolicyVersion(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Policy.Version."""
        rec = self._policy(p.get("PolicyName", ""), "Custom")
        if p.get("VersionId") not in rec.versions:
            raise EmulatorError(
                "EntityNotExist.Policy.Version", 404, "The policy version does not exist."
            )
        rec.default = p["VersionId"]
        return {}

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

    def AttachPolicyToUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.User/.Policy, EntityAlreadyExists.User.Policy."""
        return self._attach("User", p, True)

    def AttachPolicyToGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Group/.Policy, EntityAlreadyExists.Group.Policy."""
        return self._attach("Group", p, True)

    def AttachPolicyToRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Role/.Policy; EntityAlreadyExists.Role.Policy (that code is
        UNCONFIRMED for roles; the user and group analogues are documented)."""
        return self._attach("Role", p, True)

    def DetachPolicyFromUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.User.Policy."""
        return self._attach("User", p, False)

    def DetachPolicyFromGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: EntityNotExist.Group.Policy."""
        return self._attach("Group", p, False)

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

    def ListPoliciesForUser(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the Policies.Policy wrapper, no paging, EntityNotExist.User."""
        return self._list_for("User", p)

    def ListPoliciesForGroup(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the Policies.Policy wrapper, EntityNotExist.Group."""
        return self._list_for("Group", p)

    def ListPoliciesForRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Reproduces: the Policies.Policy wrapper, EntityNotExist.Role."""
        return self._list_for("Role", p)

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

    # ------------------------------------------------------------------ authorization

    def policies_in_force(self, caller: Key) -> list[Policy]:
        """The identity policies of the caller: a user's own and its groups', or a role's."""
        kind, _, rest = caller.principal.partition("/")
        holders: list[tuple[str, str]] = []
        if kind == "user":
            holders = [("User", rest)] + [
                ("Group", g) for g, members in sorted(self.groups.items()) if rest in members
            ]
        elif kind == "role":
            holders = [("Role", rest.split("/", 1)[0])]
        out: list[Policy] = []
        for holder in holders:
            for ptype, pname in sorted(self.attachments.get(holder, ())):
                rec = self.policies.get((ptype, pname))
                if rec is not None:
                    out.append(_parsed(rec.versions[rec.default]))
        return out

    def authorize(self, action: str, resources: list[str], caller: Key) -> None:
        """Raise NoPermission unless the caller may do ``action`` on every resource.

        The account (root) may do anything. A RAM user's policies and its groups' apply; an
        STS key has its role's policies, narrowed by the session policy it was minted with.
        The request's condition keys are :attr:`request_context` (the server sets
        ``acs:SourceIp``, ``acs:SecureTransport`` and ``acs:CurrentTime`` for each call)."""
        if caller.principal == "root":
            return
        from permgen.semantics.evaluate import Evaluator, Request, TokenEvaluator

        policies = self.policies_in_force(caller)
        evaluator: Evaluator | TokenEvaluator = (
            TokenEvaluator([_parsed(caller.session_policy)], policies)
            if caller.session_policy
            else Evaluator(policies)
        )
        for resource in resources:
            if not evaluator.allows(Request(action, resource, self.request_context)):
                raise EmulatorError(
                    "NoPermission",
                    403,
                    "You are not authorized to do this action. You should be authorized by RAM.",
                )

    def authorize_ram(self, action: str, p: dict[str, str], caller: Key) -> None:
        """``ram:<Action>`` on every entity the request names (policy, user, group, role),
        or on ``acs:ram:*:<account>:*`` when it names none. A user, group or role that
        exists is named in its stored spelling, whatever the request's case."""

        def spelled(kind: str, name: str) -> str:
            return name if kind == "Policy" else self.stored_name(kind, name) or name

        named = [
            f"acs:ram:*:{ACCOUNT}:{kind.lower()}/{spelled(kind, p[param])}"
            for param, kind in (
                ("PolicyName", "Policy"),
                ("UserName", "User"),
                ("GroupName", "Group"),
                ("RoleName", "Role"),
            )
            if p.get(param)
        ]
        self.authorize(f"ram:{action}", named or [f"acs:ram:*:{ACCOUNT}:*"], caller)

    # ------------------------------------------------------------------ STS

    def AssumeRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Issue STS credentials. Reproduces: RoleArn format (InvalidParameter.RoleArn), the
        role's existence (EntityNotExist.Role), RoleSessionName rules (2-64 of [A-Za-z0-9.@_-]),
        DurationSeconds 900..MaxSessionDuration, the session policy's grammar and 2,048-byte
        size (InvalidParameter.PolicyGrammar / .PolicySize), root may not assume roles and the
        caller needs sts:AssumeRole on acs:ram:*:<account>:role/<name> and the trust policy
        must name its account or user (NoPermission); the key it returns is narrowed by the
        session policy. Not: ExternalId, SourceIdentity."""
        arn = p.get("RoleArn", "")
        m = _ROLE_ARN_RE.fullmatch(arn)
        if not m:
            raise EmulatorError(
                "InvalidParameter.RoleArn", 400, "The parameter RoleArn is wrongly formed."
            )
        stored = self.stored_name("Role", m.group(2))
        role = self.roles[stored] if stored is not None else None
        if m.group(1) != ACCOUNT or role is None:
            raise EmulatorError(
                "EntityNotExist.Role", 404, f"The role does not exist: {m.group(2)}."
            )
        session = p.get("RoleSessionName", "")
        if not _SESSION_RE.fullmatch(session):
            raise EmulatorError(
                "InvalidParameter.RoleSessionName",
                400,
                "The parameter RoleSessionName is wrongly formed.",
            )
        duration_error = (
            f"The Min/Max value of DurationSeconds is 15min/{role.max_session // 60}min."
        )
        duration = _integer(
            p, "DurationSeconds", 3600, "InvalidParameter.DurationSeconds", duration_error
        )
        if not 900 <= duration <= role.max_session:
            raise EmulatorError("InvalidParameter.DurationSeconds", 400, duration_error)
        policy = p.get("Policy")
        self.session_policies.append(policy or "")
        if policy:
            if len(policy.encode()) > SESSION_POLICY_LIMIT:
                raise EmulatorError(
                    "InvalidParameter.PolicySize",
                    400,
                    "The size of Policy must be smaller than 2048 bytes.",
                )
            try:
                check_conditions(
                    (s, None, i) for i, s in enumerate(parse_policy(policy).statements)
                )
            except PolicyParseError as exc:
                raise EmulatorError(
                    "InvalidParameter.PolicyGrammar", 400, f"The policy grammar is invalid: {exc}"
                ) from None
        if caller.principal == "root":
            raise EmulatorError("NoPermission", 403, "Roles may not be assumed by root accounts.")
        # the role as stored, not as the request spells it (lookup ignored the case)
        self.authorize("sts:AssumeRole", [f"acs:ram:*:{ACCOUNT}:role/{role.name}"], caller)
        if not self._trusts(role, caller):
            raise EmulatorError("NoPermission", 403, "You are not authorized to assume this role.")
        key = self.add_key(f"role/{role.name}/{session}")
        key.key_id = "STS.emu-" + key.key_id.rsplit("-", 1)[1]
        self.keys.pop(next(k for k, v in self.keys.items() if v is key))
        self.keys[key.key_id] = key
        key.token = "CAIS" + hashlib.sha256(f"{key.key_id}{self.counter}".encode()).hexdigest() * 4
        key.expires = self.clock() + duration
        key.session_policy = policy or None
        return {
            "AssumedRoleUser": {
                "AssumedRoleId": f"{role.role_id}:{session}",
                "Arn": f"acs:ram::{ACCOUNT}:role/{role.name.lower()}/{session}",
            },
            "Credentials": {
                "AccessKeyId": key.key_id,
                "AccessKeySecret": key.secret,
                "SecurityToken": key.token,
                "Expiration": now_text(key.expires),
            },
        }

    def _trusts(self, role: RoleRecord, caller: Key) -> bool:
        allowed: list[str] = []
        for st in role.trust.get("Statement", []):
            if st.get("Effect") == "Allow":
                ram = st.get("Principal", {}).get("RAM", [])
                allowed += [ram] if isinstance(ram, str) else list(ram)
        me = f"acs:ram::{ACCOUNT}:{caller.principal.rsplit('/', 1)[0] if caller.principal.startswith('role/') else caller.principal}"
        return any(a in (f"acs:ram::{ACCOUNT}:root", me) or a == ACCOUNT for a in allowed)

    def GetCallerIdentity(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Who signed the request: the account, a RAM user, or an assumed role's session."""
        if caller.principal.startswith("role/"):
            _, role, session = caller.principal.split("/", 2)
            return {
                "AccountId": ACCOUNT,
                "IdentityType": "AssumedRoleUser",
                "Arn": f"acs:ram::{ACCOUNT}:role/{role.lower()}/{session}",
                "RoleId": self.roles[role].role_id,
                "PrincipalId": f"{self.roles[role].role_id}:{session}",
            }
        if caller.principal.startswith("user/"):
            name = caller.principal[5:]
            return {
                "AccountId": ACCOUNT,
                "IdentityType": "RAMUser",
                "Arn": f"acs:ram::{ACCOUNT}:user/{name}",
                "UserId": self.users.get(name, ""),
            }
        return {
            "AccountId": ACCOUNT,
            "IdentityType": "Account",
            "Arn": f"acs:ram::{ACCOUNT}:root",
            "UserId": ACCOUNT,
        }


RAM_ACTIONS = (
    "CreateUser", "CreateAccessKey", "CreateGroup", "AddUserToGroup", "CreateRole", "GetUser", "GetGroup", "GetRole",
    "CreatePolicy", "GetPolicy", "UpdatePolicyDescription", "GetPolicyVersion", "ListPolicyVersions", "ListPolicies",
    "CreatePolicyVersion", "SetDefaultPolicyVersion", "DeletePolicyVersion", "DeletePolicy",
    "AttachPolicyToUser", "AttachPolicyToGroup", "AttachPolicyToRole", "DetachPolicyFromUser",
    "DetachPolicyFromGroup", "DetachPolicyFromRole", "ListPoliciesForUser", "ListPoliciesForGroup",
    "ListPoliciesForRole", "ListGroupsForUser", "ListEntitiesForPolicy",
)  # fmt: skip
STS_ACTIONS = ("AssumeRole", "GetCallerIdentity")

#: (API version, action) -> handler name
RAM_VERSION = "2015-05-01"
STS_VERSION = "2015-04-01"
HANDLERS = {(RAM_VERSION, a): a for a in RAM_ACTIONS} | {(STS_VERSION, a): a for a in STS_ACTIONS}


__all__ = [
    "ACCOUNT",
    "ADMIN_KEY_ID",
    "ADMIN_KEY_SECRET",
    "HANDLERS",
    "RAM_VERSION",
    "STS_VERSION",
    "Backend",
    "EmulatorError",
    "Key",
]
