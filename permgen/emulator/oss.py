"""The emulator's OSS control plane: buckets and their protection settings on OSS's REST/XML
protocol, path-style (``http://127.0.0.1:PORT/<bucket>?<sub-resource>``), as
alibabacloud-oss-v2 (and oss2) speak it.

Every request is authenticated (V4 or V1 signature, :mod:`permgen.emulator.oss_signing`; no
Authorization header is an anonymous request) and authorized by the caller's RAM policies
and the bucket's policy together (:mod:`permgen.semantics.bucket_policy`). Errors are OSS's
XML bodies (``<Error><Code>..</Code><Message>..</Message><RequestId>..</RequestId>
<HostId>..</HostId><EC>..</EC></Error>``) with OSS's codes and statuses.

One handler per API, registered with :func:`api`; each docstring says what it reproduces
(the coverage table in docs/emulator.md is generated from them). The order of checks is:
signature, the API, the bucket's existence, authorization, then the request's own checks
(docs/unconfirmed.md).
"""

from __future__ import annotations

import re
import threading
import time
import uuid
import xml.etree.ElementTree as ET
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import formatdate, parsedate_to_datetime
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, unquote, urlsplit
from xml.sax.saxutils import escape

from permgen.emulator.backend import Backend
from permgen.emulator.oss_signing import SignatureError, parse_authorization, verify
from permgen.emulator.state import ACCOUNT, EmulatorError, Key

if TYPE_CHECKING:
    from http.server import BaseHTTPRequestHandler

REGION = "cn-hangzhou"
#: Seconds a request's date may differ from the server's clock (RequestTimeTooSkewed).
MAX_SKEW = 15 * 60
#: The largest request body the OSS side reads, in bytes.
MAX_BODY = 64 * 1024
#: An unlocked (InProgress) retention policy lapses this many seconds after InitiateBucketWorm.
WORM_UNLOCKED_LIFETIME = 24 * 3600
#: Retention periods OSS accepts, in days (1 day to 70 years).
WORM_MIN_DAYS, WORM_MAX_DAYS = 1, 25550
#: The deepest request XML read (OSS's documents are at most 5 deep).
MAX_XML_DEPTH = 16
OVERWRITE_MAX_RULES = 100
OVERWRITE_MAX_AFFIX = 1023
_BUCKET_RE = re.compile(r"[a-z0-9][a-z0-9-]{1,61}[a-z0-9]")
_ACLS = ("private", "public-read", "public-read-write")


class OssError(EmulatorError):
    """An OSS error: code, HTTP status, message and, where documented, the EC."""

    def __init__(self, code: str, status: int, message: str, ec: str = "") -> None:
        super().__init__(code, status, message)
        self.ec = ec


def no_such_bucket(name: str) -> OssError:
    return OssError("NoSuchBucket", 404, "The specified bucket does not exist.", "0015-00000101")


@dataclass
class Worm:
    worm_id: str
    days: int
    created: float
    locked: bool = False


@dataclass
class Bucket:
    """One bucket's control-plane state."""

    name: str
    created: float
    acl: str = "private"
    storage_class: str = "Standard"
    redundancy: str = "LRS"
    versioning: str | None = None  # None: never set; "Enabled" | "Suspended"
    policy: str | None = None
    overwrite_rules: list[dict[str, Any]] = field(default_factory=list)
    overwrite_set: bool = False
    worm: Worm | None = None
    replication: list[str] = field(default_factory=list)  # <Rule> elements, as XML
    lifecycle: str | None = None
    block_public_access: bool = False

    def live_worm(self, now: float) -> Worm | None:
        """The retention policy in force: an unlocked one lapses 24 hours after it began."""
        w = self.worm
        if w is not None and not w.locked and now >= w.created + WORM_UNLOCKED_LIFETIME:
            self.worm = None
        return self.worm

    @property
    def overwrite_protection_in_force(self) -> bool:
        """Overwrite protection applies only while versioning was never enabled (O5)."""
        return self.overwrite_set and bool(self.overwrite_rules) and self.versioning is None


@dataclass
class Call:
    """One request, as the handlers see it."""

    method: str
    bucket: str | None
    key: str | None
    query: dict[str, str]
    headers: dict[str, str]  # lower-case names
    body: bytes
    caller: Key | None  # None: anonymous
    source_ip: str = "127.0.0.1"


@dataclass
class Reply:
    status: int = 200
    body: str = ""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/xml"


@dataclass(frozen=True)
class Api:
    name: str
    method: str
    sub: str | None  # the query key that selects it (None: the bucket or the service itself)
    bucket: bool  # addressed to a bucket
    action: str  # the RAM action it needs
    handler: Callable[[OssService, Call, Bucket | None], Reply]
    extra: tuple[tuple[str, str], ...] = ()  # other query values it needs (comp=add)


APIS: list[Api] = []


