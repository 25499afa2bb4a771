"""The emulator's OSS control plane, driven by Alibaba's real OSS SDK (alibabacloud-oss-v2)
over HTTP, and permgen's adapter over the same SDK (no mock anywhere)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from email.utils import formatdate
from typing import Any

import alibabacloud_oss_v2 as oss
import pytest

from permgen.account.oss import LifecycleRule, OverwriteRule, ReplicationRule
from permgen.account.oss_sdk import SdkOssClient
from permgen.account.types import AccessKey, ClientConfig, Secret
from permgen.emulator import ACCOUNT, ADMIN_KEY_ID, ADMIN_KEY_SECRET, Backend, Emulator
from permgen.emulator.oss import WORM_UNLOCKED_LIFETIME
from permgen.errors import CloudError

ALICE = ("LTAI-alice-oss-key", "alice-oss-secret")
BOB = ("LTAI-bob-oss-key", "bob-oss-secret")
BUCKET = "permgen-data"


class Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def _policy(*statements: dict[str, Any]) -> dict[str, Any]:
    return {"Version": "1", "Statement": list(statements)}


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def emulator(clock: Clock) -> Iterator[Emulator]:
    backend = Backend(clock=clock)
    backend.seed(
        {
            "users": [
                {"name": "alice", "access_keys": [{"id": ALICE[0], "secret": ALICE[1]}]},
                {"name": "bob", "access_keys": [{"id": BOB[0], "secret": BOB[1]}]},
            ],
            "policies": [
                {
                    "name": "bucket-reader",
                    "document": _policy(
                        {
                            "Effect": "Allow",
                            "Action": ["oss:GetBucketInfo", "oss:GetBucketAcl"],
                            "Resource": f"acs:oss:*:*:{BUCKET}",
                        }
                    ),
                },
                {
                    "name": "oss-admin",
                    "document": _policy({"Effect": "Allow", "Action": "oss:*", "Resource": "*"}),
                },
            ],
            "attachments": [{"policy": "bucket-reader", "to": "user:alice"}],
        }
    )
    with Emulator(backend) as emu:
        yield emu


def sdk(emu: Emulator, key: tuple[str, ...] | None = None, version: str = "v4") -> Any:
    """The real SDK's client, path-style, plain HTTP, without its own retries."""
    cfg = oss.config.load_default()
    if key is None:
        cfg.credentials_provider = oss.credentials.AnonymousCredentialsProvider()
    else:
        cfg.credentials_provider = oss.credentials.StaticCredentialsProvider(*key)
    cfg.region = "cn-hangzhou"
    cfg.endpoint = emu.url
    cfg.use_path_style = True
    cfg.disable_ssl = True
    cfg.signature_version = version
    cfg.retry_max_attempts = 1
    cfg.proxy_host = {"http": None, "https": "http://127.0.0.1:9"}
    return oss.Client(cfg)


def adapter(emu: Emulator, key: tuple[str, str] = (ADMIN_KEY_ID, ADMIN_KEY_SECRET)) -> SdkOssClient:
    return SdkOssClient(
        AccessKey(key[0], Secret(key[1])),
        ClientConfig(endpoint=emu.url, backoff_base=0.0),
        sleep=lambda s: None,
    )


def failure(fn: Any, *args: Any) -> Any:
    """The ServiceError the SDK raised for a call."""
    with pytest.raises(oss.exceptions.OperationError) as info:
        fn(*args)
    err = info.value.unwrap()
    assert isinstance(err, oss.exceptions.ServiceError), err
    return err


ADMIN = (ADMIN_KEY_ID, ADMIN_KEY_SECRET)


