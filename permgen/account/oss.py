"""The OSS control plane as permgen sees it: values and the :class:`OssApi` Protocol.

The OSS SDK (alibabacloud-oss-v2) is imported in exactly one module,
:mod:`permgen.account.oss_sdk`, behind this Protocol. Reads are retried with backoff; writes
are never retried blindly (a retry after a lost answer could apply a change twice). A
setting that is absent (no bucket policy, no retention policy, no lifecycle rules) reads as
``None`` or an empty list, not as an error.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

BucketAcl = Literal["private", "public-read", "public-read-write"]
VersioningStatus = Literal["Enabled", "Suspended"]


@dataclass(frozen=True)
class BucketInfo:
    name: str
    acl: str
    storage_class: str = "Standard"
    redundancy: str = "LRS"
    versioning: str | None = None  # None: never enabled
    block_public_access: bool = False
    creation_date: str = ""
    location: str = ""  # "oss-cn-hangzhou"


@dataclass(frozen=True)
class WormConfig:
    """A bucket's retention policy: ``state`` is ``InProgress`` (unlocked) or ``Locked``."""

    worm_id: str
    state: str
    retention_days: int
    creation_date: str = ""
    expiration_date: str = ""  # an unlocked policy's lapse time

    @property
    def locked(self) -> bool:
        return self.state == "Locked"


@dataclass(frozen=True)
class OverwriteRule:
    """Overwrite protection (``Action: forbid``) for keys with this prefix and suffix,
    for these principals (none: everyone)."""

    prefix: str = ""
    suffix: str = ""
    principals: tuple[str, ...] = ()
    rule_id: str = ""


@dataclass(frozen=True)
class ReplicationRule:
    destination_bucket: str
    destination_location: str
    rule_id: str = ""
    action: str = "ALL"
    prefixes: tuple[str, ...] = ()
    status: str = ""


@dataclass(frozen=True)
class LifecycleRule:
    """A lifecycle rule; ``expiration_days`` deletes current objects that old (None: none)."""

    rule_id: str
    prefix: str = ""
    enabled: bool = True
    expiration_days: int | None = None
    noncurrent_expiration_days: int | None = None
    extra: dict[str, str] = field(default_factory=dict, compare=False)


class OssApi(Protocol):
    """The bucket APIs permgen calls (docs/emulator.md lists what the emulator serves)."""

    def list_buckets(self) -> list[str]: ...
    def put_bucket(self, bucket: str, acl: BucketAcl | None = None) -> None: ...
    def get_bucket_info(self, bucket: str) -> BucketInfo: ...
    def put_bucket_versioning(self, bucket: str, status: VersioningStatus) -> None: ...
    def get_bucket_versioning(self, bucket: str) -> str | None: ...
    def put_bucket_policy(self, bucket: str, document: str) -> None: ...
    def get_bucket_policy(self, bucket: str) -> str | None: ...
    def delete_bucket_policy(self, bucket: str) -> None: ...
    def put_bucket_acl(self, bucket: str, acl: BucketAcl) -> None: ...
    def get_bucket_acl(self, bucket: str) -> str: ...
    def put_overwrite_config(self, bucket: str, rules: list[OverwriteRule]) -> None: ...
    def get_overwrite_config(self, bucket: str) -> list[OverwriteRule]: ...
    def delete_overwrite_config(self, bucket: str) -> None: ...
    def initiate_worm(self, bucket: str, days: int) -> str: ...
    def complete_worm(self, bucket: str, worm_id: str) -> None: ...
    def abort_worm(self, bucket: str) -> None: ...
    def extend_worm(self, bucket: str, worm_id: str, days: int) -> None: ...
    def get_worm(self, bucket: str) -> WormConfig | None: ...
    def put_replication(self, bucket: str, rule: ReplicationRule) -> None: ...
    def get_replication(self, bucket: str) -> list[ReplicationRule]: ...
    def delete_replication(self, bucket: str, rule_id: str) -> None: ...
    def put_lifecycle(self, bucket: str, rules: list[LifecycleRule]) -> None: ...
    def get_lifecycle(self, bucket: str) -> list[LifecycleRule]: ...
    def delete_lifecycle(self, bucket: str) -> None: ...
    def put_public_access_block(self, bucket: str, block: bool) -> None: ...
    def get_public_access_block(self, bucket: str) -> bool: ...


__all__ = [
    "BucketAcl",
    "BucketInfo",
    "LifecycleRule",
    "OssApi",
    "OverwriteRule",
    "ReplicationRule",
    "VersioningStatus",
    "WormConfig",
]