def api(
    method: str, sub: str | None, *, bucket: bool = True, action: str = "", extra: str = ""
) -> Callable[[Callable[..., Reply]], Callable[..., Reply]]:
    """Register a handler for ``method`` + the ``sub`` query key (and ``extra`` "k=v")."""

    def wrap(fn: Callable[..., Reply]) -> Callable[..., Reply]:
        name = fn.__name__
        pairs = tuple(tuple(p.split("=", 1)) for p in extra.split("&") if p)
        APIS.append(
            Api(name, method, sub, bucket, action or f"oss:{name}", fn, pairs)  # type: ignore[arg-type]
        )
        return fn

    return wrap


def _find_api(method: str, bucket: str | None, query: Mapping[str, str]) -> Api | None:
    # most specific first: a match on more query keys wins (ExtendBucketWorm over Complete)
    best: Api | None = None
    for a in APIS:
        if a.method != method or a.bucket != (bucket is not None):
            continue
        if a.sub is not None and a.sub not in query:
            continue
        if a.sub is None and any(k in query for k in _SUBS):
            continue
        if any(query.get(k) != v for k, v in a.extra):
            continue
        if best is None or (len(a.extra), a.sub is not None) > (
            len(best.extra),
            best.sub is not None,
        ):
            best = a
    return best


def _xml(root: str, inner: str) -> str:
    return f'<?xml version="1.0" encoding="UTF-8"?>\n<{root}>{inner}</{root}>'


def _el(name: str, value: object) -> str:
    return f"<{name}>{escape(str(value))}</{name}>"


def _iso(t: float) -> str:
    return datetime.fromtimestamp(t, tz=UTC).strftime("%Y-%m-%dT%H:%M:%S.000Z")


def _parse_xml(body: bytes, root: str) -> ET.Element:
    """The request body as XML with root ``root``, or MalformedXML. Entity declarations are
    refused outright (no expansion attacks), and so is nesting over MAX_XML_DEPTH."""
    if b"<!DOCTYPE" in body or b"<!ENTITY" in body:
        raise OssError("MalformedXML", 400, "The XML you provided was not well-formed.")
    try:
        element = ET.fromstring(body)
    except ET.ParseError:
        raise OssError("MalformedXML", 400, "The XML you provided was not well-formed.") from None
    depth, stack = 0, [(element, 1)]
    while stack:
        node, level = stack.pop()
        depth = max(depth, level)
        stack.extend((child, level + 1) for child in node)
    if depth > MAX_XML_DEPTH:
        raise OssError("MalformedXML", 400, f"The XML is nested over {MAX_XML_DEPTH} levels.")
    if element.tag != root:
        raise OssError(
            "MalformedXML", 400, f"The root element must be {root}, not {element.tag[:40]}."
        )
    return element


def _text(element: ET.Element, path: str) -> str | None:
    found = element.find(path)
    return None if found is None else (found.text or "").strip()


