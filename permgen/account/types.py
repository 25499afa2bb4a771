"""Values and Protocols for the account side (RAM and STS).

The Alibaba SDK is imported in exactly one module per product behind these Protocols
(``permgen.account.sdk``); the emulator's in-process backend implements them too, which is
what lets one contract suite run in process and over HTTP.

Secrets (AccessKeySecret, SecurityToken) are held in :class:`Secret`, whose ``repr`` and
``str`` never show the value.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol

PrincipalKind = Literal["user", "role", "group"]
PolicyType = Literal["System", "Custom"]


class Secret:
    """A secret string that never shows itself in repr, str, logs or tracebacks."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        """The secret itself; call only where it must go on the wire or into a 0600 file."""
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        import hmac

        return isinstance(other, Secret) and hmac.compare_digest(self._value, other._value)

    def __hash__(self) -> int:
        return hash(self._value)

    def __bool__(self) -> bool:
        return bool(self._value)


@dataclass(frozen=True)
class AccessKey:
    """Credentials to sign requests with. ``security_token`` is set for STS credentials."""

    access_key_id: str
    access_key_secret: Secret
    security_token: Secret | None = None


@dataclass(frozen=True)
class StsCredentials:
    """What AssumeRole returns."""

    access_key_id: str
    access_key_secret: Secret
    security_token: Secret
    expiration: str  # UTC, "%Y-%m-%dT%H:%M:%SZ"
    assumed_role_id: str = ""
    assumed_role_arn: str = ""


@dataclass(frozen=True)
class CallerIdentity:
    account_id: str
    user_id: str
    arn: str
    identity_type: str = ""
    principal_id: str = ""
    role_id: str = ""


@dataclass(frozen=True)
class AttachedPolicy:
    policy_name: str
    policy_type: PolicyType
    default_version: str = ""
    description: str = ""
    attach_date: str = ""


@dataclass(frozen=True)
class PolicyVersion:
    version_id: str
    is_default: bool
    document: str  # the policy JSON text, as RAM returns it
    create_date: str = ""


@dataclass(frozen=True)
class PolicyInfo:
    policy_name: str
    policy_type: PolicyType
    default_version: str
    description: str = ""
    attachment_count: int = 0
    default_document: str = ""


@dataclass(frozen=True)
class PolicyEntities:
    users: tuple[str, ...] = ()
    groups: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()


@dataclass(frozen=True)
class Principal:
    kind: PrincipalKind
    name: str

    @classmethod
    def parse(cls, text: str) -> Principal:
        """``user:alice`` -> Principal("user", "alice"); raises ValueError otherwise."""
        kind, sep, name = text.partition(":")
        if not sep or kind not in ("user", "role", "group") or not name:
            raise ValueError(f"{text!r} is not user:NAME, role:NAME or group:NAME")
        return cls(kind, name)  # type: ignore[arg-type]

    def __str__(self) -> str:
        return f"{self.kind}:{self.name}"


class RamApi(Protocol):
    """The RAM operations permgen uses (API version 2015-05-01)."""

    def list_policies_for(self, principal: Principal) -> list[AttachedPolicy]: ...
    def list_groups_for_user(self, user_name: str) -> list[str]: ...
    def get_policy(self, name: str, policy_type: PolicyType) -> PolicyInfo: ...
    def get_policy_version(
        self, name: str, policy_type: PolicyType, version_id: str
    ) -> PolicyVersion: ...
    def list_policy_versions(self, name: str, policy_type: PolicyType) -> list[PolicyVersion]: ...
    def list_policies(
        self, policy_type: PolicyType | None = None, *, page_size: int = 1000
    ) -> list[PolicyInfo]: ...
    def create_policy(self, name: str, document: str, description: str = "") -> PolicyInfo: ...
    def create_policy_version(
        self, name: str, document: str, *, set_as_default: bool, rotate: bool
    ) -> PolicyVersion: ...
    def delete_policy_version(self, name: str, version_id: str) -> None: ...
    def set_default_policy_version(self, name: str, version_id: str) -> None: ...
    def delete_policy(self, name: str) -> None: ...
    def attach_policy(self, principal: Principal, name: str, policy_type: PolicyType) -> None: ...
    def detach_policy(self, principal: Principal, name: str, policy_type: PolicyType) -> None: ...
    def list_entities_for_policy(self, name: str, policy_type: PolicyType) -> PolicyEntities: ...
    def update_policy_description(self, name: str, description: str) -> None: ...
    def principal_exists(self, principal: Principal) -> bool: ...
    def role_max_session(self, role_name: str) -> int | None: ...
    def list_users(self) -> list[tuple[str, str]]: ...
    def list_groups(self) -> list[str]: ...
    def list_roles(self) -> list[str]: ...
    def get_role_trust(self, name: str) -> str: ...


class StsApi(Protocol):
    """The STS operations permgen uses (API version 2015-04-01)."""

    def assume_role(
        self,
        role_arn: str,
        session_name: str,
        *,
        duration: int,
        policy: str | None = None,
        external_id: str | None = None,
    ) -> StsCredentials: ...

    def get_caller_identity(self) -> CallerIdentity: ...


@dataclass(frozen=True)
class ClientConfig:
    """How to reach the account: endpoint (None = the real cloud), region, timeouts, retries."""

    endpoint: str | None = None
    region: str = "cn-hangzhou"
    connect_timeout: float = 5.0
    read_timeout: float = 10.0
    max_attempts: int = 4
    backoff_base: float = 0.2
    backoff_cap: float = 5.0


__all__ = [
    "AccessKey",
    "AttachedPolicy",
    "CallerIdentity",
    "ClientConfig",
    "PolicyEntities",
    "PolicyInfo",
    "PolicyType",
    "PolicyVersion",
    "Principal",
    "PrincipalKind",
    "RamApi",
    "Secret",
    "StsApi",
    "StsCredentials",
]