# ---------------------------------------------------------------------- every API


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_every_bucket_api_round_trips_through_the_real_sdk(
    emulator: Emulator, version: str
) -> None:
    """V4 is the SDK's default signature; V1 is what oss2 sends (the SDK signs it too)."""
    c = sdk(emulator, ADMIN, version)
    c.put_bucket(oss.PutBucketRequest(bucket=BUCKET, acl="private"))
    assert [b.name for b in c.list_buckets(oss.ListBucketsRequest()).buckets] == [BUCKET]
    info = c.get_bucket_info(oss.GetBucketInfoRequest(bucket=BUCKET)).bucket_info
    assert (info.name, info.acl, info.owner.id) == (BUCKET, "private", ACCOUNT)

    c.put_bucket_acl(oss.PutBucketAclRequest(bucket=BUCKET, acl="public-read"))
    assert c.get_bucket_acl(oss.GetBucketAclRequest(bucket=BUCKET)).acl == "public-read"

    doc = json.dumps(
        _policy(
            {
                "Effect": "Allow",
                "Principal": ["*"],
                "Action": ["oss:GetBucketInfo"],
                "Resource": [f"acs:oss:*:{ACCOUNT}:{BUCKET}"],
            }
        )
    )
    c.put_bucket_policy(oss.PutBucketPolicyRequest(bucket=BUCKET, body=doc))
    assert json.loads(c.get_bucket_policy(oss.GetBucketPolicyRequest(bucket=BUCKET)).body) == (
        json.loads(doc)
    )
    c.delete_bucket_policy(oss.DeleteBucketPolicyRequest(bucket=BUCKET))
    assert failure(c.get_bucket_policy, oss.GetBucketPolicyRequest(bucket=BUCKET)).code == (
        "NoSuchBucketPolicy"
    )

    rule = oss.OverwriteRule(
        action="forbid", prefix="logs/", principals=oss.OverwritePrincipals(principals=["27737"])
    )
    c.put_bucket_overwrite_config(
        oss.PutBucketOverwriteConfigRequest(
            bucket=BUCKET, overwrite_configuration=oss.OverwriteConfiguration(rules=[rule])
        )
    )
    got = c.get_bucket_overwrite_config(oss.GetBucketOverwriteConfigRequest(bucket=BUCKET))
    assert [(r.prefix, r.principals.principals) for r in got.overwrite_configuration.rules] == [
        ("logs/", ["27737"])
    ]
    c.delete_bucket_overwrite_config(oss.DeleteBucketOverwriteConfigRequest(bucket=BUCKET))
    got = c.get_bucket_overwrite_config(oss.GetBucketOverwriteConfigRequest(bucket=BUCKET))
    assert not got.overwrite_configuration.rules

    c.put_bucket_replication(
        oss.PutBucketReplicationRequest(
            bucket=BUCKET,
            replication_configuration=oss.ReplicationConfiguration(
                rules=[
                    oss.ReplicationRule(
                        destination=oss.ReplicationDestination(
                            bucket="permgen-copy", location="oss-cn-beijing"
                        )
                    )
                ]
            ),
        )
    )
    rules = c.get_bucket_replication(
        oss.GetBucketReplicationRequest(bucket=BUCKET)
    ).replication_configuration.rules
    assert [r.destination.bucket for r in rules] == ["permgen-copy"]
    c.delete_bucket_replication(
        oss.DeleteBucketReplicationRequest(
            bucket=BUCKET, replication_rules=oss.ReplicationRules(ids=[rules[0].id])
        )
    )
    assert failure(
        c.get_bucket_replication, oss.GetBucketReplicationRequest(bucket=BUCKET)
    ).code == ("NoSuchReplicationConfiguration")

    c.put_bucket_lifecycle(
        oss.PutBucketLifecycleRequest(
            bucket=BUCKET,
            lifecycle_configuration=oss.LifecycleConfiguration(
                rules=[
                    oss.LifecycleRule(
                        id="expire-tmp",
                        prefix="tmp/",
                        status="Enabled",
                        expiration=oss.LifecycleRuleExpiration(days=7),
                    )
                ]
            ),
        )
    )
    lc = c.get_bucket_lifecycle(oss.GetBucketLifecycleRequest(bucket=BUCKET))
    assert lc.lifecycle_configuration.rules[0].expiration.days == 7
    c.delete_bucket_lifecycle(oss.DeleteBucketLifecycleRequest(bucket=BUCKET))
    assert failure(c.get_bucket_lifecycle, oss.GetBucketLifecycleRequest(bucket=BUCKET)).code == (
        "NoSuchLifecycle"
    )

    c.put_bucket_public_access_block(
        oss.PutBucketPublicAccessBlockRequest(
            bucket=BUCKET,
            public_access_block_configuration=oss.PublicAccessBlockConfiguration(
                block_public_access=True
            ),
        )
    )
    pab = c.get_bucket_public_access_block(oss.GetBucketPublicAccessBlockRequest(bucket=BUCKET))
    assert pab.public_access_block_configuration.block_public_access is True
    # while public access is blocked a public ACL is refused
    err = failure(c.put_bucket_acl, oss.PutBucketAclRequest(bucket=BUCKET, acl="public-read-write"))
    assert (err.status_code, err.code) == (403, "AccessDenied")

    wid = c.initiate_bucket_worm(
        oss.InitiateBucketWormRequest(
            bucket=BUCKET,
            initiate_worm_configuration=oss.InitiateWormConfiguration(retention_period_in_days=1),
        )
    ).worm_id
    worm = c.get_bucket_worm(oss.GetBucketWormRequest(bucket=BUCKET)).worm_configuration
    assert (worm.worm_id, worm.state, worm.retention_period_in_days) == (wid, "InProgress", 1)
    c.complete_bucket_worm(oss.CompleteBucketWormRequest(bucket=BUCKET, worm_id=wid))
    c.extend_bucket_worm(
        oss.ExtendBucketWormRequest(
            bucket=BUCKET,
            worm_id=wid,
            extend_worm_configuration=oss.ExtendWormConfiguration(retention_period_in_days=30),
        )
    )
    worm = c.get_bucket_worm(oss.GetBucketWormRequest(bucket=BUCKET)).worm_configuration
    assert (worm.state, worm.retention_period_in_days) == ("Locked", 30)
    assert emulator.calls["ExtendBucketWorm"] == 1 and emulator.calls["PutBucket"] == 1


