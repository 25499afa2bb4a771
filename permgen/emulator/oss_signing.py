"""OSS request signatures as the emulator verifies them: V4 (``OSS4-HMAC-SHA256``, the
default of alibabacloud-oss-v2) and V1 (``OSS AccessKeyId:Signature``, HMAC-SHA1, what the
older oss2 SDK sends), both in the Authorization header.

V4 (the SDK's ``signer/v4.py``): the canonical request is ``METHOD``, the canonical URI
(``/bucket/key`` percent-encoded, ``/`` kept; ``/bucket/`` for a bucket, ``/`` for the
service), the query pairs as sent, sorted, ``key`` alone when the value is empty, the
``x-oss-*``, ``content-type``, ``content-md5`` and AdditionalHeaders headers
(``name:value\\n``, sorted), the AdditionalHeaders names, and ``x-oss-content-sha256``; the
string to sign is ``OSS4-HMAC-SHA256\\n<x-oss-date>\\n<scope>\\n<sha256 hex of the canonical
request>``; the key is HMAC-SHA256 chained over ``aliyun_v4<secret>``, the date, the region,
the product and ``aliyun_v4_request``.

V1: ``METHOD\\nContent-MD5\\nContent-Type\\nDate\\n`` + the ``x-oss-*`` headers + the canonical
resource (``/bucket/key`` and the sub-resources among the query keys, sorted), HMAC-SHA1 with
the secret, base64.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import quote, unquote

V4_ALGORITHM = "OSS4-HMAC-SHA256"

#: Query keys that V1 signs (the SDKs' sub-resource lists, and each API's own).
V1_SUBRESOURCES = frozenset(
    """acl bucketInfo location stat delete append tagging objectMeta uploads uploadId partNumber
    security-token position response-content-type response-content-language response-expires
    response-cache-control response-content-disposition response-content-encoding restore
    callback callback-var versions versioning versionId sequential continuation-token
    regionList cloudboxes symlink resourceGroup policy policyStatus worm wormId wormExtend
    overwriteConfig replication replicationLocation replicationProgress rtc comp lifecycle
    publicAccessBlock cors website referer logging encryption requestPayment inventory
    transferAcceleration accessMonitor""".split()
)


class SignatureError(Exception):
    """The Authorization header cannot be read (a malformed header, not a wrong signature)."""


@dataclass(frozen=True)
class Authorization:
    """What the Authorization header says: the version ("v4" or "v1"), the AccessKeyId, the
    signature, and for V4 the scope and additional headers."""

    version: str
    access_key_id: str
    signature: str
    scope: str = ""
    additional: tuple[str, ...] = ()

    @property
    def scope_parts(self) -> list[str]:
        return self.scope.split("/")


def parse_authorization(header: str) -> Authorization:
    if header.startswith(V4_ALGORITHM + " "):
        fields: dict[str, str] = {}
        for part in header[len(V4_ALGORITHM) + 1 :].split(","):
            name, sep, value = part.strip().partition("=")
            if not sep:
                raise SignatureError(f"malformed Authorization element {name[:40]!r}")
            fields[name] = value
        credential = fields.get("Credential", "")
        key_id, _, scope = credential.partition("/")
        if not key_id or len(scope.split("/")) != 4 or not fields.get("Signature"):
            raise SignatureError("the Authorization header lacks Credential or Signature")
        additional = tuple(h for h in fields.get("AdditionalHeaders", "").split(";") if h)
        return Authorization("v4", key_id, fields["Signature"], scope, additional)
    if header.startswith("OSS "):
        key_id, sep, sig = header[4:].strip().rpartition(":")
        if not sep or not key_id or not sig:
            raise SignatureError("the Authorization header is not 'OSS AccessKeyId:Signature'")
        return Authorization("v1", key_id, sig)
    raise SignatureError("unknown Authorization scheme")


def canonical_uri(bucket: str | None, key: str | None) -> str:
    uri = "/"
    if bucket is not None:
        uri += bucket + "/"
    if key is not None:
        uri += key
    return uri


def _v4_canonical_query(raw_query: str) -> str:
    pairs = []
    if raw_query:
        for pair in raw_query.split("&"):
            key, _, value = pair.partition("=")
            pairs.append((key, value))
    return "&".join(f"{k}={v}" if v else k for k, v in sorted(pairs))


def v4_string_to_sign(
    method: str,
    bucket: str | None,
    key: str | None,
    raw_query: str,
    headers: Mapping[str, str],
    auth: Authorization,
) -> str:
    """``headers``: lower-case names. The string the signer signed, rebuilt from the request."""
    additional = sorted(set(auth.additional))
    signed = sorted(
        (k, v)
        for k, v in headers.items()
        if k.startswith("x-oss-") or k in ("content-type", "content-md5") or k in additional
    )
    canonical = "\n".join(
        [
            method,
            quote(canonical_uri(bucket, key), safe="/"),
            _v4_canonical_query(raw_query),
            "".join(f"{k}:{v}\n" for k, v in signed),
            ";".join(additional),
            headers.get("x-oss-content-sha256", "UNSIGNED-PAYLOAD"),
        ]
    )
    digest = hashlib.sha256(canonical.encode("utf-8")).hexdigest()
    return "\n".join([V4_ALGORITHM, headers.get("x-oss-date", ""), auth.scope, digest])


def v4_signature(secret: str, scope: str, string_to_sign: str) -> str:
    date, region, product, _ = scope.split("/")
    key = ("aliyun_v4" + secret).encode("utf-8")
    for part in (date, region, product, "aliyun_v4_request"):
        key = hmac.new(key, part.encode("utf-8"), hashlib.sha256).digest()
    return hmac.new(key, string_to_sign.encode("utf-8"), hashlib.sha256).hexdigest()


def v1_string_to_sign(
    method: str,
    bucket: str | None,
    key: str | None,
    raw_query: str,
    headers: Mapping[str, str],
) -> str:
    sub = []
    if raw_query:
        for pair in raw_query.split("&"):
            k, _, v = pair.partition("=")
            k, v = unquote(k), unquote(v)
            if k in V1_SUBRESOURCES:
                sub.append((k, v))
    resource = canonical_uri(bucket, key)
    if sub:
        resource += "?" + "&".join(f"{k}={v}" if v else k for k, v in sorted(sub))
    oss_headers = "".join(
        f"{k}:{v}\n" for k, v in sorted(headers.items()) if k.startswith("x-oss-")
    )
    date = headers.get("x-oss-date", "") or headers.get("date", "")
    return "\n".join(
        [
            method,
            headers.get("content-md5", ""),
            headers.get("content-type", ""),
            date,
            oss_headers + resource,
        ]
    )


def v1_signature(secret: str, string_to_sign: str) -> str:
    digest = hmac.new(secret.encode("utf-8"), string_to_sign.encode("utf-8"), hashlib.sha1)
    return base64.b64encode(digest.digest()).decode()


def verify(
    auth: Authorization,
    secret: str,
    method: str,
    bucket: str | None,
    key: str | None,
    raw_query: str,
    headers: Mapping[str, str],
) -> tuple[bool, str]:
    """(valid, the string to sign) for a request signed as ``auth`` says."""
    if auth.version == "v4":
        sts = v4_string_to_sign(method, bucket, key, raw_query, headers, auth)
        expected = v4_signature(secret, auth.scope, sts)
    else:
        sts = v1_string_to_sign(method, bucket, key, raw_query, headers)
        expected = v1_signature(secret, sts)
    given = auth.signature.encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected.encode(), given), sts


__all__ = [
    "V1_SUBRESOURCES",
    "V4_ALGORITHM",
    "Authorization",
    "SignatureError",
    "canonical_uri",
    "parse_authorization",
    "v1_signature",
    "v1_string_to_sign",
    "v4_signature",
    "v4_string_to_sign",
    "verify",
]
