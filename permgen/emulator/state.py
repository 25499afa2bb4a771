"""The emulator's account state: records, persistence, the handler registry.

One account's RAM and STS state lives in :class:`State`; the handlers are methods of the
classes that extend it (:mod:`permgen.emulator.ram`, :mod:`permgen.emulator.sts`, with
:mod:`permgen.emulator.authz` deciding who may call them), composed into
:class:`permgen.emulator.backend.Backend`. A handler registers itself with
``@handler(VERSION)``, which is the list the server dispatches from and the docs list.

Deterministic: ids come from a counter, time from an injectable clock. Errors use RAM's and
STS's real codes and HTTP statuses (:class:`EmulatorError`).
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, TypeVar

from permgen._internal.safejson import JsonLimitError
from permgen._internal.safejson import loads as bounded_loads
from permgen.errors import PolicyParseError
from permgen.policy.model import POLICY_LIMIT, Policy, parse_policy
from permgen.semantics.conditions import check_conditions

ACCOUNT = "1234567890123456"
ADMIN_KEY_ID = "LTAI-permgen-emulator-admin"
ADMIN_KEY_SECRET = "permgen-emulator-admin-secret-not-real"  # exists only inside the emulator

# Applied with fullmatch: "$" in re.match would also accept a trailing newline.
NAME_RE = re.compile(r"[A-Za-z0-9-]{1,128}")
SESSION_RE = re.compile(r"[A-Za-z0-9.@_-]{2,64}")
ROLE_ARN_RE = re.compile(r"acs:ram::([0-9]+):role/([A-Za-z0-9.-]{1,64})")
DIGITS_RE = re.compile(r"[0-9]{1,9}")  # ASCII digits only: "²".isdigit() is true
#: RAM's limit for a role's trust policy (AssumeRolePolicyDocument). UNCONFIRMED: the
#: CreateRole model gives no number; the custom-policy limit is used.
TRUST_POLICY_LIMIT = POLICY_LIMIT
PRINCIPAL_KINDS = ("RAM", "Service", "Federated")


def integer_param(p: dict[str, str], name: str, default: int, code: str, message: str) -> int:
    """A whole-number parameter, or the parameter's InvalidParameter error."""
    raw = p.get(name)
    if raw is None or raw == "":
        return default
    if not DIGITS_RE.fullmatch(raw):
        raise EmulatorError(code, 400, message)
    return int(raw)


def all_strings(value: Any) -> bool:
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
        if not all_strings(st.get("Action")):
            raise bad("each statement needs an Action string or list of strings")
        principal = st.get("Principal")
        if (
            not isinstance(principal, dict)
            or not principal
            or any(k not in PRINCIPAL_KINDS or not all_strings(v) for k, v in principal.items())
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
def parsed_policy(document: str) -> Policy:
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


#: API versions the emulator speaks.
RAM_VERSION = "2015-05-01"
STS_VERSION = "2015-04-01"

#: (API version, action) -> handler name, filled by :func:`handler`.
HANDLERS: dict[tuple[str, str], str] = {}

_F = TypeVar("_F", bound=Callable[..., dict[str, Any]])


def handler(version: str) -> Callable[[_F], _F]:
    """Register a method of the backend as the handler of the RPC action it is named after."""

    def register(fn: _F) -> _F:
        HANDLERS[(version, fn.__name__)] = fn.__name__
        return fn

    return register


class State:
    """One account's records. ``clock`` returns seconds since the epoch (tests move it)."""

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