def test_versioning_round_trip_and_bucket_errors(emulator: Emulator) -> None:
    c = sdk(emulator, ADMIN)
    err = failure(c.get_bucket_info, oss.GetBucketInfoRequest(bucket="permgen-missing"))
    assert (err.status_code, err.code, err.ec) == (404, "NoSuchBucket", "0015-00000101")
    assert err.request_id  # OSS's error body shape, read by the SDK
    c.put_bucket(oss.PutBucketRequest(bucket=BUCKET))
    err = failure(c.put_bucket, oss.PutBucketRequest(bucket=BUCKET))
    assert (err.status_code, err.code) == (409, "BucketAlreadyExists")
    assert (
        c.get_bucket_versioning(oss.GetBucketVersioningRequest(bucket=BUCKET)).version_status
        is None
    )
    for status in ("Enabled", "Suspended"):
        c.put_bucket_versioning(
            oss.PutBucketVersioningRequest(
                bucket=BUCKET,
                versioning_configuration=oss.VersioningConfiguration(status=status),
            )
        )
        got = c.get_bucket_versioning(oss.GetBucketVersioningRequest(bucket=BUCKET))
        assert got.version_status == status
    err = failure(
        c.put_bucket_versioning,
        oss.PutBucketVersioningRequest(
            bucket=BUCKET, versioning_configuration=oss.VersioningConfiguration(status="Off")
        ),
    )
    assert err.code == "InvalidArgument"


def test_a_bucket_name_the_sdk_does_not_check_is_refused_by_the_emulator(
    emulator: Emulator,
) -> None:
    status, body = raw_v1(emulator, "PUT", "/Bad_Name", ADMIN)
    assert status == 400 and b"<Code>InvalidBucketName</Code>" in body


def test_adapter_reads_absent_settings_as_none_and_round_trips(emulator: Emulator) -> None:
    c = adapter(emulator)
    c.put_bucket(BUCKET)
    assert c.list_buckets() == [BUCKET]
    assert c.get_bucket_policy(BUCKET) is None and c.get_worm(BUCKET) is None
    assert c.get_replication(BUCKET) == [] and c.get_lifecycle(BUCKET) == []
    assert c.get_overwrite_config(BUCKET) == [] and c.get_public_access_block(BUCKET) is False
    c.put_overwrite_config(BUCKET, [OverwriteRule("a/", ".txt", ("2001",))])
    assert [(r.prefix, r.suffix, r.principals) for r in c.get_overwrite_config(BUCKET)] == [
        ("a/", ".txt", ("2001",))
    ]
    c.put_replication(BUCKET, ReplicationRule("permgen-copy", "oss-cn-beijing", prefixes=("a/",)))
    [rule] = c.get_replication(BUCKET)
    assert (rule.destination_bucket, rule.prefixes) == ("permgen-copy", ("a/",))
    c.delete_replication(BUCKET, rule.rule_id)
    assert c.get_replication(BUCKET) == []
    c.put_lifecycle(BUCKET, [LifecycleRule("r1", "tmp/", True, 3, 5)])
    assert c.get_lifecycle(BUCKET) == [LifecycleRule("r1", "tmp/", True, 3, 5)]
    c.put_bucket_versioning(BUCKET, "Enabled")
    assert c.get_bucket_info(BUCKET).versioning == "Enabled"
    with pytest.raises(CloudError) as info:
        c.get_bucket_info("permgen-missing")
    assert (info.value.code, info.value.http_status) == ("NoSuchBucket", 404)


