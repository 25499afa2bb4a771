"""The OSS SDK adapter: the only module that imports alibabacloud-oss-v2 (lazily, so
``permgen --help``, compile and lint never load it).

* One client per credential: V4 signatures (the SDK's default), path-style addressing and
  plain HTTP when an ``endpoint`` (the emulator) is given, with the proxy guard of
  :mod:`permgen.account.sdk` so nothing meant for the emulator leaves the machine.
* The SDK's own retryer is switched off (one attempt); :meth:`SdkOssClient._call` retries
  reads on throttling, 5xx and connection errors with exponential backoff and full
  jitter, a bounded number of times. Writes are sent once.
* SDK exceptions become :class:`~permgen.errors.CloudError` (code, HTTP status, request
  id) or ``EndpointError``; a ``SignatureDoesNotMatch`` answer's string to sign is never
  relayed, and the caller's secret and token are masked in any message.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from permgen.account.oss import (
    BucketAcl,
    BucketInfo,
    LifecycleRule,
    OverwriteRule,
    ReplicationRule,
    VersioningStatus,
    WormConfig,
)
from permgen.account.sdk import PROXY_GUARD, RETRYABLE_CODES, _backoff, mask
from permgen.account.types import AccessKey, ClientConfig
from permgen.errors import CloudError, EndpointError, InputError, ThrottledError

#: The OSS codes that mean "no such setting": the getter answers None or [] instead.
_ABSENT = {
    "get_bucket_policy": "NoSuchBucketPolicy",
    "get_bucket_worm": "NoSuchWORMConfiguration",
    "get_bucket_replication": "NoSuchReplicationConfiguration",
    "get_bucket_lifecycle": "NoSuchLifecycle",
}
_OSS_RETRYABLE = RETRYABLE_CODES | {"RequestTimeout", "ServiceBusy"}


def make_oss_client(
    credentials: AccessKey | None, config: ClientConfig, *, signature_version: str | None = None
) -> Any:
    """An alibabacloud-oss-v2 client; ``credentials`` None: anonymous requests;
    ``signature_version`` "v1" or "v4" (None: the SDK's default, V4)."""
    import alibabacloud_oss_v2 as oss

    cfg = oss.config.load_default()
    if credentials is None:
        cfg.credentials_provider = oss.credentials.AnonymousCredentialsProvider()
    else:
        token = credentials.security_token
        cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(
            credentials.access_key_id,
            credentials.access_key_secret.reveal(),
            token.reveal() if token else None,
        )
    cfg.region = config.region
    cfg.retry_max_attempts = 1  # permgen retries reads itself, and never writes
    cfg.connect_timeout = config.connect_timeout
    cfg.readwrite_timeout = config.read_timeout
    if signature_version:
        cfg.signature_version = signature_version
    if config.endpoint:
        cfg.endpoint = config.endpoint
        cfg.use_path_style = True
        cfg.disable_ssl = config.endpoint.startswith("http://")
        cfg.proxy_host = dict(PROXY_GUARD)
    return oss.Client(cfg)


class SdkOssClient:
    """OSS bucket APIs through alibabacloud-oss-v2 (implements
    :class:`permgen.account.oss.OssApi`)."""

    def __init__(
        self,
        credentials: AccessKey | None,
        config: ClientConfig,
        *,
        sleep: Callable[[float], None] = time.sleep,
        signature_version: str | None = None,
    ) -> None:
        self.config = config
        self._sleep = sleep
        self._secrets: tuple[str, ...] = ()
        if credentials is not None:
            token = credentials.security_token
            self._secrets = (
                credentials.access_key_secret.reveal(),
                token.reveal() if token else "",
            )
        self._client = make_oss_client(credentials, config, signature_version=signature_version)

    # ------------------------------------------------------------------ plumbing

    def _call(self, operation: str, request: Any, *, read: bool) -> Any:
        import alibabacloud_oss_v2 as oss

        attempts = self.config.max_attempts if read else 1
        for attempt in range(1, attempts + 1):
            try:
                return getattr(self._client, operation)(request)
            except oss.exceptions.OperationError as exc:
                inner = exc.unwrap()
                if isinstance(inner, oss.exceptions.ServiceError):
                    code = str(inner.code or "")
                    status = int(inner.status_code or 0)
                    retryable = (
                        code in _OSS_RETRYABLE or code.startswith("Throttl") or status >= 500
                    )
                    if retryable and attempt < attempts:
                        _backoff(operation, attempt, code, self.config, self._sleep)
                        continue
                    raise self._error(
                        operation,
                        code,
                        status,
                        str(inner.message or ""),
                        str(inner.request_id or ""),
                    ) from None
                if not isinstance(
                    inner, (oss.exceptions.RequestError, oss.exceptions.ResponseError)
                ):
                    # the SDK refused the request before sending it (a bucket name, a field)
                    raise InputError(
                        f"OSS {operation}: {mask(type(inner).__name__, self._secrets)}: "
                        f"{mask(str(inner), self._secrets)}"
                    ) from None
                if attempt < attempts and read:
                    _backoff(operation, attempt, type(inner).__name__, self.config, self._sleep)
                    continue
                raise EndpointError(
                    f"OSS {operation}: cannot reach "
                    f"{self.config.endpoint or 'the OSS endpoint'}: {type(inner).__name__}"
                ) from None
        raise AssertionError("unreachable")  # pragma: no cover

    def _error(
        self, operation: str, code: str, status: int, message: str, request_id: str
    ) -> CloudError:
        if code == "SignatureDoesNotMatch":
            message = "the request's signature did not match (is the AccessKeySecret right?)"
        message = mask(message, self._secrets)
        cls = ThrottledError if code.startswith("Throttl") else CloudError
        return cls(
            f"OSS {operation} failed: {mask(code, self._secrets)} (HTTP {status}): {message} "
            f"[RequestId {mask(request_id, self._secrets)}]",
            code=code,
            http_status=status,
            request_id=request_id,
            action=operation,
        )

    def _absent(self, operation: str, request: Any) -> Any:
        """A getter whose "no such setting" answer reads as None."""
        try:
            return self._call(operation, request, read=True)
        except CloudError as exc:
            if exc.code == _ABSENT.get(operation):
                return None
            raise

    # ------------------------------------------------------------------ buckets

    def list_buckets(self) -> list[str]:
        import alibabacloud_oss_v2 as oss

        out: list[str] = []
        marker = ""
        while True:
            r = self._call("list_buckets", oss.ListBucketsRequest(marker=marker or None), read=True)
            out += [b.name for b in r.buckets or []]
            if not r.is_truncated or not r.next_marker:
                return out
            marker = r.next_marker

    def put_bucket(self, bucket: str, acl: BucketAcl | None = None) -> None:
        import alibabacloud_oss_v2 as oss

        self._call("put_bucket", oss.PutBucketRequest(bucket=bucket, acl=acl), read=False)

    def get_bucket_info(self, bucket: str) -> BucketInfo:
        import alibabacloud_oss_v2 as oss

        info = self._call(
            "get_bucket_info", oss.GetBucketInfoRequest(bucket=bucket), read=True
        ).bucket_info
        return BucketInfo(
            name=info.name,
            acl=info.acl or "",
            storage_class=info.storage_class or "",
            redundancy=info.data_redundancy_type or "",
            versioning=info.versioning or None,
            block_public_access=bool(info.block_public_access),
            creation_date=str(info.creation_date or ""),
            location=str(info.location or ""),
        )

    def put_bucket_versioning(self, bucket: str, status: VersioningStatus) -> None:
        import alibabacloud_oss_v2 as oss

        self._call(
            "put_bucket_versioning",
            oss.PutBucketVersioningRequest(
                bucket=bucket, versioning_configuration=oss.VersioningConfiguration(status=status)
            ),
            read=False,
        )

    def get_bucket_versioning(self, bucket: str) -> str | None:
        import alibabacloud_oss_v2 as oss

        r = self._call(
            "get_bucket_versioning", oss.GetBucketVersioningRequest(bucket=bucket), read=True
        )
        return r.version_status or None

    # ------------------------------------------------------------------ policy and ACL

    def put_bucket_policy(self, bucket: str, document: str) -> None:
        import alibabacloud_oss_v2 as oss

        self._call(
            "put_bucket_policy",
            oss.PutBucketPolicyRequest(bucket=bucket, body=document),
            read=False,
        )

    def get_bucket_policy(self, bucket: str) -> str | None:
        import alibabacloud_oss_v2 as oss

        r = self._absent("get_bucket_policy", oss.GetBucketPolicyRequest(bucket=bucket))
        return None if r is None else str(r.body)

    def delete_bucket_policy(self, bucket: str) -> None:
        import alibabacloud_oss_v2 as oss

        self._call("delete_bucket_policy", oss.DeleteBucketPolicyRequest(bucket=bucket), read=False)

    def put_bucket_acl(self, bucket: str, acl: BucketAcl) -> None:
        import alibabacloud_oss_v2 as oss

        self._call("put_bucket_acl", oss.PutBucketAclRequest(bucket=bucket, acl=acl), read=False)

    def get_bucket_acl(self, bucket: str) -> str:
        import alibabacloud_oss_v2 as oss

        return str(
            self._call("get_bucket_acl", oss.GetBucketAclRequest(bucket=bucket), read=True).acl
        )

    # ------------------------------------------------------------------ overwrite protection

    def put_overwrite_config(self, bucket: str, rules: list[OverwriteRule]) -> None:
        import alibabacloud_oss_v2 as oss

        conf = oss.OverwriteConfiguration(
            rules=[
                oss.OverwriteRule(
                    id=r.rule_id or None,
                    action="forbid",
                    prefix=r.prefix or None,
                    suffix=r.suffix or None,
                    principals=oss.OverwritePrincipals(principals=list(r.principals)),
                )
                for r in rules
            ]
        )
        self._call(
            "put_bucket_overwrite_config",
            oss.PutBucketOverwriteConfigRequest(bucket=bucket, overwrite_configuration=conf),
            read=False,
        )

    def get_overwrite_config(self, bucket: str) -> list[OverwriteRule]:
        import alibabacloud_oss_v2 as oss

        conf = self._call(
            "get_bucket_overwrite_config",
            oss.GetBucketOverwriteConfigRequest(bucket=bucket),
            read=True,
        ).overwrite_configuration
        return [
            OverwriteRule(
                prefix=r.prefix or "",
                suffix=r.suffix or "",
                principals=tuple((r.principals.principals or []) if r.principals else ()),
                rule_id=r.id or "",
            )
            for r in (conf.rules if conf is not None and conf.rules else [])
        ]

    def delete_overwrite_config(self, bucket: str) -> None:
        import alibabacloud_oss_v2 as oss

        self._call(
            "delete_bucket_overwrite_config",
            oss.DeleteBucketOverwriteConfigRequest(bucket=bucket),
            read=False,
        )

    # ------------------------------------------------------------------ retention (WORM)

    def initiate_worm(self, bucket: str, days: int) -> str:
        import alibabacloud_oss_v2 as oss

        r = self._call(
            "initiate_bucket_worm",
            oss.InitiateBucketWormRequest(
                bucket=bucket,
                initiate_worm_configuration=oss.InitiateWormConfiguration(
                    retention_period_in_days=days
                ),
            ),
            read=False,
        )
        return str(r.worm_id)

    def complete_worm(self, bucket: str, worm_id: str) -> None:
        import alibabacloud_oss_v2 as oss

        self._call(
            "complete_bucket_worm",
            oss.CompleteBucketWormRequest(bucket=bucket, worm_id=worm_id),
            read=False,
        )

    def abort_worm(self, bucket: str) -> None:
        import alibabacloud_oss_v2 as oss

        self._call("abort_bucket_worm", oss.AbortBucketWormRequest(bucket=bucket), read=False)

    def extend_worm(self, bucket: str, worm_id: str, days: int) -> None:
        import alibabacloud_oss_v2 as oss

        self._call(
            "extend_bucket_worm",
            oss.ExtendBucketWormRequest(
                bucket=bucket,
                worm_id=worm_id,
                extend_worm_configuration=oss.ExtendWormConfiguration(
                    retention_period_in_days=days
                ),
            ),
            read=False,
        )

    def get_worm(self, bucket: str) -> WormConfig | None:
        import alibabacloud_oss_v2 as oss

        r = self._absent("get_bucket_worm", oss.GetBucketWormRequest(bucket=bucket))
        if r is None or r.worm_configuration is None:
            return None
        w = r.worm_configuration
        return WormConfig(
            worm_id=w.worm_id or "",
            state=w.state or "",
            retention_days=int(w.retention_period_in_days or 0),
            creation_date=w.creation_date or "",
            expiration_date=w.expiration_date or "",
        )

    # ------------------------------------------------------------------ replication

    def put_replication(self, bucket: str, rule: ReplicationRule) -> None:
        import alibabacloud_oss_v2 as oss

        conf = oss.ReplicationConfiguration(
            rules=[
                oss.ReplicationRule(
                    id=rule.rule_id or None,
                    action=rule.action or None,
                    destination=oss.ReplicationDestination(
                        bucket=rule.destination_bucket, location=rule.destination_location
                    ),
                    prefix_set=oss.ReplicationPrefixSet(prefixs=list(rule.prefixes))
                    if rule.prefixes
                    else None,
                )
            ]
        )
        self._call(
            "put_bucket_replication",
            oss.PutBucketReplicationRequest(bucket=bucket, replication_configuration=conf),
            read=False,
        )

    def get_replication(self, bucket: str) -> list[ReplicationRule]:
        import alibabacloud_oss_v2 as oss

        r = self._absent("get_bucket_replication", oss.GetBucketReplicationRequest(bucket=bucket))
        if r is None or r.replication_configuration is None:
            return []
        return [
            ReplicationRule(
                destination_bucket=(x.destination.bucket or "") if x.destination else "",
                destination_location=(x.destination.location or "") if x.destination else "",
                rule_id=x.id or "",
                action=x.action or "",
                prefixes=tuple(x.prefix_set.prefixs or []) if x.prefix_set else (),
                status=x.status or "",
            )
            for x in r.replication_configuration.rules or []
        ]

    def delete_replication(self, bucket: str, rule_id: str) -> None:
        import alibabacloud_oss_v2 as oss

        self._call(
            "delete_bucket_replication",
            oss.DeleteBucketReplicationRequest(
                bucket=bucket, replication_rules=oss.ReplicationRules(ids=[rule_id])
            ),
            read=False,
        )

    # ------------------------------------------------------------------ lifecycle

    def put_lifecycle(self, bucket: str, rules: list[LifecycleRule]) -> None:
        import alibabacloud_oss_v2 as oss

        conf = oss.LifecycleConfiguration(
            rules=[
                oss.LifecycleRule(
                    id=r.rule_id,
                    prefix=r.prefix,
                    status="Enabled" if r.enabled else "Disabled",
                    expiration=oss.LifecycleRuleExpiration(days=r.expiration_days)
                    if r.expiration_days is not None
                    else None,
                    noncurrent_version_expiration=oss.NoncurrentVersionExpiration(
                        noncurrent_days=r.noncurrent_expiration_days
                    )
                    if r.noncurrent_expiration_days is not None
                    else None,
                )
                for r in rules
            ]
        )
        self._call(
            "put_bucket_lifecycle",
            oss.PutBucketLifecycleRequest(bucket=bucket, lifecycle_configuration=conf),
            read=False,
        )

    def get_lifecycle(self, bucket: str) -> list[LifecycleRule]:
        import alibabacloud_oss_v2 as oss

        r = self._absent("get_bucket_lifecycle", oss.GetBucketLifecycleRequest(bucket=bucket))
        if r is None or r.lifecycle_configuration is None:
            return []
        out = []
        for x in r.lifecycle_configuration.rules or []:
            nce = x.noncurrent_version_expiration
            out.append(
                LifecycleRule(
                    rule_id=x.id or "",
                    prefix=x.prefix or "",
                    enabled=x.status == "Enabled",
                    expiration_days=x.expiration.days if x.expiration else None,
                    noncurrent_expiration_days=nce.noncurrent_days if nce else None,
                )
            )
        return out

    def delete_lifecycle(self, bucket: str) -> None:
        import alibabacloud_oss_v2 as oss

        self._call(
            "delete_bucket_lifecycle", oss.DeleteBucketLifecycleRequest(bucket=bucket), read=False
        )

    # ------------------------------------------------------------------ public access block

    def put_public_access_block(self, bucket: str, block: bool) -> None:
        import alibabacloud_oss_v2 as oss

        self._call(
            "put_bucket_public_access_block",
            oss.PutBucketPublicAccessBlockRequest(
                bucket=bucket,
                public_access_block_configuration=oss.PublicAccessBlockConfiguration(
                    block_public_access=block
                ),
            ),
            read=False,
        )

    def get_public_access_block(self, bucket: str) -> bool:
        import alibabacloud_oss_v2 as oss

        conf = self._call(
            "get_bucket_public_access_block",
            oss.GetBucketPublicAccessBlockRequest(bucket=bucket),
            read=True,
        ).public_access_block_configuration
        return bool(conf is not None and conf.block_public_access)


__all__ = ["SdkOssClient", "make_oss_client"]
