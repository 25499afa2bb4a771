"""OIDC callers of the token service: JWTs verified against the issuers of the callers file.

Verification is PyJWT's (signature, ``exp``, ``nbf``, ``iat``, ``iss``, ``aud`` with the
issuer's clock skew); this module only chooses the key and the algorithms: the token's
``kid`` names a key of the issuer's JWKS, the token's ``alg`` must be one the issuer allows
(asymmetric only: ``none`` and HS* are refused when the callers file is read) and must fit
the key's type, so a token signed with HMAC over a public key never verifies. JWKS come from
a file (read at start and again on an unknown ``kid``) or an https URL (fetched with a
timeout and a size cap, cached, fetched again on an unknown ``kid`` at most every
JWKS_REFRESH_INTERVAL seconds). PyJWT is imported on first use.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

#: The algorithms an issuer may allow (all asymmetric), and the JWK key type each needs.
ALGORITHMS = {
    "RS256": "RSA", "RS384": "RSA", "RS512": "RSA",
    "PS256": "RSA", "PS384": "RSA", "PS512": "RSA",
    "ES256": "EC", "ES384": "EC", "ES512": "EC",
    "EdDSA": "OKP",
}  # fmt: skip
DEFAULT_ALGORITHMS = ("RS256", "ES256")
#: The default and the largest clock skew (seconds) allowed for exp, nbf and iat.
DEFAULT_CLOCK_SKEW = 60
MAX_CLOCK_SKEW = 300
#: The longest token accepted, in bytes (an ID token is typically 1-2 KiB).
MAX_TOKEN_BYTES = 8 * 1024
#: The largest JWKS document read, from a file or a URL, in bytes.
MAX_JWKS_BYTES = 64 * 1024
#: Seconds a JWKS fetch may take; how long a fetched JWKS is reused; the least time between
#: two fetches caused by an unknown kid (a stream of tokens with made-up kids costs at most
#: one fetch per interval).
JWKS_TIMEOUT = 5.0
JWKS_TTL = 300.0
JWKS_REFRESH_INTERVAL = 30.0
#: Hosts a JWKS URL may name over plain http (tests and a local identity provider).
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")


class TokenRejected(Exception):
    """The token is not accepted (answered 401); the message says why, never the token."""


class KeysUnavailable(Exception):
    """The issuer's keys could not be fetched (answered 503)."""


def jwks_location_problem(value: str) -> str | None:
    """Why ``value`` is not an acceptable JWKS URL, or None (a non-URL is a file path)."""
    parts = urllib.parse.urlsplit(value)
    if parts.scheme == "https" and parts.hostname:
        return None
    if parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS:
        return None
    if parts.scheme == "http":
        return "a JWKS URL must be https (plain http only for 127.0.0.1, ::1 or localhost)"
    if parts.scheme and parts.scheme != "file" and len(parts.scheme) > 1:
        return f"a JWKS URL must be https, got {parts.scheme}:"
    return None


def is_url(value: str) -> bool:
    return urllib.parse.urlsplit(value).scheme in ("http", "https")


def parse_jwks(text: str | bytes) -> dict[str, dict[str, Any]]:
    """The keys of a JWKS document by kid; ValueError says what is wrong."""
    if len(text) > MAX_JWKS_BYTES:
        raise ValueError(f"the JWKS is over {MAX_JWKS_BYTES // 1024} KiB")
    try:
        doc = json.loads(text)
    except (ValueError, UnicodeDecodeError):
        raise ValueError("the JWKS is not JSON") from None
    keys = doc.get("keys") if isinstance(doc, dict) else None
    if not isinstance(keys, list):
        raise ValueError('the JWKS is not an object with a "keys" list')
    out: dict[str, dict[str, Any]] = {}
    for i, key in enumerate(keys):
        if not isinstance(key, dict) or not isinstance(key.get("kid"), str):
            raise ValueError(f"keys[{i}] has no kid (every key needs one)")
        if key.get("kty") not in ("RSA", "EC", "OKP"):
            raise ValueError(f"keys[{i}]: kty {key.get('kty')!r} is not RSA, EC or OKP")
        if "d" in key:
            raise ValueError(f"keys[{i}] is a private key (publish only public keys)")
        out[key["kid"]] = key
    return out