# ---------------------------------------------------------------------- signatures


@pytest.mark.parametrize("version", ["v4", "v1"])
def test_a_wrong_secret_is_signature_does_not_match_and_no_secret_is_shown(
    emulator: Emulator, version: str
) -> None:
    wrong = (ALICE[0], "not-" + ALICE[1])
    err = failure(sdk(emulator, wrong, version).list_buckets, oss.ListBucketsRequest())
    assert (err.status_code, err.code) == (403, "SignatureDoesNotMatch")
    assert ALICE[1] not in err.message and wrong[1] not in err.message

    c = SdkOssClient(
        AccessKey(wrong[0], Secret(wrong[1])),
        ClientConfig(endpoint=emulator.url),
        sleep=lambda s: None,
        signature_version=version,
    )
    with pytest.raises(CloudError) as info:
        c.list_buckets()
    assert info.value.code == "SignatureDoesNotMatch"
    assert wrong[1] not in str(info.value) and ALICE[1] not in str(info.value)
    assert "StringToSign" not in str(info.value)


def test_an_unknown_key_is_invalid_access_key_id(emulator: Emulator) -> None:
    err = failure(sdk(emulator, ("LTAI-nobody", "x")).list_buckets, oss.ListBucketsRequest())
    assert (err.status_code, err.code) == (403, "InvalidAccessKeyId")


def raw_v1(
    emu: Emulator, method: str, path: str, key: tuple[str, str], date: str | None = None
) -> tuple[int, bytes]:
    """A V1-signed request written from the documented algorithm (independent of any SDK):
    HMAC-SHA1 over METHOD, Content-MD5, Content-Type, Date, x-oss-* headers and resource."""
    date = date or formatdate(usegmt=True)
    bucket_path, _, query = path.partition("?")
    resource = (
        bucket_path if bucket_path.count("/") > 1 or bucket_path == "/" else bucket_path + "/"
    )
    if query:
        resource += "?" + query
    to_sign = f"{method}\n\napplication/octet-stream\n{date}\n{resource}"
    sig = base64.b64encode(hmac.new(key[1].encode(), to_sign.encode(), hashlib.sha1).digest())
    req = urllib.request.Request(
        emu.url + path,
        method=method,
        headers={
            "Date": date,
            "Content-Type": "application/octet-stream",
            "Authorization": f"OSS {key[0]}:{sig.decode()}",
        },
        data=b"" if method in ("PUT", "POST") else None,
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=5) as resp:
            return resp.status, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_v1_signature_from_the_documented_algorithm(emulator: Emulator) -> None:
    assert raw_v1(emulator, "PUT", f"/{BUCKET}", ADMIN)[0] == 200
    status, body = raw_v1(emulator, "GET", f"/{BUCKET}?acl", ADMIN)
    assert status == 200 and b"<Grant>private</Grant>" in body
    status, body = raw_v1(emulator, "GET", f"/{BUCKET}?acl", (ADMIN_KEY_ID, "wrong"))
    assert status == 403 and b"<Code>SignatureDoesNotMatch</Code>" in body
    assert ADMIN_KEY_SECRET.encode() not in body
    stale = formatdate(time.time() - 3600, usegmt=True)
    status, body = raw_v1(emulator, "GET", f"/{BUCKET}?acl", ADMIN, stale)
    assert status == 403 and b"<Code>RequestTimeTooSkewed</Code>" in body


# ---------------------------------------------------------------------- authorization


def _bucket_with_policy(emu: Emulator, *statements: dict[str, Any]) -> None:
    admin = sdk(emu, ADMIN)
    if BUCKET not in emu.oss.buckets:
        admin.put_bucket(oss.PutBucketRequest(bucket=BUCKET))
    if statements:
        admin.put_bucket_policy(
            oss.PutBucketPolicyRequest(bucket=BUCKET, body=json.dumps(_policy(*statements)))
        )


