"""Alibaba Cloud RPC signatures (version 1.0, HMAC-SHA1), as the SDK computes them.

The string to sign is ``METHOD&%2F&`` + the percent-encoded, sorted, ``&``-joined
``key=value`` pairs of every query and form parameter except ``Signature``; the key is the
AccessKeySecret followed by ``&``. Percent-encoding is RFC 3986 in UTF-8 with upper-case hex.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from collections.abc import Mapping
from urllib.parse import quote


def percent_encode(text: str) -> str:
    return quote(text, safe="-_.~")


def string_to_sign(method: str, params: Mapping[str, str]) -> str:
    canonical = "&".join(
        f"{percent_encode(k)}={percent_encode(v)}"
        for k, v in sorted(params.items())
        if k != "Signature"
    )
    return f"{method.upper()}&{percent_encode('/')}&{percent_encode(canonical)}"


def signature(text: str, secret: str) -> str:
    digest = hmac.new((secret + "&").encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def verify(method: str, params: Mapping[str, str], secret: str) -> tuple[bool, str]:
    """(valid, the string to sign) for a request's parameters."""
    sts = string_to_sign(method, params)
    expected = signature(sts, secret)
    given = params.get("Signature", "").encode("utf-8", "surrogatepass")
    return hmac.compare_digest(expected.encode(), given), sts


__all__ = ["percent_encode", "signature", "string_to_sign", "verify"]