@dataclass
class Issuer:
    """An issuer of the callers file and its JWKS cache."""

    id: str
    issuer: str
    audience: str
    jwks: str  # an https URL, or a file path (absolute, resolved against the callers file)
    algorithms: tuple[str, ...] = DEFAULT_ALGORITHMS
    clock_skew: int = DEFAULT_CLOCK_SKEW
    keys: dict[str, dict[str, Any]] = field(default_factory=dict)
    fetched: float | None = None  # when the keys were last read (None: never)
    refreshed: float | None = None  # when an unknown kid last made them be read again
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    # PyJWK objects by (kid, alg), built once: parsing a JWK costs more than verifying
    prepared: dict[tuple[str, str], Any] = field(default_factory=dict, repr=False)

    def load(self) -> None:
        """Read the JWKS now (a file at start; raises ValueError or OSError)."""
        if is_url(self.jwks):
            self.keys = parse_jwks(_fetch(self.jwks))
        else:
            with open(self.jwks, "rb") as f:
                self.keys = parse_jwks(f.read(MAX_JWKS_BYTES + 1))
        self.prepared = {}
        self.fetched = time.monotonic()

    def key(self, kid: str) -> dict[str, Any] | None:
        """The key named ``kid``, reading the JWKS again when it is stale or does not know
        the kid (at most once per JWKS_REFRESH_INTERVAL)."""
        with self.lock:
            now = time.monotonic()
            stale = self.fetched is None or (is_url(self.jwks) and now - self.fetched > JWKS_TTL)
            refresh = (
                not stale
                and kid not in self.keys
                and (self.refreshed is None or now - self.refreshed >= JWKS_REFRESH_INTERVAL)
            )
            if refresh:
                self.refreshed = now
            if stale or refresh:
                try:
                    self.load()
                except (OSError, ValueError) as exc:
                    self.fetched = now  # do not retry on every request
                    if not self.keys:
                        raise KeysUnavailable(f"issuer {self.id}: cannot read its JWKS") from exc
            return self.keys.get(kid)


def _fetch(url: str) -> bytes:
    request = urllib.request.Request(url, headers={"Accept": "application/json"})
    opener = urllib.request.build_opener(_NoRedirect)
    with opener.open(request, timeout=JWKS_TIMEOUT) as response:
        body: bytes = response.read(MAX_JWKS_BYTES + 1)
    if len(body) > MAX_JWKS_BYTES:
        raise ValueError(f"the JWKS is over {MAX_JWKS_BYTES // 1024} KiB")
    return body


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    """A JWKS URL is fetched as written: a redirect (perhaps to http) is an error."""

    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def looks_like_jwt(value: str) -> bool:
    return value.count(".") == 2 and value.startswith("eyJ")


def verify(token: str, issuers: Mapping[str, list[Issuer]]) -> tuple[Issuer, dict[str, Any]]:
    """Verify ``token`` against the issuer its ``iss`` names; the issuer and the claims.

    ``issuers`` maps an ``iss`` value to the issuers with it. Raises TokenRejected or
    KeysUnavailable."""
    import jwt

    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected(f"the token is over {MAX_TOKEN_BYTES // 1024} KiB")
    try:
        header = jwt.get_unverified_header(token)
        unverified = jwt.decode(token, options={"verify_signature": False})
    except jwt.PyJWTError:
        raise TokenRejected("the token is not a well-formed JWT") from None
    iss = unverified.get("iss")
    candidates = issuers.get(iss) if isinstance(iss, str) else None
    if not candidates:
        raise TokenRejected("the token's issuer is not accepted")
    alg, kid = header.get("alg"), header.get("kid")
    if not isinstance(kid, str):
        raise TokenRejected("the token names no key (kid)")
    last: Exception | None = None
    for issuer in candidates:
        if alg not in issuer.algorithms:
            last = TokenRejected(f"algorithm {str(alg)[:20]!r} is not accepted")
            continue
        jwk = issuer.key(kid)
        if jwk is None:
            last = TokenRejected("the token's key (kid) is not in the issuer's JWKS")
            continue
        if jwk.get("kty") != ALGORITHMS[alg] or jwk.get("alg", alg) != alg:
            last = TokenRejected(f"algorithm {alg} does not fit the key {kid[:40]!r}")
            continue
        try:
            built = issuer.prepared.get((kid, alg))
            if built is None or built[0] is not jwk:  # the JWKS was read again since
                built = issuer.prepared[(kid, alg)] = (jwk, jwt.PyJWK(jwk, algorithm=alg))
            key = built[1]
            claims: dict[str, Any] = jwt.decode(
                token,
                key=key,
                algorithms=[alg],
                audience=issuer.audience,
                issuer=issuer.issuer,
                leeway=issuer.clock_skew,
                options={"require": ["exp", "iss", "aud"]},
            )
        except jwt.ExpiredSignatureError:
            last = TokenRejected("the token has expired")
        except jwt.ImmatureSignatureError:
            last = TokenRejected("the token is not valid yet")
        except jwt.InvalidAudienceError:
            last = TokenRejected("the token's audience is not accepted")
        except jwt.InvalidIssuerError:
            last = TokenRejected("the token's issuer is not accepted")
        except jwt.MissingRequiredClaimError as exc:
            last = TokenRejected(f"the token has no {exc.claim} claim")
        except (jwt.PyJWTError, ValueError, TypeError):
            last = TokenRejected("the token's signature or claims do not verify")
        else:
            return issuer, claims
    assert last is not None
    raise last


__all__ = [
    "ALGORITHMS",
    "Issuer",
    "KeysUnavailable",
    "TokenRejected",
    "jwks_location_problem",
    "looks_like_jwt",
    "parse_jwks",
    "verify",
]