def _info(emu: Emulator, key: tuple[str, ...] | None) -> int:
    """200, or the status of the error, for GetBucketInfo as ``key`` (None: anonymous)."""
    try:
        sdk(emu, key).get_bucket_info(oss.GetBucketInfoRequest(bucket=BUCKET))
    except oss.exceptions.OperationError as exc:
        err = exc.unwrap()
        assert err.code == "AccessDenied", err.code
        return int(err.status_code)
    return 200


def _uid(emu: Emulator, user: str) -> str:
    return emu.backend.users[user]


def test_ram_policy_allows_and_denies_a_ram_user(emulator: Emulator) -> None:
    _bucket_with_policy(emulator)
    assert _info(emulator, ALICE) == 200  # bucket-reader
    assert _info(emulator, BOB) == 403  # nothing attached
    err = failure(
        sdk(emulator, ALICE).put_bucket_policy,
        oss.PutBucketPolicyRequest(bucket=BUCKET, body=json.dumps(_policy())),
    )
    assert (err.status_code, err.code) == (403, "AccessDenied")
    assert failure(sdk(emulator, BOB).list_buckets, oss.ListBucketsRequest()).code == "AccessDenied"


def test_a_bucket_policy_grants_another_user(emulator: Emulator) -> None:
    grant = {
        "Effect": "Allow",
        "Principal": [_uid(emulator, "bob")],
        "Action": ["oss:GetBucketInfo"],
        "Resource": [f"acs:oss:*:{ACCOUNT}:{BUCKET}"],
    }
    _bucket_with_policy(emulator, grant)
    assert _info(emulator, BOB) == 200
    # the grant is for GetBucketInfo only
    assert failure(sdk(emulator, BOB).get_bucket_acl, oss.GetBucketAclRequest(bucket=BUCKET)).code
    # and only for bob
    emulator.backend.DetachPolicyFromUser(
        {"UserName": "alice", "PolicyName": "bucket-reader", "PolicyType": "Custom"},
        emulator.backend.keys[ADMIN_KEY_ID],
    )
    assert _info(emulator, ALICE) == 403


def test_an_explicit_deny_in_either_policy_wins(emulator: Emulator) -> None:
    arn = f"acs:oss:*:{ACCOUNT}:{BUCKET}"
    deny_alice = {
        "Effect": "Deny",
        "Principal": [_uid(emulator, "alice")],
        "Action": "oss:*",
        "Resource": arn,
    }
    _bucket_with_policy(emulator, deny_alice)
    assert _info(emulator, ALICE) == 403  # her RAM policy allows; the bucket policy denies

    # a RAM Deny beats a bucket-policy Allow
    be = emulator.backend
    root = be.keys[ADMIN_KEY_ID]
    be.CreatePolicy(
        {
            "PolicyName": "no-bucket-info",
            "PolicyDocument": json.dumps(
                _policy({"Effect": "Deny", "Action": "oss:GetBucketInfo", "Resource": "*"})
            ),
        },
        root,
    )
    be.AttachPolicyToUser(
        {"UserName": "bob", "PolicyName": "no-bucket-info", "PolicyType": "Custom"}, root
    )
    allow_bob = {
        "Effect": "Allow",
        "Principal": [_uid(emulator, "bob")],
        "Action": "oss:*",
        "Resource": arn,
    }
    _bucket_with_policy(emulator, allow_bob)
    assert _info(emulator, BOB) == 403
    acl = sdk(emulator, BOB).get_bucket_acl(oss.GetBucketAclRequest(bucket=BUCKET)).acl
    assert acl == "private"  # the bucket policy's Allow still holds for what RAM does not deny


def test_anonymous_requests_and_principal_star(emulator: Emulator) -> None:
    arn = f"acs:oss:*:{ACCOUNT}:{BUCKET}"
    _bucket_with_policy(emulator)
    assert _info(emulator, None) == 403  # no identity, no grant
    public = {"Effect": "Allow", "Principal": ["*"], "Action": "oss:GetBucketInfo", "Resource": arn}
    _bucket_with_policy(emulator, public)
    assert _info(emulator, None) == 200 and _info(emulator, BOB) == 200
    # an empty Principal list means everyone
    _bucket_with_policy(emulator, {**public, "Principal": []})
    assert _info(emulator, None) == 200