class OssService:
    """The OSS state of one emulator (buckets), beside the RAM backend it authorizes with."""

    def __init__(self, backend: Backend, lock: threading.Lock | None = None) -> None:
        self.backend = backend
        self.lock = lock or threading.Lock()
        self.buckets: dict[str, Bucket] = {}
        self.counter = 0

    def clock(self) -> float:
        return self.backend.clock()

    def _id(self) -> str:
        self.counter += 1
        return f"{self.counter:024X}"

    # ------------------------------------------------------------------ authentication

    def authenticate(
        self,
        method: str,
        bucket: str | None,
        key: str | None,
        raw_query: str,
        headers: dict[str, str],
        wall_clock: float,
    ) -> Key | None:
        """The caller's key (None for an anonymous request), or the OSS error."""
        header = headers.get("authorization", "")
        if not header:
            return None
        try:
            auth = parse_authorization(header)
        except SignatureError as exc:
            raise OssError(
                "InvalidArgument", 400, f"Authorization header is invalid: {exc}."
            ) from None
        caller = self.backend.keys.get(auth.access_key_id)
        if caller is None:
            raise OssError(
                "InvalidAccessKeyId",
                403,
                "The OSS Access Key Id you provided does not exist in our records.",
                "0002-00000902",
            )
        stamp = self._request_time(auth.version, headers, auth.scope_parts)
        if abs(stamp - wall_clock) > MAX_SKEW:
            raise OssError(
                "RequestTimeTooSkewed",
                403,
                "The difference between the request time and the current time is too large.",
                "0002-00000504",
            )
        ok, sts = verify(auth, caller.secret, method, bucket, key, raw_query, headers)
        if not ok:
            raise OssError(
                "SignatureDoesNotMatch",
                403,
                "The request signature we calculated does not match the signature you "
                f"provided. Check your key and signing method. StringToSign: {sts!r}",
                "0002-00000040" if auth.version == "v4" else "0002-00000010",
            )
        if caller.token is not None:
            token = headers.get("x-oss-security-token") or headers.get("security-token")
            if token != caller.token:
                raise OssError(
                    "InvalidSecurityToken", 403, "The security token you provided is invalid."
                )
            if caller.expires is not None and self.clock() >= caller.expires:
                raise OssError(
                    "SecurityTokenExpired", 403, "The security token you provided has expired."
                )
        return caller

    @staticmethod
    def _request_time(version: str, headers: Mapping[str, str], scope: list[str]) -> float:
        bad = OssError("AccessDenied", 403, "Invalid date format in the request.")
        if version == "v4":
            text = headers.get("x-oss-date", "")
            try:
                when = datetime.strptime(text, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            except ValueError:
                raise bad from None
            if scope[0] != text[:8] or scope[2] != "oss" or scope[3] != "aliyun_v4_request":
                raise OssError(
                    "SignatureDoesNotMatch", 403, "The credential scope of the request is invalid."
                )
            return when.timestamp()
        text = headers.get("x-oss-date") or headers.get("date", "")
        try:
            return parsedate_to_datetime(text).timestamp()
        except (TypeError, ValueError, IndexError):
            raise bad from None

    # ------------------------------------------------------------------ authorization

    def caller_identity(self, key: Key | None) -> Any:
        from permgen.semantics.bucket_policy import Caller

        if key is None:
            return Caller.anonymous_caller()
        kind, _, rest = key.principal.partition("/")
        if kind == "root":
            return Caller((ACCOUNT,), owner=True)
        if kind == "user":
            return Caller((self.backend.users.get(rest, rest),))
        role, _, session = rest.partition("/")
        return Caller((f"arn:sts::{ACCOUNT}:assumed-role/{role}/{session}",))

    def authorize(self, call: Call, action: str, bucket: Bucket | None, name: str | None) -> None:
        """AccessDenied unless the caller's RAM policies and the bucket policy allow it."""
        from permgen.semantics.bucket_policy import CombinedEvaluator, parse_bucket_policy
        from permgen.semantics.evaluate import Request

        key = call.caller
        caller = self.caller_identity(key)
        identity = self.backend.policies_in_force(key) if key is not None else None
        session = None
        if key is not None and key.session_policy:
            from permgen.policy.model import parse_policy

            session = [parse_policy(key.session_policy)]
        policy = (
            parse_bucket_policy(bucket.policy, source="bucket-policy")
            if bucket is not None and bucket.policy
            else None
        )
        resource = f"acs:oss:*:{ACCOUNT}:{name}" if name else f"acs:oss:*:{ACCOUNT}:*"
        context = {
            "acs:SourceIp": call.source_ip,
            "acs:SecureTransport": "false",
            "acs:CurrentTime": datetime.fromtimestamp(self.clock(), tz=UTC).strftime(
                "%Y-%m-%dT%H:%M:%SZ"
            ),
        }
        if "x-oss-acl" in call.headers:
            context["oss:x-oss-acl"] = call.headers["x-oss-acl"]
        decision = CombinedEvaluator(caller, identity, policy, session=session).decide(
            Request(action, resource, context)
        )
        if not decision.allowed:
            denied_by = (
                "bucket policy"
                if decision.bucket.kind == "explicit_deny"
                else "RAM policy"
                if decision.identity.kind == "explicit_deny"
                else "no policy allows it"
            )
            raise OssError(
                "AccessDenied",
                403,
                f"You have no right to access this bucket ({action}: {denied_by}).",
                "0003-00000001",
            )

    # ------------------------------------------------------------------ dispatch

    def handle(self, call: Call, raw_query: str) -> tuple[Api, Reply]:
        found = _find_api(call.method, call.bucket, call.query)
        if found is None or call.key is not None:
            raise OssError("NotImplemented", 501, "The emulator does not implement this API.")
        with self.lock:
            bucket = self.buckets.get(call.bucket) if call.bucket else None
            if found.bucket and bucket is None and found.name != "PutBucket":
                raise no_such_bucket(call.bucket or "")
            self.authorize(call, found.action, bucket, call.bucket)
            return found, found.handler(self, call, bucket)


_SUBS = frozenset(
    """acl bucketInfo versioning policy overwriteConfig worm wormId wormExtend replication
    lifecycle publicAccessBlock location stat tagging cors website referer logging encryption
    requestPayment inventory policyStatus""".split()
)


def _need(bucket: Bucket | None) -> Bucket:
    assert bucket is not None  # handle() checked it
    return bucket


# ---------------------------------------------------------------------- service and bucket


@api("GET", None, bucket=False, action="oss:ListBuckets")
def ListBuckets(svc: OssService, call: Call, _: Bucket | None) -> Reply:
    """All the account's buckets (ListAllMyBucketsResult with Owner and Buckets/Bucket);
    ``prefix`` filters by name. Needs oss:ListBuckets on ``acs:oss:*:<uid>:*``; anonymous
    callers are AccessDenied."""
    prefix = call.query.get("prefix", "")
    items = "".join(
        "<Bucket>"
        + _el("Name", b.name)
        + _el("CreationDate", _iso(b.created))
        + _el("Location", f"oss-{REGION}")
        + _el("Region", REGION)
        + _el("StorageClass", b.storage_class)
        + _el("ExtranetEndpoint", f"oss-{REGION}.aliyuncs.com")
        + _el("IntranetEndpoint", f"oss-{REGION}-internal.aliyuncs.com")
        + "</Bucket>"
        for n, b in sorted(svc.buckets.items())
        if n.startswith(prefix)
    )
    owner = "<Owner>" + _el("ID", ACCOUNT) + _el("DisplayName", ACCOUNT) + "</Owner>"
    return Reply(
        body=_xml(
            "ListAllMyBucketsResult",
            _el("Prefix", prefix) + owner + f"<Buckets>{items}</Buckets>",
        )
    )


@api("PUT", None)
def PutBucket(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Create a bucket. Reproduces: the name rules (3-63 of a-z, 0-9 and ``-``, starting
    and ending with a letter or digit: InvalidBucketName), BucketAlreadyExists (409), the
    ``x-oss-acl`` header (InvalidArgument for another value; the ``oss:x-oss-acl`` condition
    key), CreateBucketConfiguration's StorageClass and DataRedundancyType."""
    name = call.bucket or ""
    if not _BUCKET_RE.fullmatch(name):
        raise OssError(
            "InvalidBucketName", 400, "The specified bucket is not valid.", "0015-00000001"
        )
    if bucket is not None:
        raise OssError(
            "BucketAlreadyExists",
            409,
            "The requested bucket name is not available.",
            "0015-00000108",
        )
    acl = _acl(call)
    new = Bucket(name, svc.clock(), acl=acl or "private")
    if call.body.strip():
        conf = _parse_xml(call.body, "CreateBucketConfiguration")
        new.storage_class = _text(conf, "StorageClass") or "Standard"
        new.redundancy = _text(conf, "DataRedundancyType") or "LRS"
    svc.buckets[name] = new
    return Reply()


@api("DELETE", None)
def DeleteBucket(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Delete a bucket (the emulator holds no objects). Reproduces: a locked retention policy
    keeps its bucket (AccessDenied: UNCONFIRMED code); 204 No Content."""
    b = _need(bucket)
    worm = b.live_worm(svc.clock())
    if worm is not None and worm.locked:
        raise OssError("AccessDenied", 403, "The bucket has a locked retention policy.")
    del svc.buckets[b.name]
    return Reply(204)


@api("GET", "bucketInfo")
def GetBucketInfo(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """BucketInfo/Bucket: Name, Location, CreationDate, endpoints, Owner, the ACL grant,
    StorageClass, DataRedundancyType, Versioning (when ever set), BlockPublicAccess."""
    b = _need(bucket)
    inner = (
        _el("Name", b.name)
        + _el("AccessMonitor", "Disabled")
        + _el("Location", f"oss-{REGION}")
        + _el("CreationDate", _iso(b.created))
        + _el("ExtranetEndpoint", f"oss-{REGION}.aliyuncs.com")
        + _el("IntranetEndpoint", f"oss-{REGION}-internal.aliyuncs.com")
        + f"<AccessControlList>{_el('Grant', b.acl)}</AccessControlList>"
        + _el("DataRedundancyType", b.redundancy)
        + "<Owner>"
        + _el("ID", ACCOUNT)
        + _el("DisplayName", ACCOUNT)
        + "</Owner>"
        + _el("StorageClass", b.storage_class)
        + (_el("Versioning", b.versioning) if b.versioning else "")
        + _el("BlockPublicAccess", "true" if b.block_public_access else "false")
    )
    return Reply(body=_xml("BucketInfo", f"<Bucket>{inner}</Bucket>"))


# ---------------------------------------------------------------------- versioning


@api("PUT", "versioning")
def PutBucketVersioning(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Set versioning to Enabled or Suspended (anything else: InvalidArgument). Reproduces:
    a bucket with a retention policy (unlocked or locked) cannot have versioning (EC
    0012-00000006; code and status UNCONFIRMED: InvalidArgument, 400); once enabled,
    versioning can only be suspended."""
    b = _need(bucket)
    status = _text(_parse_xml(call.body, "VersioningConfiguration"), "Status")
    if status not in ("Enabled", "Suspended"):
        raise OssError(
            "InvalidArgument", 400, "The versioning status must be Enabled or Suspended."
        )
    if b.live_worm(svc.clock()) is not None:
        raise OssError(
            "InvalidArgument",
            400,
            "Versioning cannot be configured for a bucket with a retention policy.",
            "0012-00000006",
        )
    b.versioning = status
    return Reply()


@api("GET", "versioning")
def GetBucketVersioning(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """VersioningConfiguration with Status (empty when versioning was never set)."""
    b = _need(bucket)
    return Reply(
        body=_xml("VersioningConfiguration", _el("Status", b.versioning) if b.versioning else "")
    )


# ---------------------------------------------------------------------- policy


@api("PUT", "policy")
def PutBucketPolicy(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Store a bucket policy (JSON body). Reproduces: the grammar of RAM statements plus
    Principal (a list of strings; empty means ``*``), the 16 KB limit, and OSS's rule that a
    statement testing ``acs:SourceIp`` must also test ``acs:SourceVpc``; a bad policy is
    InvalidPolicyDocument (400)."""
    from permgen.errors import PolicyParseError
    from permgen.semantics.bucket_policy import bucket_policy_problems, parse_bucket_policy

    b = _need(bucket)
    try:
        text = call.body.decode("utf-8")
        problems = bucket_policy_problems(parse_bucket_policy(text, source="policy"))
    except (UnicodeDecodeError, PolicyParseError) as exc:
        raise OssError(
            "InvalidPolicyDocument", 400, f"Invalid policy document: {exc}", "0031-00000001"
        ) from None
    if problems:
        raise OssError("InvalidPolicyDocument", 400, problems[0], "0031-00000001")
    b.policy = text
    return Reply()


@api("GET", "policy")
def GetBucketPolicy(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """The policy as stored (JSON); NoSuchBucketPolicy (404) when there is none."""
    b = _need(bucket)
    if b.policy is None:
        raise OssError(
            "NoSuchBucketPolicy", 404, "The bucket policy does not exist.", "0031-00000002"
        )
    return Reply(body=b.policy, content_type="application/json")


@api("DELETE", "policy")
def DeleteBucketPolicy(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Remove the policy; 204 whether or not there was one."""
    _need(bucket).policy = None
    return Reply(204)


# ---------------------------------------------------------------------- ACL


def _acl(call: Call) -> str | None:
    acl = call.headers.get("x-oss-acl")
    if acl is not None and acl not in _ACLS:
        raise OssError("InvalidArgument", 400, "no such bucket access control exists")
    return acl


@api("PUT", "acl")
def PutBucketAcl(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Set the ACL from ``x-oss-acl`` (private, public-read, public-read-write; else
    InvalidArgument). Reproduces: Block Public Access refuses a public ACL (AccessDenied)."""
    b = _need(bucket)
    acl = _acl(call)
    if acl is None:
        raise OssError("InvalidArgument", 400, "The x-oss-acl header is required.")
    if acl != "private" and b.block_public_access:
        raise OssError(
            "AccessDenied", 403, "Public access is blocked for this bucket.", "0003-00001403"
        )
    b.acl = acl
    return Reply()


@api("GET", "acl")
def GetBucketAcl(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """AccessControlPolicy with Owner and AccessControlList/Grant."""
    b = _need(bucket)
    owner = "<Owner>" + _el("ID", ACCOUNT) + _el("DisplayName", ACCOUNT) + "</Owner>"
    return Reply(
        body=_xml(
            "AccessControlPolicy",
            owner + f"<AccessControlList>{_el('Grant', b.acl)}</AccessControlList>",
        )
    )


# ---------------------------------------------------------------------- overwrite protection


@api("PUT", "overwriteConfig")
def PutBucketOverwriteConfig(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Replace the overwrite-protection rules. Reproduces: at most 100 rules, Action must be
    ``forbid``, Prefix and Suffix at most 1,023 characters, optional Principals/Principal
    list (InvalidArgument otherwise). The rules are stored while versioning is Enabled or
    Suspended but protect nothing then (O5)."""
    b = _need(bucket)
    root = _parse_xml(call.body, "OverwriteConfiguration")
    rules: list[dict[str, Any]] = []
    for r in root.findall("Rule"):
        action = _text(r, "Action")
        if action != "forbid":
            raise OssError("InvalidArgument", 400, "The rule's Action must be forbid.")
        prefix, suffix = _text(r, "Prefix") or "", _text(r, "Suffix") or ""
        if len(prefix) > OVERWRITE_MAX_AFFIX or len(suffix) > OVERWRITE_MAX_AFFIX:
            raise OssError("InvalidArgument", 400, "Prefix and Suffix are at most 1023 characters.")
        principals = [(p.text or "").strip() for p in r.findall("Principals/Principal")]
        rules.append(
            {
                "id": _text(r, "ID") or f"rule-{len(rules) + 1}",
                "prefix": prefix,
                "suffix": suffix,
                "principals": principals,
            }
        )
    if len(rules) > OVERWRITE_MAX_RULES:
        raise OssError("InvalidArgument", 400, "At most 100 overwrite rules are allowed.")
    b.overwrite_rules, b.overwrite_set = rules, True
    return Reply()


@api("GET", "overwriteConfig")
def GetBucketOverwriteConfig(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """OverwriteConfiguration with its Rule elements (none when unset: UNCONFIRMED whether
    OSS answers 404 instead)."""
    b = _need(bucket)
    inner = ""
    for r in b.overwrite_rules:
        principals = "".join(_el("Principal", p) for p in r["principals"])
        inner += (
            "<Rule>"
            + _el("ID", r["id"])
            + _el("Action", "forbid")
            + _el("Prefix", r["prefix"])
            + _el("Suffix", r["suffix"])
            + f"<Principals>{principals}</Principals>"
            + "</Rule>"
        )
    return Reply(body=_xml("OverwriteConfiguration", inner))


@api("DELETE", "overwriteConfig")
def DeleteBucketOverwriteConfig(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Remove every overwrite rule; 204."""
    b = _need(bucket)
    b.overwrite_rules, b.overwrite_set = [], False
    return Reply(204)


# ---------------------------------------------------------------------- retention (WORM)


def _worm_days(element: ET.Element) -> int:
    raw = _text(element, "RetentionPeriodInDays") or ""
    if not raw.isascii() or not raw.isdigit() or not WORM_MIN_DAYS <= int(raw) <= WORM_MAX_DAYS:
        raise OssError(
            "InvalidArgument",
            400,
            f"RetentionPeriodInDays must be {WORM_MIN_DAYS} to {WORM_MAX_DAYS}.",
        )
    return int(raw)


def _no_worm() -> OssError:
    return OssError("NoSuchWORMConfiguration", 404, "The WORM configuration does not exist.")


@api("POST", "worm")
def InitiateBucketWorm(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Create an unlocked (InProgress) retention policy; its id is in ``x-oss-worm-id``.
    Reproduces: RetentionPeriodInDays 1-25550 (InvalidArgument); not on a bucket whose
    versioning is Enabled or Suspended (EC 0027-00000003); one policy per bucket
    (WORMConfigurationAlreadyExists, 409: UNCONFIRMED code); an unlocked policy lapses 24
    hours after it began (the emulator's clock)."""
    b = _need(bucket)
    days = _worm_days(_parse_xml(call.body, "InitiateWormConfiguration"))
    if b.versioning is not None:
        raise OssError(
            "InvalidArgument",
            400,
            "A retention policy cannot be configured for a bucket with versioning.",
            "0027-00000003",
        )
    if b.live_worm(svc.clock()) is not None:
        raise OssError(
            "WORMConfigurationAlreadyExists", 409, "The bucket already has a retention policy."
        )
    b.worm = Worm(svc._id(), days, svc.clock())
    return Reply(headers={"x-oss-worm-id": b.worm.worm_id})


@api("DELETE", "worm")
def AbortBucketWorm(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Delete an unlocked retention policy (204). Reproduces: NoSuchWORMConfiguration (404)
    when there is none; a locked policy cannot be aborted (WORMConfigurationLocked, 409:
    UNCONFIRMED code)."""
    b = _need(bucket)
    w = b.live_worm(svc.clock())
    if w is None:
        raise _no_worm()
    if w.locked:
        raise OssError(
            "WORMConfigurationLocked", 409, "A locked retention policy cannot be deleted."
        )
    b.worm = None
    return Reply(204)


def _worm_by_id(svc: OssService, call: Call, b: Bucket) -> Worm:
    w = b.live_worm(svc.clock())
    if w is None or w.worm_id != call.query.get("wormId"):
        raise _no_worm()
    return w


@api("POST", "wormExtend")
def ExtendBucketWorm(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Lengthen a locked retention policy. Reproduces: only a locked policy can be extended
    (InvalidWORMState, 409: UNCONFIRMED code); the new period must be longer than the old
    (InvalidArgument); NoSuchWORMConfiguration for an unknown id."""
    w = _worm_by_id(svc, call, _need(bucket))
    days = _worm_days(_parse_xml(call.body, "ExtendWormConfiguration"))
    if not w.locked:
        raise OssError("InvalidWORMState", 409, "Only a locked retention policy can be extended.")
    if days <= w.days:
        raise OssError("InvalidArgument", 400, "The retention period can only be lengthened.")
    w.days = days
    return Reply()


@api("POST", "wormId")
def CompleteBucketWorm(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Lock the retention policy named by ``wormId``. Reproduces: NoSuchWORMConfiguration
    (404) for an unknown or lapsed id; locking a locked policy is WORMConfigurationLocked
    (409: UNCONFIRMED)."""
    w = _worm_by_id(svc, call, _need(bucket))
    if w.locked:
        raise OssError("WORMConfigurationLocked", 409, "The retention policy is already locked.")
    w.locked = True
    return Reply()


@api("GET", "worm")
def GetBucketWorm(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """WormConfiguration: WormId, State (InProgress or Locked), RetentionPeriodInDays,
    CreationDate and, while unlocked, ExpirationDate (24 hours on);
    NoSuchWORMConfiguration (404) when there is none or it lapsed."""
    w = _need(bucket).live_worm(svc.clock())
    if w is None:
        raise _no_worm()
    inner = (
        _el("WormId", w.worm_id)
        + _el("State", "Locked" if w.locked else "InProgress")
        + _el("RetentionPeriodInDays", w.days)
        + _el("CreationDate", _iso(w.created))
        + ("" if w.locked else _el("ExpirationDate", _iso(w.created + WORM_UNLOCKED_LIFETIME)))
    )
    return Reply(body=_xml("WormConfiguration", inner))


# ---------------------------------------------------------------------- replication


@api("POST", "replication", extra="comp=add")
def PutBucketReplication(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Add replication rules (ReplicationConfiguration/Rule, each with a Destination/Bucket:
    InvalidArgument otherwise); a rule without an ID gets one."""
    b = _need(bucket)
    root = _parse_xml(call.body, "ReplicationConfiguration")
    rules = root.findall("Rule")
    if not rules:
        raise OssError("InvalidArgument", 400, "At least one replication Rule is required.")
    for r in rules:
        if not _text(r, "Destination/Bucket"):
            raise OssError("InvalidArgument", 400, "A replication rule needs Destination/Bucket.")
        if r.find("ID") is None:
            ET.SubElement(r, "ID").text = f"rule-{svc._id().lower()}"
        if r.find("Status") is None:
            ET.SubElement(r, "Status").text = "starting"
        b.replication.append(ET.tostring(r, encoding="unicode"))
    return Reply()


@api("GET", "replication")
def GetBucketReplication(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """ReplicationConfiguration with its rules; NoSuchReplicationConfiguration (404) when
    there are none (UNCONFIRMED code)."""
    b = _need(bucket)
    if not b.replication:
        raise OssError(
            "NoSuchReplicationConfiguration", 404, "The replication configuration does not exist."
        )
    return Reply(body=_xml("ReplicationConfiguration", "".join(b.replication)))


@api("POST", "replication", extra="comp=delete")
def DeleteBucketReplication(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Remove the rule named by ReplicationRules/ID; NoSuchReplicationRule (404) for an
    unknown id (UNCONFIRMED code)."""
    b = _need(bucket)
    root = _parse_xml(call.body, "ReplicationRules")
    wanted = {(e.text or "").strip() for e in root.findall("ID")}
    kept = [r for r in b.replication if _text(ET.fromstring(r), "ID") not in wanted]
    if len(kept) == len(b.replication):
        raise OssError("NoSuchReplicationRule", 404, "The replication rule does not exist.")
    b.replication = kept
    return Reply()


# ---------------------------------------------------------------------- lifecycle


@api("PUT", "lifecycle")
def PutBucketLifecycle(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Replace the lifecycle rules (LifecycleConfiguration/Rule, each with Status Enabled or
    Disabled; at most 1,000 rules: InvalidArgument otherwise)."""
    b = _need(bucket)
    root = _parse_xml(call.body, "LifecycleConfiguration")
    rules = root.findall("Rule")
    if not rules or len(rules) > 1000:
        raise OssError("InvalidArgument", 400, "A lifecycle configuration has 1 to 1000 rules.")
    for r in rules:
        if _text(r, "Status") not in ("Enabled", "Disabled"):
            raise OssError("InvalidArgument", 400, "A rule's Status must be Enabled or Disabled.")
    b.lifecycle = "".join(ET.tostring(r, encoding="unicode") for r in rules)
    return Reply()


@api("GET", "lifecycle")
def GetBucketLifecycle(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """LifecycleConfiguration; NoSuchLifecycle (404) when there is none."""
    b = _need(bucket)
    if b.lifecycle is None:
        raise OssError("NoSuchLifecycle", 404, "No Row found in Lifecycle Table.", "0034-00000001")
    return Reply(body=_xml("LifecycleConfiguration", b.lifecycle))


@api("DELETE", "lifecycle")
def DeleteBucketLifecycle(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Remove the lifecycle rules; 204."""
    _need(bucket).lifecycle = None
    return Reply(204)


# ---------------------------------------------------------------------- public access block


@api("PUT", "publicAccessBlock")
def PutBucketPublicAccessBlock(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Set BlockPublicAccess (true or false; InvalidArgument otherwise). While true, a public
    ACL is refused."""
    b = _need(bucket)
    value = _text(_parse_xml(call.body, "PublicAccessBlockConfiguration"), "BlockPublicAccess")
    if value not in ("true", "false"):
        raise OssError("InvalidArgument", 400, "BlockPublicAccess must be true or false.")
    b.block_public_access = value == "true"
    return Reply()


@api("GET", "publicAccessBlock")
def GetBucketPublicAccessBlock(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """PublicAccessBlockConfiguration/BlockPublicAccess (false when never set)."""
    b = _need(bucket)
    value = "true" if b.block_public_access else "false"
    return Reply(body=_xml("PublicAccessBlockConfiguration", _el("BlockPublicAccess", value)))


@api("DELETE", "publicAccessBlock")
def DeleteBucketPublicAccessBlock(svc: OssService, call: Call, bucket: Bucket | None) -> Reply:
    """Turn Block Public Access off; 204."""
    _need(bucket).block_public_access = False
    return Reply(204)


# ---------------------------------------------------------------------- HTTP


def is_oss_request(method: str, path: str, authorization: str) -> bool:
    """The routing rule beside the RPC API: OSS when the method is not GET or POST, the path
    is not ``/``, or the request is signed the OSS way."""
    return (
        method not in ("GET", "POST")
        or urlsplit(path).path != "/"
        or authorization.startswith(("OSS ", "OSS4-"))
    )


def split_path(path: str) -> tuple[str | None, str | None]:
    """(bucket, key) of a path-style request path."""
    parts = urlsplit(path).path.lstrip("/")
    if not parts:
        return None, None
    bucket, sep, key = parts.partition("/")
    return unquote(bucket), (unquote(key) if sep and key else None)


def serve(handler: BaseHTTPRequestHandler, method: str, service: OssService, server: Any) -> None:
    """Answer one OSS request on ``handler`` (the emulator's HTTP handler)."""
    request_id = uuid.uuid4().hex.upper()[:24]
    headers = {k.lower(): v for k, v in handler.headers.items()}
    raw_query = urlsplit(handler.path).query
    bucket, key = split_path(handler.path)
    reply: Reply
    try:
        body = _read_body(handler, headers)
        query = dict(parse_qsl(raw_query, keep_blank_values=True))
        caller = service.authenticate(method, bucket, key, raw_query, headers, time.time())
        call = Call(method, bucket, key, query, headers, body, caller, handler.client_address[0])
        found = _find_api(method, bucket, query)
        if found is not None:
            fault = server._take_fault(found.name)
            if fault is not None:
                if fault.delay:
                    time.sleep(fault.delay)
                if fault.drop:  # close the connection without an answer
                    handler.close_connection = True
                    return
                if fault.code:
                    raise OssError(fault.code, fault.status, f"Injected fault: {fault.code}.")
        api_, reply = service.handle(call, raw_query)
        with server.lock:
            server.calls[api_.name] = server.calls.get(api_.name, 0) + 1
    except OssError as exc:
        reply = _error_reply(exc.code, exc.status, exc.message, exc.ec, request_id)
    except EmulatorError as exc:
        handler.close_connection = True
        reply = _error_reply(exc.code, exc.status, exc.message, "", request_id)
    except (TimeoutError, ConnectionError):
        raise
    except Exception as exc:  # a bug: still an answer in OSS's shape
        handler.close_connection = True
        reply = _error_reply(
            "InternalError",
            500,
            f"We encountered an internal error ({type(exc).__name__}).",
            "",
            request_id,
        )
    data = reply.body.encode("utf-8")
    handler.send_response(reply.status)
    handler.send_header("x-oss-request-id", request_id)
    handler.send_header("Date", formatdate(usegmt=True))
    handler.send_header("Server", "AliyunOSS")
    for k, v in reply.headers.items():
        handler.send_header(k, v)
    if data:
        handler.send_header("Content-Type", reply.content_type)
    handler.send_header("Content-Length", str(len(data)))
    handler.end_headers()
    if method != "HEAD":
        handler.wfile.write(data)


def _read_body(handler: BaseHTTPRequestHandler, headers: Mapping[str, str]) -> bytes:
    if headers.get("transfer-encoding"):
        raise EmulatorError("InvalidArgument", 400, "Chunked request bodies are not supported.")
    declared = headers.get("content-length", "0").strip() or "0"
    if not re.fullmatch(r"[0-9]{1,12}", declared):
        raise EmulatorError("InvalidArgument", 400, "The Content-Length header is invalid.")
    length = int(declared)
    if length > MAX_BODY:
        raise EmulatorError("EntityTooLarge", 413, f"The request body is over {MAX_BODY} bytes.")
    return handler.rfile.read(length) if length else b""


def _error_reply(code: str, status: int, message: str, ec: str, request_id: str) -> Reply:
    inner = (
        _el("Code", code)
        + _el("Message", message)
        + _el("RequestId", request_id)
        + _el("HostId", "permgen-emulator")
        + (_el("EC", ec) if ec else "")
    )
    headers = {"x-oss-ec": ec} if ec else {}
    return Reply(status, _xml("Error", inner), headers)


def coverage_rows() -> list[tuple[str, str, str]]:
    """(API, "METHOD /bucket?sub", what it reproduces) for docs/emulator.md."""
    out = []
    for a in APIS:
        where = "/<bucket>" if a.bucket else "/"
        sub = a.sub or ""
        if a.extra:
            sub += "&" + "&".join(f"{k}={v}" for k, v in a.extra)
        request = f"{a.method} {where}" + (f"?{sub}" if sub else "")
        out.append((a.name, request, " ".join((a.handler.__doc__ or "").split())))
    return out


__all__ = [
    "APIS",
    "MAX_SKEW",
    "REGION",
    "WORM_UNLOCKED_LIFETIME",
    "Bucket",
    "OssError",
    "OssService",
    "Worm",
    "coverage_rows",
    "is_oss_request",
    "serve",
]
