"""From a logged request to what RAM decided on: the action, the resource ARN, the
condition context, and the principal.

Exact where the log says it: the ``Operation`` an OSS log gives names the API, and the
API's RAM action is fixed by the OSS authorization map. Where the operation is absent or
unknown, the action is derived from the HTTP method, whether the path names an object, and
the query's subresource (``?acl``, ``?uploads``, ``?delete`` ...). Requests permgen cannot
map are counted, never guessed.

A batch delete (``POST /?delete``, operation ``DeleteObjects``) carries its keys in the
body, which no access log shows: it is evidence that ``oss:DeleteObject`` was used on the
bucket, not for any prefix (:attr:`Use.keys_unknown`).

Principals: an AccessKey ID is mapped to ``user:NAME`` or ``role:NAME`` through the key map
(``--keys``) and, for STS keys (``STS.``), through the AssumeRole events of ActionTrail
files (their response names the key and the request names the role): both exact. An
ActionTrail event names its principal itself. A request without a key is ``anonymous``.
Anything else is ``unknown:KEYID`` (reported, attributed to no role).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

from permgen.policy import catalog
from permgen.usage.logs import Entry

ANONYMOUS = "anonymous"

#: OSS log operation name -> RAM actions; level "object" or "bucket" or "service".
#: Names that are themselves a catalog action (``GetObject`` -> ``oss:GetObject``) need no
#: entry.
OPERATIONS: dict[str, tuple[tuple[str, ...], str]] = {
    "HeadObject": (("oss:GetObject",), "object"),
    "GetObjectMeta": (("oss:GetObject",), "object"),
    "SelectObject": (("oss:GetObject",), "object"),
    "PostObject": (("oss:PutObject",), "object"),
    "AppendObject": (("oss:PutObject",), "object"),
    "CopyObject": (("oss:PutObject",), "object"),  # the source's GetObject is not logged
    "PutSymlink": (("oss:PutObject",), "object"),
    "GetSymlink": (("oss:GetObject",), "object"),
    "InitiateMultipartUpload": (("oss:PutObject",), "object"),
    "UploadPart": (("oss:PutObject",), "object"),
    "UploadPartCopy": (("oss:PutObject",), "object"),
    "CompleteMultipartUpload": (("oss:PutObject",), "object"),
    "DeleteObjects": (("oss:DeleteObject",), "batch"),
    "DeleteMultipleObjects": (("oss:DeleteObject",), "batch"),
    "GetBucket": (("oss:ListObjects",), "bucket"),
    "GetBucketV2": (("oss:ListObjects",), "bucket"),
    "ListObjectsV2": (("oss:ListObjects",), "bucket"),
    "GetBucketVersions": (("oss:ListObjectVersions",), "bucket"),
    "GetService": (("oss:ListBuckets",), "service"),
    "GetBucketLocation": (("oss:GetBucketLocation",), "bucket"),
}

#: (method, subresource) of a bucket-level request -> action
_BUCKET_SUB: dict[tuple[str, str], str] = {
    ("GET", ""): "oss:ListObjects",
    ("GET", "versions"): "oss:ListObjectVersions",
    ("GET", "uploads"): "oss:ListMultipartUploads",
    ("GET", "acl"): "oss:GetBucketAcl",
    ("PUT", "acl"): "oss:PutBucketAcl",
    ("GET", "policy"): "oss:GetBucketPolicy",
    ("PUT", "policy"): "oss:PutBucketPolicy",
    ("DELETE", "policy"): "oss:DeleteBucketPolicy",
    ("GET", "versioning"): "oss:GetBucketVersioning",
    ("PUT", "versioning"): "oss:PutBucketVersioning",
    ("GET", "lifecycle"): "oss:GetBucketLifecycle",
    ("PUT", "lifecycle"): "oss:PutBucketLifecycle",
    ("DELETE", "lifecycle"): "oss:DeleteBucketLifecycle",
    ("GET", "bucketInfo"): "oss:GetBucketInfo",
    ("GET", "location"): "oss:GetBucketLocation",
    ("GET", "logging"): "oss:GetBucketLogging",
    ("GET", "cors"): "oss:GetBucketCors",
    ("GET", "encryption"): "oss:GetBucketEncryption",
    ("GET", "tagging"): "oss:GetBucketTagging",
    ("GET", "referer"): "oss:GetBucketReferer",
    ("GET", "website"): "oss:GetBucketWebsite",
    ("GET", "stat"): "oss:GetBucketStat",
    ("PUT", ""): "oss:PutBucket",
    ("DELETE", ""): "oss:DeleteBucket",
}
#: (method, subresource) of an object-level request -> action
_OBJECT_SUB: dict[tuple[str, str], str] = {
    ("GET", ""): "oss:GetObject",
    ("HEAD", ""): "oss:GetObject",
    ("PUT", ""): "oss:PutObject",
    ("POST", "append"): "oss:PutObject",
    ("POST", "uploads"): "oss:PutObject",
    ("PUT", "uploadId"): "oss:PutObject",
    ("POST", "uploadId"): "oss:PutObject",
    ("GET", "uploadId"): "oss:ListParts",
    ("DELETE", "uploadId"): "oss:AbortMultipartUpload",
    ("DELETE", ""): "oss:DeleteObject",
    ("GET", "acl"): "oss:GetObjectAcl",
    ("PUT", "acl"): "oss:PutObjectAcl",
    ("GET", "tagging"): "oss:GetObjectTagging",
    ("PUT", "tagging"): "oss:PutObjectTagging",
    ("DELETE", "tagging"): "oss:DeleteObjectTagging",
    ("POST", "restore"): "oss:RestoreObject",
    ("GET", "objectMeta"): "oss:GetObject",
    ("GET", "symlink"): "oss:GetObject",
    ("PUT", "symlink"): "oss:PutObject",
    ("POST", "select"): "oss:GetObject",
}
_SUBRESOURCES = (
    "versions uploads acl policy versioning lifecycle bucketInfo location logging cors "
    "encryption tagging referer website stat append uploadId objectMeta symlink restore "
    "select delete"
).split()
#: version-specific forms of object actions (a request with ?versionId=)
_VERSIONED = {
    "oss:GetObject": "oss:GetObjectVersion",
    "oss:DeleteObject": "oss:DeleteObjectVersion",
    "oss:GetObjectAcl": "oss:GetObjectVersionAcl",
    "oss:PutObjectAcl": "oss:PutObjectVersionAcl",
    "oss:GetObjectTagging": "oss:GetObjectVersionTagging",
    "oss:PutObjectTagging": "oss:PutObjectVersionTagging",
    "oss:DeleteObjectTagging": "oss:DeleteObjectVersionTagging",
    "oss:RestoreObject": "oss:RestoreObjectVersion",
}


@dataclass(frozen=True, slots=True)
class Use:
    """One used (action, resource, context), as RAM evaluated it."""

    action: str
    resource: str  # "" when the log cannot say (batch delete keys, RAM calls)
    context: tuple[tuple[str, str], ...] = ()  # request-dependent keys: oss:Prefix ...
    bucket: str = ""
    key: str = ""  # object key, or the listing prefix for ListObjects
    keys_unknown: bool = False  # a batch delete: evidence for the action on the bucket only


def oss_arn(account: str, path: str) -> str:
    return f"acs:oss:*:{account}:{path}"


def _query(query: str) -> dict[str, str]:
    if not query:
        return {}
    return {k: v for k, v in parse_qsl(query, keep_blank_values=True)}


def _subresource(q: Mapping[str, str]) -> str:
    if "uploadId" in q:
        return "uploadId"
    for name in _SUBRESOURCES:
        if name in q:
            return name
    return ""


def map_entry(entry: Entry, account: str) -> tuple[Use, ...]:
    """The RAM requests one logged request was decided as; () when it cannot be mapped.

    ``account`` is used in ARNs when the log does not give the bucket owner."""
    owner = entry.owner or account
    if entry.source == "actiontrail":
        return _map_event(entry, owner)
    q = _query(entry.query)
    op = entry.operation
    known = OPERATIONS.get(op)
    actions: tuple[str, ...]
    level: str
    if known is not None:
        actions, level = known
    elif op and catalog.lookup(f"oss:{op}") is not None:
        info = catalog.lookup(f"oss:{op}")
        assert info is not None
        actions, level = (info.name,), ("object" if entry.key else info.level)
    else:
        sub = _subresource(q)
        if not entry.bucket:
            if entry.method == "GET":
                actions, level = ("oss:ListBuckets",), "service"
            else:
                return ()
        elif entry.method == "POST" and sub == "delete" and not entry.key:
            actions, level = ("oss:DeleteObject",), "batch"
        elif entry.key:
            found = _OBJECT_SUB.get((entry.method, sub))
            if found is None:
                return ()
            actions, level = (found,), "object"
        else:
            found = _BUCKET_SUB.get((entry.method, sub))
            if found is None:
                return ()
            actions, level = (found,), "bucket"
    if level == "object" and "versionId" in q:
        actions = tuple(_VERSIONED.get(a, a) for a in actions)
    out: list[Use] = []
    for action in actions:
        if level == "service":
            out.append(Use(action, oss_arn(owner, "*")))
        elif level == "batch":
            out.append(
                Use(action, "", bucket=entry.bucket, keys_unknown=True),
            )
        elif level == "object":
            if not entry.key:
                return ()
            out.append(
                Use(
                    action,
                    oss_arn(owner, f"{entry.bucket}/{entry.key}"),
                    (),
                    entry.bucket,
                    entry.key,
                )
            )
        else:
            context: tuple[tuple[str, str], ...] = ()
            prefix = ""
            if action in ("oss:ListObjects", "oss:ListObjectVersions"):
                prefix = q.get("prefix", "")
                pairs = [("oss:Prefix", prefix)]
                if "delimiter" in q:
                    pairs.append(("oss:Delimiter", q["delimiter"]))
                context = tuple(pairs)
            out.append(Use(action, oss_arn(owner, entry.bucket), context, entry.bucket, prefix))
    return tuple(out)


def _map_event(entry: Entry, owner: str) -> tuple[Use, ...]:
    name = entry.operation
    service = entry.service
    if service.startswith("oss"):
        info = catalog.lookup(f"oss:{name}")
        if info is None or not entry.bucket:
            return ()
        return (Use(info.name, oss_arn(owner, entry.bucket), (), entry.bucket),)
    if service in ("ram", "sts"):
        action = f"{service}:{name}"
        return (Use(action, ""),)
    return ()


class Principals:
    """AccessKey ID -> principal: the key map, then STS keys learnt from AssumeRole events."""

    def __init__(self, keys: Mapping[str, str] | None = None) -> None:
        self.keys: dict[str, str] = dict(keys or {})

    def learn(self, entry: Entry) -> None:
        """Record the key an AssumeRole event handed out, and its role (exact)."""
        if entry.source != "actiontrail" or entry.operation != "AssumeRole" or entry.status != 200:
            return
        creds = entry.response.get("Credentials")
        arn = entry.params.get("RoleArn")
        if not isinstance(creds, dict) or not isinstance(arn, str):
            return
        key = creds.get("AccessKeyId")
        name = arn.rsplit("/", 1)[-1] if ":role/" in arn else ""
        if isinstance(key, str) and key and name:
            self.keys.setdefault(key, f"role:{name}")

    def of(self, entry: Entry) -> str:
        if entry.principal:
            return entry.principal
        if not entry.access_key:
            return ANONYMOUS if not entry.requester else f"unknown:{entry.requester}"
        return self.keys.get(entry.access_key) or f"unknown:{entry.access_key}"