def test_principal_star_without_a_condition_spares_the_owner_with_one_binds_it(
    emulator: Emulator,
) -> None:
    arn = f"acs:oss:*:{ACCOUNT}:{BUCKET}"
    deny_all = {
        "Effect": "Deny",
        "Principal": ["*"],
        "Action": "oss:GetBucketInfo",
        "Resource": arn,
    }
    _bucket_with_policy(emulator, deny_all)
    assert _info(emulator, ADMIN) == 200  # the owner is not bound by "*" without a condition
    assert _info(emulator, ALICE) == 403  # a RAM user of the owning account is
    with_condition = {**deny_all, "Condition": {"Bool": {"acs:SecureTransport": ["false"]}}}
    _bucket_with_policy(emulator, with_condition)
    assert _info(emulator, ADMIN) == 403  # the emulator speaks HTTP: the Deny binds the owner
    # the Deny names only GetBucketInfo: the owner can still replace the policy, and a
    # condition that does not hold leaves the owner alone
    other = {**deny_all, "Condition": {"Bool": {"acs:SecureTransport": ["true"]}}}
    _bucket_with_policy(emulator, other)
    assert _info(emulator, ADMIN) == 200


def test_a_bucket_policy_with_source_ip_must_name_source_vpc(emulator: Emulator) -> None:
    _bucket_with_policy(emulator)
    arn = f"acs:oss:*:{ACCOUNT}:{BUCKET}"
    ip_only = {
        "Effect": "Allow",
        "Principal": ["*"],
        "Action": "oss:GetBucketInfo",
        "Resource": arn,
        "Condition": {"IpAddress": {"acs:SourceIp": ["192.0.2.0/24"]}},
    }
    admin = sdk(emulator, ADMIN)
    err = failure(
        admin.put_bucket_policy,
        oss.PutBucketPolicyRequest(bucket=BUCKET, body=json.dumps(_policy(ip_only))),
    )
    assert (err.status_code, err.code) == (400, "InvalidPolicyDocument")
    assert "acs:SourceVpc" in err.message
    both = {
        **ip_only,
        "Condition": {**ip_only["Condition"], "StringLike": {"acs:SourceVpc": ["vpc-*"]}},
    }
    admin.put_bucket_policy(
        oss.PutBucketPolicyRequest(bucket=BUCKET, body=json.dumps(_policy(both)))
    )
    bad = failure(
        admin.put_bucket_policy,
        oss.PutBucketPolicyRequest(
            bucket=BUCKET, body='{"Version":"1","Statement":[{"Effect":"Allow"'
        ),
    )
    assert bad.code == "InvalidPolicyDocument"


# ---------------------------------------------------------------------- protection facts


def _worm(c: Any, days: int = 1) -> str:
    return str(
        c.initiate_bucket_worm(
            oss.InitiateBucketWormRequest(
                bucket=BUCKET,
                initiate_worm_configuration=oss.InitiateWormConfiguration(
                    retention_period_in_days=days
                ),
            )
        ).worm_id
    )


def _versioning(c: Any, status: str) -> None:
    c.put_bucket_versioning(
        oss.PutBucketVersioningRequest(
            bucket=BUCKET, versioning_configuration=oss.VersioningConfiguration(status=status)
        )
    )


def test_versioning_and_a_retention_policy_exclude_each_other(emulator: Emulator) -> None:
    c = sdk(emulator, ADMIN)
    c.put_bucket(oss.PutBucketRequest(bucket=BUCKET))
    _worm(c)
    err = failure(_versioning, c, "Enabled")
    assert (err.code, err.ec) == ("InvalidArgument", "0012-00000006")
    c.abort_bucket_worm(oss.AbortBucketWormRequest(bucket=BUCKET))
    _versioning(c, "Enabled")
    err = failure(_worm, c)
    assert (err.code, err.ec) == ("InvalidArgument", "0027-00000003")
    _versioning(c, "Suspended")
    assert failure(_worm, c).ec == "0027-00000003"  # suspended is still versioned


