"""The emulator's STS API (2015-04-01): AssumeRole and GetCallerIdentity."""

from __future__ import annotations

import hashlib
from typing import Any

from permgen.emulator.authz import Authorization
from permgen.emulator.state import (
    ACCOUNT,
    ROLE_ARN_RE,
    SESSION_RE,
    STS_VERSION,
    EmulatorError,
    Key,
    RoleRecord,
    handler,
    integer_param,
    now_text,
)
from permgen.errors import PolicyParseError
from permgen.policy.model import SESSION_POLICY_LIMIT, parse_policy
from permgen.semantics.conditions import check_conditions


class StsHandlers(Authorization):
    """The STS actions; minting checks the role's trust policy and the session policy."""

    @handler(STS_VERSION)
    def AssumeRole(self, p: dict[str, str], caller: Key) -> dict[str, Any]:
        """Issue STS credentials. Reproduces: RoleArn format (InvalidParameter.RoleArn), the
        role's existence (EntityNotExist.Role), RoleSessionName rules (2-64 of [A-Za-z0-9.@_-]),
        DurationSeconds 900..MaxSessionDuration, the session policy's grammar and 2,048-byte
        size (InvalidParameter.PolicyGrammar / .PolicySize), root may not assume roles and the
        caller needs sts:AssumeRole on acs:ram:*:<account>:role/<name> and the trust policy
        must name its account or user (NoPermission); the key it returns is narrowed by the
        session policy. Not: ExternalId, SourceIdentity."""
        arn = p.get("RoleArn", "")
        m = ROLE_ARN_RE.fullmatch(arn)
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
        if not SESSION_RE.fullmatch(session):
            raise EmulatorError(
                "InvalidParameter.RoleSessionName",
                400,
                "The parameter RoleSessionName is wrongly formed.",
            )
        duration_error = (
            f"The Min/Max value of DurationSeconds is 15min/{role.max_session // 60}min."
        )
        duration = integer_param(
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

    @handler(STS_VERSION)
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