def test_an_unlocked_retention_policy_lapses_after_24_hours(
    emulator: Emulator, clock: Clock
) -> None:
    c = sdk(emulator, ADMIN)
    c.put_bucket(oss.PutBucketRequest(bucket=BUCKET))
    wid = _worm(c)
    clock.now += WORM_UNLOCKED_LIFETIME - 1
    assert (
        c.get_bucket_worm(oss.GetBucketWormRequest(bucket=BUCKET)).worm_configuration.worm_id == wid
    )
    clock.now += 1
    err = failure(c.get_bucket_worm, oss.GetBucketWormRequest(bucket=BUCKET))
    assert (err.status_code, err.code) == (404, "NoSuchWORMConfiguration")
    err = failure(c.complete_bucket_worm, oss.CompleteBucketWormRequest(bucket=BUCKET, worm_id=wid))
    assert err.code == "NoSuchWORMConfiguration"  # too late to lock it
    _versioning(c, "Enabled")  # nothing stands in the way any more


def test_an_unlocked_policy_can_be_aborted_a_locked_one_only_extended(emulator: Emulator) -> None:
    c = sdk(emulator, ADMIN)
    c.put_bucket(oss.PutBucketRequest(bucket=BUCKET))
    _worm(c)
    c.abort_bucket_worm(oss.AbortBucketWormRequest(bucket=BUCKET))
    assert failure(c.get_bucket_worm, oss.GetBucketWormRequest(bucket=BUCKET)).code == (
        "NoSuchWORMConfiguration"
    )
    wid = _worm(c, 10)

    def extend(days: int) -> None:
        c.extend_bucket_worm(
            oss.ExtendBucketWormRequest(
                bucket=BUCKET,
                worm_id=wid,
                extend_worm_configuration=oss.ExtendWormConfiguration(
                    retention_period_in_days=days
                ),
            )
        )

    assert failure(extend, 20).code == "InvalidWORMState"  # not locked yet
    c.complete_bucket_worm(oss.CompleteBucketWormRequest(bucket=BUCKET, worm_id=wid))
    err = failure(c.abort_bucket_worm, oss.AbortBucketWormRequest(bucket=BUCKET))
    assert (err.status_code, err.code) == (409, "WORMConfigurationLocked")
    assert failure(extend, 5).code == "InvalidArgument"  # shortening is refused
    extend(20)
    worm = c.get_bucket_worm(oss.GetBucketWormRequest(bucket=BUCKET)).worm_configuration
    assert (worm.state, worm.retention_period_in_days) == ("Locked", 20)
    err = failure(c.delete_bucket, oss.DeleteBucketRequest(bucket=BUCKET))
    assert err.code == "AccessDenied"  # a locked policy keeps its bucket


def test_overwrite_protection_does_not_apply_once_versioning_was_set(emulator: Emulator) -> None:
    c = adapter(emulator)
    c.put_bucket(BUCKET)
    c.put_overwrite_config(BUCKET, [OverwriteRule(prefix="")])
    state = emulator.oss.buckets[BUCKET]
    assert state.overwrite_protection_in_force
    c.put_bucket_versioning(BUCKET, "Enabled")
    assert not state.overwrite_protection_in_force
    c.put_bucket_versioning(BUCKET, "Suspended")
    assert not state.overwrite_protection_in_force
    assert c.get_overwrite_config(BUCKET)  # still stored, just not in force


# ---------------------------------------------------------------------- retries


def test_reads_are_retried_writes_are_not(emulator: Emulator) -> None:
    c = adapter(emulator)
    c.put_bucket(BUCKET)
    emulator.inject("GetBucketAcl", "ServiceUnavailable", 503, times=2)
    assert c.get_bucket_acl(BUCKET) == "private"  # third attempt
    emulator.inject("PutBucketAcl", "ServiceUnavailable", 503, times=1)
    with pytest.raises(CloudError) as info:
        c.put_bucket_acl(BUCKET, "public-read")
    assert (info.value.code, info.value.http_status) == ("ServiceUnavailable", 503)
    assert c.get_bucket_acl(BUCKET) == "private"  # not applied, not retried
    assert emulator.calls.get("PutBucketAcl", 0) == 0


def test_a_dropped_read_is_retried_a_dropped_write_is_an_endpoint_error(emulator: Emulator) -> None:
    from permgen.errors import EndpointError

    c = adapter(emulator)
    c.put_bucket(BUCKET)
    emulator.inject("GetBucketAcl", drop=True)
    assert c.get_bucket_acl(BUCKET) == "private"
    emulator.inject("PutBucketAcl", drop=True)
    with pytest.raises(EndpointError):
        c.put_bucket_acl(BUCKET, "public-read")


def test_a_role_session_is_named_by_its_sts_arn(emulator: Emulator) -> None:
    """An STS key signs with its token (x-oss-security-token); a bucket policy names the
    session as arn:sts::<uid>:assumed-role/<role>/<session>."""
    be = emulator.backend
    root = be.keys[ADMIN_KEY_ID]
    be.CreateRole(
        {
            "RoleName": "ops",
            "AssumeRolePolicyDocument": json.dumps(
                {
                    "Version": "1",
                    "Statement": [
                        {
                            "Effect": "Allow",
                            "Action": "sts:AssumeRole",
                            "Principal": {"RAM": [f"acs:ram::{ACCOUNT}:root"]},
                        }
                    ],
                }
            ),
        },
        root,
    )
    be.AttachPolicyToUser(
        {"UserName": "bob", "PolicyName": "AliyunSTSAssumeRoleAccess", "PolicyType": "System"},
        root,
    )
    creds = be.AssumeRole(
        {"RoleArn": f"acs:ram::{ACCOUNT}:role/ops", "RoleSessionName": "night-shift"},
        be.keys[BOB[0]],
    )["Credentials"]
    key = (creds["AccessKeyId"], creds["AccessKeySecret"], creds["SecurityToken"])
    arn = f"acs:oss:*:{ACCOUNT}:{BUCKET}"
    grant = {"Effect": "Allow", "Action": "oss:GetBucketInfo", "Resource": arn}
    _bucket_with_policy(
        emulator, {**grant, "Principal": [f"arn:sts::{ACCOUNT}:assumed-role/ops/day-shift"]}
    )
    assert _info(emulator, key) == 403  # another session
    _bucket_with_policy(
        emulator, {**grant, "Principal": [f"arn:sts::{ACCOUNT}:assumed-role/ops/*"]}
    )
    assert _info(emulator, key) == 200
    err = failure(
        sdk(emulator, (key[0], key[1], "CAIS-wrong")).list_buckets, oss.ListBucketsRequest()
    )
    assert err.code == "InvalidSecurityToken"
    emulator.backend.clock.now += 3601  # type: ignore[attr-defined]
    err = failure(sdk(emulator, key).get_bucket_info, oss.GetBucketInfoRequest(bucket=BUCKET))
    assert err.code == "SecurityTokenExpired"


def test_hostile_xml_bodies_are_malformed_xml_not_a_crash(emulator: Emulator) -> None:
    import http.client

    from permgen.emulator.oss import MAX_BODY

    # anyone may write these settings, so unsigned requests reach the XML reader
    _bucket_with_policy(
        emulator,
        {
            "Effect": "Allow",
            "Principal": ["*"],
            "Action": ["oss:PutBucketLifecycle", "oss:PutBucketReplication"],
            "Resource": f"acs:oss:*:{ACCOUNT}:{BUCKET}",
        },
    )
    host, port = emulator.url.removeprefix("http://").split(":")
    bodies = {
        "deep": b"<ReplicationConfiguration>"
        + b"<a>" * 9000
        + b"</a>" * 9000
        + b"</ReplicationConfiguration>",
        "entities": b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaa">]><LifecycleConfiguration>&a;</LifecycleConfiguration>',
        "broken": b"<LifecycleConfiguration><Rule>",
    }
    for name, body in bodies.items():
        sub = "replication&comp=add" if name == "deep" else "lifecycle"
        conn = http.client.HTTPConnection(host, int(port), timeout=5)
        conn.request("POST" if name == "deep" else "PUT", f"/{BUCKET}?{sub}", body=body)
        resp = conn.getresponse()
        assert (resp.status, b"<Code>MalformedXML</Code>" in resp.read()) == (400, True), name
        conn.close()
    c = adapter(emulator)  # nothing was stored
    assert c.get_lifecycle(BUCKET) == []
    conn = http.client.HTTPConnection(host, int(port), timeout=5)
    conn.request("PUT", f"/{BUCKET}?lifecycle", body=b"x" * (MAX_BODY + 1))
    resp = conn.getresponse()
    assert resp.status == 413 and b"EntityTooLarge" in resp.read()
    conn.close()
