"""``permgen serve``: the token-vending HTTP service (Starlette on uvicorn).

Callers authenticate with high-entropy API keys, stored only as SHA-256 hashes and compared in
constant time, or with a JWT of an issuer the callers file names (verified in
:mod:`permgen.sts.oidc`; a binding may then take a value from a claim, ``{claim:sub}``). Each caller is bound to the roles it may request, and the placeholder values of
each role come from the binding (``{caller}`` is the caller's id; a fixed value; or
``{request}``: taken from the request and validated like ``--var``), never from the request
unless the binding says so. Tokens are cached per (role, values, duration) and reused until
near expiry, with one AssumeRole in flight per key; the cache is bounded (MAX_CACHED_TOKENS). Per-caller rate limits answer 429 with
Retry-After. By default the cache and the rate limits are per instance; with a shared state
(``permgen.sts.fleet.RedisState``, ``permgen serve --redis``) a fleet of instances shares
the cache, single flight, the rate limits and an AssumeRole budget.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import json
import math
import re
import secrets
import time
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from permgen._internal.safejson import JsonLimitError
from permgen._internal.safejson import loads as bounded_loads
from permgen.account.types import StsApi, StsCredentials
from permgen.errors import CloudError, EndpointError, InputError, PermgenError, SpecError
from permgen.spec.load import format_path, load_yaml
from permgen.spec.schema import json_type
from permgen.spec.types import PLACEHOLDER_VALUE_RE, Spec, check_placeholder_value
from permgen.sts import oidc
from permgen.sts.fleet import (
    MAX_CACHED_TOKENS,  # noqa: F401  (re-exported: docs and tests name it here)
    BudgetExceeded,
    CachedToken,
    FleetCounters,
    LocalState,
    TokenState,
)
from permgen.sts.fleet import reusable as _reusable
from permgen.sts.mint import mint
from permgen.sts.oidc import Issuer

#: The largest request body accepted, in bytes; enforced while the body streams in.
MAX_BODY = 16 * 1024
#: Seconds a request body may take to arrive in full (a slow sender answers 408).
BODY_TIMEOUT = 10.0
#: How deeply a request body's JSON may nest (``{"vars": {...}}`` is 2 deep).
MAX_BODY_DEPTH = 8
#: uvicorn settings ``permgen serve`` runs with (docs/token-service.md): connections and
#: requests in flight over this many are answered 503; an idle keep-alive connection is
#: closed after 5 s; a request line with its headers may not exceed 16 KiB.
SERVER_LIMITS: dict[str, Any] = {
    "limit_concurrency": 512,
    "timeout_keep_alive": 5,
    "h11_max_incomplete_event_size": 16 * 1024,
    "http": "h11",
}
_LENGTH_RE = re.compile(r"[0-9]{1,12}")
CALLER = "{caller}"
FROM_REQUEST = "{request}"
#: A binding value taken from a claim of the caller's verified JWT: ``{claim:sub}``.
CLAIM_RE = re.compile(r"\{claim:([A-Za-z_][A-Za-z0-9_.-]{0,63})\}")
#: The cookie a GET may carry the caller's token in (an app's session JWT, or an API key).
TOKEN_COOKIE = "permgen_token"
#: The most query parameters a GET may have (each fills one {request} placeholder).
MAX_QUERY_PARAMS = 16


def new_key() -> tuple[str, str]:
    """A new API key and the SHA-256 hash to put in the callers file."""
    key = "pgk_" + secrets.token_urlsafe(32)
    return key, hashlib.sha256(key.encode()).hexdigest()


@dataclass(frozen=True)
class Binding:
    role: str
    values: Mapping[str, str]  # placeholder -> "{caller}", "{request}" or a fixed value
    max_duration: int | None = None


@dataclass(frozen=True)
class Caller:
    id: str
    key_hash: bytes | None  # None for a caller that authenticates with a JWT
    bindings: Mapping[str, Binding]
    rate: float = 10.0  # tokens per second
    burst: int = 20
    issuer: str | None = None  # the id of its issuer, for a caller that presents JWTs


#: The keys a caller entry and a role binding may have (anything else is a typo to report).
CALLER_KEYS = ("id", "key_sha256", "issuer", "rate", "burst", "roles")
ISSUER_KEYS = ("id", "issuer", "audience", "jwks", "algorithms", "clock_skew")
BINDING_KEYS = ("vars", "max_duration")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}")
#: Upper limits of a caller's rate (tokens per second) and burst: far above any real use,
#: low enough to stay exact as floats.
MAX_RATE = 1_000_000
MAX_BURST = 1_000_000


def _kind(value: Any) -> str:
    """What a YAML value is, for messages (``a list``, ``a string`` ...)."""
    name = json_type(value)
    return name if name == "null" else ("an " if name[0] in "aeiou" else "a ") + name


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


class _CallersChecker:
    """Checks a loaded callers file; every problem names the file, line, key path and caller."""

    def __init__(
        self, source: str, data: Any, positions: Any, spec: Spec, base: Path | None = None
    ) -> None:
        self.source, self.data, self.positions, self.spec = source, data, positions, spec
        self.base = base if base is not None else Path(".")
        self.issuers: dict[str, Issuer] = {}

    def fail(self, path: tuple[Any, ...], message: str, caller: str | None = None) -> SpecError:
        line, column = self.positions.locate(self.data, path)
        if caller is not None:
            message += f" (caller {caller!r})"
        return SpecError(
            message, file=self.source, line=line, column=column, path=format_path(path)
        )

    def callers(self) -> list[Caller]:
        data = self.data
        if data is None:
            raise self.fail((), "no callers (the file is empty)")
        if not isinstance(data, dict):
            raise self.fail((), f"expected a mapping with a callers: list, got {_kind(data)}")
        for key in data:
            if key not in ("callers", "issuers"):
                raise self.fail((key,), "unknown key (the file has callers: and issuers:)")
        self.read_issuers(data.get("issuers"))
        entries = data.get("callers")
        if not isinstance(entries, list):
            raise self.fail(("callers",), f"expected a list of callers, got {_kind(entries)}")
        if not entries:
            raise self.fail(("callers",), "no callers")
        out: list[Caller] = []
        ids: dict[str, int] = {}
        hashes: dict[bytes, int] = {}
        issued: dict[str, int] = {}
        for i, raw in enumerate(entries):
            caller = self.caller(i, raw)
            where = ("callers", i)
            if caller.id in ids:
                raise self.fail(
                    (*where, "id"),
                    f"duplicate id {caller.id!r}: callers[{ids[caller.id]}] has it too",
                )
            if caller.issuer is not None:
                if caller.issuer in issued:
                    raise self.fail(
                        (*where, "issuer"),
                        f"issuer {caller.issuer!r} is named by callers[{issued[caller.issuer]}] "
                        "too (a token of an issuer must map to one caller)",
                        caller.id,
                    )
                issued[caller.issuer] = i
                ids[caller.id] = i
                out.append(caller)
                continue
            assert caller.key_hash is not None
            if caller.key_hash in hashes:
                raise self.fail(
                    (*where, "key_sha256"),
                    f"duplicate key hash: callers[{hashes[caller.key_hash]}] has it too "
                    "(every caller needs its own key)",
                    caller.id,
                )
            ids[caller.id] = i
            hashes[caller.key_hash] = i
            out.append(caller)
        return out

    def caller(self, i: int, raw: Any) -> Caller:
        where: tuple[Any, ...] = ("callers", i)
        if not isinstance(raw, dict):
            raise self.fail(
                where, f"expected a mapping (id, key_sha256, roles ...), got {_kind(raw)}"
            )
        caller_id = raw.get("id")
        if "id" not in raw:
            raise self.fail(where, "id: required")
        if not isinstance(caller_id, str):
            raise self.fail((*where, "id"), f"expected a string, got {_kind(caller_id)}")
        if not PLACEHOLDER_VALUE_RE.fullmatch(caller_id) or ".." in caller_id:
            raise self.fail(
                (*where, "id"),
                f"{caller_id[:80]!r} is not a valid id: it fills {{caller}} bindings, so it "
                f"must match {PLACEHOLDER_VALUE_RE.pattern} without '..'",
            )
        for key in raw:
            if key not in CALLER_KEYS:
                raise self.fail(
                    (*where, key),
                    f"unknown key (a caller has {', '.join(CALLER_KEYS)})",
                    caller_id,
                )
        issuer = raw.get("issuer")
        if "issuer" in raw:
            if "key_sha256" in raw:
                raise self.fail(
                    (*where, "issuer"),
                    "a caller has key_sha256 (an API key) or issuer (JWTs), not both",
                    caller_id,
                )
            if not isinstance(issuer, str) or issuer not in self.issuers:
                known = ", ".join(self.issuers) or "none: add an issuers: list"
                shown = repr(issuer)[:80] if isinstance(issuer, str) else _kind(issuer)
                raise self.fail(
                    (*where, "issuer"),
                    f"expected the id of an issuer of issuers: ({known}), got {shown}",
                    caller_id,
                )
        digest = raw.get("key_sha256")
        if issuer is None and (not isinstance(digest, str) or not _HEX64.fullmatch(digest)):
            if "key_sha256" not in raw:
                raise self.fail(
                    where,
                    "key_sha256: required (the SHA-256 hex digest of the key), "
                    "or issuer: for a caller that presents JWTs",
                    caller_id,
                )
            got = f"{len(digest)} characters" if isinstance(digest, str) else _kind(digest)
            if _is_int(digest):
                got += " (quote the digest: YAML reads one of only digits as a number)"
            raise self.fail(
                (*where, "key_sha256"),
                f"expected a SHA-256 hex digest (64 hex digits), got {got}",
                caller_id,
            )
        rate = raw.get("rate", 10)
        number = isinstance(rate, (int, float)) and not isinstance(rate, bool)
        if not number or not (0 < rate <= MAX_RATE) or not math.isfinite(rate):
            shown = f" {rate!r}"[:40] if number else ""
            raise self.fail(
                (*where, "rate"),
                f"expected a number of requests per second above 0 and at most {MAX_RATE:,}, "
                f"got {_kind(rate)}{shown}",
                caller_id,
            )
        burst = raw.get("burst", 20)
        if not _is_int(burst) or not 1 <= burst <= MAX_BURST:
            shown = f" {burst!r}"[:40] if _is_int(burst) else ""
            raise self.fail(
                (*where, "burst"),
                f"expected an integer from 1 to {MAX_BURST:,}, got {_kind(burst)}{shown}",
                caller_id,
            )
        roles = raw.get("roles")
        if roles is None:
            roles = {}
        if not isinstance(roles, dict):
            raise self.fail(
                (*where, "roles"),
                f"expected a mapping of role name to binding, got {_kind(roles)}",
                caller_id,
            )
        bindings = {
            str(role): self.binding((*where, "roles", role), role, b, caller_id, issuer is not None)
            for role, b in roles.items()
        }
        key_hash = None if issuer is not None else bytes.fromhex(str(digest))
        return Caller(caller_id, key_hash, bindings, float(rate), burst, issuer)

    def read_issuers(self, entries: Any) -> None:
        if entries is None:
            return
        if not isinstance(entries, list):
            raise self.fail(("issuers",), f"expected a list of issuers, got {_kind(entries)}")
        for i, raw in enumerate(entries):
            where: tuple[Any, ...] = ("issuers", i)
            if not isinstance(raw, dict):
                raise self.fail(
                    where, f"expected a mapping (id, issuer, audience, jwks ...), got {_kind(raw)}"
                )
            for key in raw:
                if key not in ISSUER_KEYS:
                    raise self.fail(
                        (*where, key), f"unknown key (an issuer has {', '.join(ISSUER_KEYS)})"
                    )
            for key in ("id", "issuer", "audience", "jwks"):
                value = raw.get(key)
                if key not in raw:
                    raise self.fail(where, f"{key}: required")
                if not isinstance(value, str) or not value.strip():
                    raise self.fail(
                        (*where, key), f"expected a non-empty string, got {_kind(value)}"
                    )
            issuer_id = raw["id"]
            if issuer_id in self.issuers:
                raise self.fail((*where, "id"), f"duplicate issuer id {issuer_id!r}")
            algorithms = raw.get("algorithms", list(oidc.DEFAULT_ALGORITHMS))
            if not isinstance(algorithms, list) or not algorithms:
                raise self.fail(
                    (*where, "algorithms"),
                    f"expected a non-empty list of algorithms, got {_kind(algorithms)}",
                )
            for n, alg in enumerate(algorithms):
                if alg not in oidc.ALGORITHMS:
                    shown = repr(alg)[:40] if isinstance(alg, str) else _kind(alg)
                    raise self.fail(
                        (*where, "algorithms", n),
                        f"{shown} is not accepted: only asymmetric algorithms "
                        f"({', '.join(oidc.ALGORITHMS)}); never none or HS*",
                    )
            skew = raw.get("clock_skew", oidc.DEFAULT_CLOCK_SKEW)
            if not _is_int(skew) or not 0 <= skew <= oidc.MAX_CLOCK_SKEW:
                raise self.fail(
                    (*where, "clock_skew"),
                    f"expected whole seconds from 0 to {oidc.MAX_CLOCK_SKEW}, got "
                    + (str(skew) if _is_int(skew) else _kind(skew)),
                )
            jwks = raw["jwks"]
            problem = oidc.jwks_location_problem(jwks)
            if problem:
                raise self.fail((*where, "jwks"), problem)
            location = jwks if oidc.is_url(jwks) else str(self.base / jwks)
            issuer = oidc.Issuer(
                issuer_id, raw["issuer"], raw["audience"], location, tuple(algorithms), skew
            )
            if not oidc.is_url(jwks):
                try:
                    issuer.load()
                except OSError as exc:
                    raise self.fail(
                        (*where, "jwks"), f"cannot read {location}: {exc.strerror}"
                    ) from None
                except ValueError as exc:
                    raise self.fail((*where, "jwks"), f"{location}: {exc}") from None
            self.issuers[issuer_id] = issuer

    def binding(
        self, where: tuple[Any, ...], role: Any, raw: Any, caller_id: str, jwt: bool = False
    ) -> Binding:
        r = self.spec.roles.get(role) if isinstance(role, str) else None
        if r is None or r.sts is None:
            raise self.fail(where, "not a role with an sts: block in the spec", caller_id)
        if raw is None:
            raw = {}
        if not isinstance(raw, dict):
            raise self.fail(
                where, f"expected a mapping (vars, max_duration), got {_kind(raw)}", caller_id
            )
        for key in raw:
            if key not in BINDING_KEYS:
                raise self.fail(
                    (*where, key),
                    f"unknown key (a binding has {', '.join(BINDING_KEYS)})",
                    caller_id,
                )
        values = raw.get("vars")
        if values is None:
            values = {}
        if not isinstance(values, dict):
            raise self.fail(
                (*where, "vars"),
                f"expected a mapping of placeholder to value, got {_kind(values)}",
                caller_id,
            )
        for name, value in values.items():
            if name not in r.placeholders:
                raise self.fail(
                    (*where, "vars", name),
                    f"role {role} has no placeholder {{{name}}}",
                    caller_id,
                )
            if not isinstance(value, str):
                raise self.fail(
                    (*where, "vars", name),
                    f'expected "{CALLER}", "{FROM_REQUEST}" or a fixed value as a string, '
                    f"got {_kind(value)}",
                    caller_id,
                )
            claim = CLAIM_RE.fullmatch(value)
            if claim and not jwt:
                raise self.fail(
                    (*where, "vars", name),
                    f"{value} needs a caller with issuer: (an API-key caller has no claims)",
                    caller_id,
                )
            if value.startswith("{claim:") and not claim:
                raise self.fail(
                    (*where, "vars", name),
                    f"{value[:80]!r} is not a claim reference: {{claim:NAME}} with NAME "
                    f"matching {CLAIM_RE.pattern[8:-3]}",
                    caller_id,
                )
            if value not in (CALLER, FROM_REQUEST) and not claim:
                problem = check_placeholder_value(str(name), value)
                if problem:
                    raise self.fail(
                        (*where, "vars", name), problem.replace("--var ", ""), caller_id
                    )
        missing = [p for p in r.placeholders if p not in values]
        if missing:
            raise self.fail(
                (*where, "vars"), f"no binding for placeholder {{{missing[0]}}}", caller_id
            )
        max_duration = raw.get("max_duration")
        if max_duration is not None and (
            not _is_int(max_duration) or not 900 <= max_duration <= r.sts.duration
        ):
            got = str(max_duration) if _is_int(max_duration) else _kind(max_duration)
            raise self.fail(
                (*where, "max_duration"),
                f"expected whole seconds from 900 to role {role}'s sts.duration "
                f"({r.sts.duration}), got {got}",
                caller_id,
            )
        return Binding(role, {str(k): v for k, v in values.items()}, max_duration)


def load_callers(path: str | Path, spec: Spec) -> list[Caller]:
    """Read and check the callers file; any problem is an :class:`InputError` (exit 2) that
    names the file, the line, the key path and the caller."""
    return load_callers_and_issuers(path, spec)[0]


def load_callers_and_issuers(
    path: str | Path, spec: Spec
) -> tuple[list[Caller], dict[str, Issuer]]:
    """:func:`load_callers`, with the file's issuers by id (their JWKS files already read)."""
    source = str(path)
    try:
        text = Path(path).read_text("utf-8")
    except FileNotFoundError:
        raise InputError(f"{source}: no such callers file") from None
    except IsADirectoryError:
        raise InputError(f"{source}: is a directory, expected the callers file") from None
    except UnicodeDecodeError:
        raise InputError(f"{source}: the callers file is not UTF-8 text") from None
    except OSError as exc:
        raise InputError(f"{source}: cannot read the callers file: {exc.strerror}") from None
    data, positions = load_yaml(text, source)
    checker = _CallersChecker(source, data, positions, spec, Path(path).parent)
    callers = checker.callers()
    return callers, checker.issuers


def _bucket_id(caller: Caller, subject: str | None) -> str:
    """The rate-limit bucket of a caller, or of one subject of a JWT caller."""
    return caller.id if subject is None else f"{caller.id}\x00{subject}"


@dataclass
class Metrics:
    requests: dict[int, int] = field(default_factory=dict)
    cache_hits: int = 0
    cache_misses: int = 0
    assume_role_calls: int = 0
    assume_role_errors: int = 0
    latency_buckets: dict[float, int] = field(
        default_factory=lambda: {
            b: 0 for b in (0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0, float("inf"))
        }
    )
    latency_sum: float = 0.0
    instance: str = ""
    issued: dict[str, int] = field(default_factory=dict)  # by source: minted, cache, fleet
    degraded_requests: int = 0
    fleet: FleetCounters | None = None

    def observe(self, status: int, seconds: float) -> None:
        self.requests[status] = self.requests.get(status, 0) + 1
        self.latency_sum += seconds
        for b in self.latency_buckets:
            if seconds <= b:
                self.latency_buckets[b] += 1

    def text(self) -> str:
        lines = ["# TYPE permgen_requests_total counter"]
        lines += [
            f'permgen_requests_total{{status="{s}"}} {n}' for s, n in sorted(self.requests.items())
        ]
        lines += [
            "# TYPE permgen_token_cache_hits_total counter", f"permgen_token_cache_hits_total {self.cache_hits}",
            "# TYPE permgen_token_cache_misses_total counter", f"permgen_token_cache_misses_total {self.cache_misses}",
            "# TYPE permgen_assume_role_total counter", f"permgen_assume_role_total {self.assume_role_calls}",
            "# TYPE permgen_assume_role_errors_total counter", f"permgen_assume_role_errors_total {self.assume_role_errors}",
            "# TYPE permgen_request_seconds histogram",
        ]  # fmt: skip
        for b, n in self.latency_buckets.items():
            le = "+Inf" if b == float("inf") else repr(b)
            lines.append(f'permgen_request_seconds_bucket{{le="{le}"}} {n}')
        total = sum(self.requests.values())
        lines += [
            f"permgen_request_seconds_sum {self.latency_sum:.6f}",
            f"permgen_request_seconds_count {total}",
        ]
        lines += self._instance_lines()
        return "\n".join(lines) + "\n"

    def _instance_lines(self) -> list[str]:
        """The instance's id as a label: which instance issued what, and the fleet's counts."""
        inst = f'instance="{_label(self.instance)}"'
        lines = ["# TYPE permgen_instance_info gauge", f"permgen_instance_info{{{inst}}} 1"]
        lines.append("# TYPE permgen_tokens_issued_total counter")
        lines += [
            f'permgen_tokens_issued_total{{{inst},source="{src}"}} {n}'
            for src, n in sorted(self.issued.items())
        ]
        if self.fleet is not None:
            f = self.fleet
            for name, value in (
                ("redis_errors", f.redis_errors),
                ("degraded_requests", self.degraded_requests),
                ("fleet_peer_waits", f.peer_waits),
                ("fleet_peer_wait_timeouts", f.peer_wait_timeouts),
                ("fleet_decrypt_failures", f.decrypt_failures),
                ("assume_role_budget_rejections", f.budget_rejections),
            ):
                lines += [
                    f"# TYPE permgen_{name}_total counter",
                    f"permgen_{name}_total{{{inst}}} {value}",
                ]
        return lines


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class TokenService:
    """The service's logic, independent of HTTP (tested in process and over HTTP)."""

    def __init__(
        self,
        spec: Spec,
        callers: list[Caller],
        sts: StsApi,
        *,
        audit: TextIO | None = None,
        clock: Any = time.time,
        issuers: Mapping[str, Issuer] | None = None,
        state: TokenState | None = None,
        instance: str = "",
    ) -> None:
        self.spec = spec
        self.callers = callers
        # the JWT callers by the ``iss`` of their issuer's tokens
        self.issuers: dict[str, list[Issuer]] = {}
        self.jwt_callers: dict[str, Caller] = {}
        for c in callers:
            if c.issuer is not None and issuers and c.issuer in issuers:
                found = issuers[c.issuer]
                self.issuers.setdefault(found.issuer, []).append(found)
                self.jwt_callers[found.id] = c
        self.sts = sts
        self.audit = audit
        self.clock = clock
        # the in-process cache is always in front; a fleet's shared state (with its own
        # in-process fallback) is asked on a miss there
        self.local: LocalState = getattr(state, "local", None) or LocalState()
        self.state: TokenState = state if state is not None else self.local
        self.instance = instance
        # one lock per key with requests in flight, with how many hold or wait for it; a
        # key's lock is dropped when its last request is done
        self.locks: dict[tuple[Any, ...], tuple[asyncio.Lock, list[int]]] = {}
        self.metrics = Metrics(instance=instance, fleet=getattr(state, "counters", None))

    @property
    def cache(self) -> dict[tuple[Any, ...], CachedToken]:
        return self.local.cache

    @property
    def shared(self) -> bool:
        return self.state is not self.local

    def authenticate(self, header: str | None) -> Caller | None:
        """The API-key caller of an ``Authorization`` header (the scheme's case is free)."""
        token = bearer(header)
        return self.by_key(token) if token else None

    def by_key(self, key: str) -> Caller | None:
        digest = hashlib.sha256(key.encode()).digest()
        found = None
        for c in self.callers:  # compare with every caller, in constant time each
            if c.key_hash is not None and hmac.compare_digest(digest, c.key_hash):
                found = c
        return found

    def identify(self, token: str) -> tuple[Caller, dict[str, Any]] | None:
        """The caller of an API key or a JWT, with the JWT's claims (empty for a key); None
        for an unknown key. A JWT that does not verify raises :class:`oidc.TokenRejected`;
        may block to fetch an issuer's JWKS (run it off the event loop)."""
        if self.issuers and oidc.looks_like_jwt(token):
            issuer, claims = oidc.verify(token, self.issuers)
            return self.jwt_callers[issuer.id], claims
        caller = self.by_key(token)
        return (caller, {}) if caller is not None else None

    def allow(self, caller: Caller, subject: str | None = None) -> float:
        """0 when the caller may go on, else the seconds to wait. A JWT caller's limit
        applies to each subject (each user of an app) on its own."""
        return self.local.take(_bucket_id(caller, subject), caller.rate, caller.burst, self.clock())

    async def admit(self, caller: Caller, subject: str | None = None) -> float:
        """:meth:`allow` against the fleet's shared limit (the local one without a fleet)."""
        if not self.shared:
            return self.allow(caller, subject)
        wait = await self.state.allow(
            _bucket_id(caller, subject), caller.rate, caller.burst, self.clock()
        )
        self._note_degraded()
        return wait

    def _note_degraded(self) -> None:
        if self.state.degraded:
            self.metrics.degraded_requests += 1

    def resolve(
        self,
        caller: Caller,
        role: str,
        requested: Mapping[str, Any],
        claims: Mapping[str, Any] | None = None,
    ) -> dict[str, str]:
        binding = caller.bindings.get(role)
        if binding is None:
            raise PermissionError(f"caller {caller.id} may not request role {role}")
        values: dict[str, str] = {}
        from_claims: dict[str, str] = {}
        for name, source in binding.values.items():
            claim = CLAIM_RE.fullmatch(source)
            if source == CALLER:
                values[name] = caller.id
            elif source == FROM_REQUEST:
                if name not in requested:
                    raise ValueError(
                        f"a value for {name} is required (vars.{name} in a POST body, "
                        f"?{name}= on a GET)"
                    )
                values[name] = str(requested[name])
            elif claim:
                value = (claims or {}).get(claim.group(1))
                if not isinstance(value, str):
                    raise PermissionError(
                        f"the token has no {claim.group(1)} claim as a string (it fills {name})"
                    )
                values[name] = value
                from_claims[name] = claim.group(1)
            else:
                values[name] = source
        extra = [k for k in requested if binding.values.get(k) != FROM_REQUEST]
        if extra:
            raise PermissionError(f"{str(extra[0])[:64]} may not be chosen by the caller")
        for name, value in values.items():
            problem = check_placeholder_value(name, value)
            if problem and name in from_claims:
                raise PermissionError(f"claim {from_claims[name]}: {problem.replace('--var ', '')}")
            if problem:
                raise ValueError(problem.replace("--var ", ""))
        return values

    async def token(
        self,
        caller: Caller,
        role: str,
        requested: Mapping[str, Any],
        duration: int | None,
        claims: Mapping[str, Any] | None = None,
    ) -> tuple[StsCredentials, str, bool]:
        values = self.resolve(caller, role, requested, claims)
        binding = caller.bindings[role]
        if duration is None:
            duration = binding.max_duration  # no duration asked for: the binding's maximum
        if (
            duration is not None
            and binding.max_duration is not None
            and duration > binding.max_duration
        ):
            raise ValueError(
                f"duration {duration} is over this caller's maximum {binding.max_duration}"
            )
        block = self.spec.roles[role].sts
        if duration is not None and block is not None and not 900 <= duration <= block.duration:
            raise ValueError(  # checked here too so that the answer names no command option
                f"duration {duration} is outside 900 to {block.duration} seconds "
                f"(role {role}'s sts.duration)"
            )
        key = (role, tuple(sorted(values.items())), duration)
        flight = self.locks.get(key)
        if flight is None:
            flight = self.locks[key] = (asyncio.Lock(), [0])
        flight[1][0] += 1
        try:
            return await self._token(caller, role, values, duration, key, flight[0])
        finally:
            flight[1][0] -= 1
            if flight[1][0] == 0 and self.locks.get(key) is flight:
                del self.locks[key]

    @staticmethod
    def reusable(issued: float, expires: float, now: float) -> bool:
        """Whether a cached token has more than max(60 s, 10% of its lifetime) left."""
        return _reusable(issued, expires, now)

    async def _token(
        self,
        caller: Caller,
        role: str,
        values: dict[str, str],
        duration: int | None,
        key: tuple[Any, ...],
        lock: asyncio.Lock,
    ) -> tuple[StsCredentials, str, bool]:
        async with lock:  # one AssumeRole in flight per key in this process
            hit = self.local.lookup(key, self.clock())
            if hit is not None:
                self.metrics.cache_hits += 1
                return self._served(caller, role, values, hit, "cache")
            claimed = False
            if self.shared:  # the fleet's cache, then its single flight
                hit = await self.state.get(key, self.clock())
                if hit is None:
                    claimed = await self.state.claim(key)
                    if not claimed:
                        hit = await self.state.wait(key, self.clock)
                        claimed = hit is None and await self.state.claim(key)
                    if claimed:
                        # another instance may have minted, stored and let go of the key
                        # between our look and our claim: look again before minting
                        hit = await self.state.get(key, self.clock())
                        if hit is not None:
                            await self.state.release(key)
                            claimed = False
                self._note_degraded()
                if hit is not None:
                    self.local.store(key, hit, self.clock())
                    self.metrics.cache_hits += 1
                    return self._served(caller, role, values, hit, "fleet")
            try:
                return await self._mint(caller, role, values, duration, key)
            finally:
                if claimed:
                    await self.state.release(key)

    async def _mint(
        self,
        caller: Caller,
        role: str,
        values: dict[str, str],
        duration: int | None,
        key: tuple[Any, ...],
    ) -> tuple[StsCredentials, str, bool]:
        now = self.clock()
        self.metrics.cache_misses += 1
        await self.state.spend(now)  # BudgetExceeded: none of this second's budget is left
        self.metrics.assume_role_calls += 1
        loop = asyncio.get_running_loop()
        try:
            minted = await loop.run_in_executor(
                None, lambda: mint(self.spec, role, values, self.sts, duration=duration)
            )
        except (CloudError, EndpointError):
            self.metrics.assume_role_errors += 1
            raise
        token = CachedToken(
            minted.credentials, now, now + minted.duration, minted.session_name, self.instance
        )
        self.local.store(key, token, now)
        if self.shared:
            await self.state.put(key, token, self.clock())
        served = self._served(caller, role, values, token, "minted")
        return served[0], served[1], False

    def _served(
        self,
        caller: Caller,
        role: str,
        values: Mapping[str, str],
        token: CachedToken,
        source: str,
    ) -> tuple[StsCredentials, str, bool]:
        self.metrics.issued[source] = self.metrics.issued.get(source, 0) + 1
        self._audit(caller, role, values, token, source)
        return token.credentials, token.session, True

    def _audit(
        self,
        caller: Caller,
        role: str,
        values: Mapping[str, str],
        token: CachedToken,
        source: str,
    ) -> None:
        if self.audit is None:
            return
        record = {
            "time": round(self.clock(), 3),
            "caller": caller.id,
            "role": role,
            "values": dict(values),
            "session": token.session,
            "access_key_id": token.credentials.access_key_id,
            "cache_hit": source != "minted",
        }
        if self.instance:  # which instance served it, and which one called AssumeRole
            record.update(instance=self.instance, source=source, minted_by=token.instance)
        self.audit.write(json.dumps(record) + "\n")
        self.audit.flush()

    def audit_refusal(
        self, status: int, reason: str, who: Mapping[str, Any], role: str | None
    ) -> None:
        """One audit line for a refused request: who (caller, subject), what, why. The
        reason is the answer's message, which never holds a key, a token or a secret."""
        if self.audit is None:
            return
        record = {
            "time": round(self.clock(), 3),
            **who,
            "role": role,
            "refused": status,
            "reason": reason,
        }
        self.audit.write(json.dumps(record) + "\n")
        self.audit.flush()


def bearer(header: str | None) -> str | None:
    """The credential of an ``Authorization: Bearer`` header; the scheme is case-insensitive
    (RFC 6750 and RFC 9110)."""
    if not header:
        return None
    scheme, _, value = header.strip().partition(" ")
    value = value.strip()
    return value if scheme.lower() == "bearer" and value else None


#: The ErrorCode of an error answered to ``GET /v1/sts/<role>``, by HTTP status.
SDK_ERROR_CODES = {
    400: "InvalidRequest",
    401: "InvalidToken",
    403: "AccessDenied",
    429: "Throttling",
    502: "STSError",
    503: "ServiceUnavailable",
}
_MAX_MINUTES_RE = re.compile(r"DurationSeconds is 15min/([0-9]{1,6})min")


def _sts_message(
    service: TokenService, exc: CloudError, role: str, caller: Caller, duration: int | None
) -> str:
    """The text of a 502/503 for an STS error: its code, and for a duration over the RAM
    role's MaxSessionDuration both numbers (STS names the maximum in minutes)."""
    found = _MAX_MINUTES_RE.search(str(exc))
    if exc.code == "InvalidParameter.DurationSeconds" and found:
        r = service.spec.roles.get(role)
        binding = caller.bindings.get(role)
        asked = duration or (binding.max_duration if binding else None)
        if asked is None and r is not None and r.sts is not None:
            asked = r.sts.duration
        return (
            f"STS: {exc.code}: the session duration {asked} s is over the RAM role's "
            f"MaxSessionDuration of {int(found.group(1)) * 60} s (lower the role's "
            "sts.duration, or raise MaxSessionDuration)"
        )
    return f"STS: {exc.code}"


def create_app(service: TokenService) -> Any:
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse, Response
    from starlette.routing import Route

    def problem(status: int, message: str, compat: bool = False, **headers: str) -> Response:
        # a message may quote the request, which JSON lets carry lone surrogates
        message = message.encode("utf-8", "backslashreplace").decode("utf-8")
        if compat:  # the OSS mobile SDKs' auth-server shape (docs/token-service.md)
            body: dict[str, Any] = {
                "StatusCode": status,
                "ErrorCode": SDK_ERROR_CODES.get(status, "InvalidRequest"),
                "ErrorMessage": message,
            }
            headers["Cache-Control"] = "no-store"
        else:
            body = {"error": message, "status": status}
        return JSONResponse(body, status_code=status, headers=headers or None)

    too_large = f"body over {MAX_BODY} bytes"

    async def read_body(request: Request) -> bytes | Response:
        """The body, read as it streams in and given up at MAX_BODY + 1 bytes: a declared
        or chunked body over the limit is answered 413 without reading the rest, and the
        connection is closed so the sender cannot go on."""
        declared = request.headers.get("content-length")
        if declared is not None:
            if not _LENGTH_RE.fullmatch(declared):
                return problem(400, "Content-Length is not a number", Connection="close")
            if int(declared) > MAX_BODY:
                return problem(413, too_large, Connection="close")
        chunks: list[bytes] = []
        size = 0

        async def collect() -> bool:
            nonlocal size
            async for chunk in request.stream():
                size += len(chunk)
                if size > MAX_BODY:
                    return False
                chunks.append(chunk)
            return True

        try:
            within = await asyncio.wait_for(collect(), BODY_TIMEOUT)
        except TimeoutError:
            return problem(408, f"the body took over {BODY_TIMEOUT:g} s", Connection="close")
        if not within:
            return problem(413, too_large, Connection="close")
        return b"".join(chunks)

    async def issue(request: Request, role: str | None, compat: bool) -> Response:
        start = time.perf_counter()
        who: dict[str, Any] = {}
        response = await _issue(request, role, compat, who)
        service.metrics.observe(response.status_code, time.perf_counter() - start)
        if response.status_code >= 400:
            try:
                doc = json.loads(bytes(response.body))
                reason = doc.get("error") or doc.get("ErrorMessage") or ""
            except ValueError:
                reason = ""
            service.audit_refusal(response.status_code, str(reason), who, who.pop("role", role))
        return response

    async def _issue(
        request: Request, role: str | None, compat: bool, who: dict[str, Any]
    ) -> Response:
        header = request.headers.get("authorization")
        credential = bearer(header)
        if credential is None and compat and header is None:
            credential = request.cookies.get(TOKEN_COOKIE) or None
        challenge = {"WWW-Authenticate": "Bearer"}
        if credential is None:
            return problem(401, "missing API key or token", compat, **challenge)
        loop = asyncio.get_running_loop()
        try:
            found = await loop.run_in_executor(None, service.identify, credential)
        except oidc.TokenRejected as exc:
            return problem(401, str(exc), compat, **challenge)
        except oidc.KeysUnavailable as exc:
            return problem(503, str(exc), compat)
        if found is None:
            return problem(401, "unknown API key", compat, **challenge)
        caller, claims = found
        who["caller"] = caller.id
        subject = claims.get("sub") if claims else None
        if isinstance(subject, str):
            who["subject"] = subject[:256]
        wait = await service.admit(caller, subject if isinstance(subject, str) else None)
        if wait:
            retry = str(max(1, int(wait + 0.999)))
            return problem(429, "rate limit", compat, **{"Retry-After": retry})
        requested: dict[str, Any] = {}
        duration: int | None = None
        if compat:
            items = request.query_params.multi_items()
            if len(items) > MAX_QUERY_PARAMS:
                return problem(400, f"over {MAX_QUERY_PARAMS} query parameters", compat)
            for name, value in items:
                if name in requested:
                    return problem(400, f"query parameter {name[:64]} given twice", compat)
                requested[name] = value
        else:
            body = await read_body(request)
            if isinstance(body, Response):
                return body
            try:
                doc = bounded_loads(
                    body.decode("utf-8") or "null", max_depth=MAX_BODY_DEPTH, numbers="python"
                )
            except JsonLimitError as exc:
                return problem(400, f"the body is not accepted: {exc.msg}")
            except ValueError:  # not JSON, or not UTF-8
                return problem(400, "the body is not JSON")
            if not isinstance(doc, dict) or not isinstance(doc.get("role"), str):
                return problem(400, 'expected {"role": "...", "vars": {...}, "duration": seconds}')
            role = doc["role"]
            who["role"] = role[:128]
            requested = doc.get("vars") or {}
            if not isinstance(requested, dict) or not all(
                isinstance(v, str) for v in requested.values()
            ):
                return problem(400, "vars must be an object of strings")
            duration = doc.get("duration")
            if duration is not None and (
                not isinstance(duration, int) or isinstance(duration, bool)
            ):
                return problem(400, "duration must be an integer number of seconds")
        assert role is not None
        try:
            creds, session, hit = await service.token(caller, role, requested, duration, claims)
        except PermissionError as exc:
            return problem(403, str(exc), compat)
        except (ValueError, InputError) as exc:
            return problem(400, str(exc), compat)
        except CloudError as exc:
            status = 503 if exc.code.startswith("Throttling") else 502
            return problem(status, _sts_message(service, exc, role, caller, duration), compat)
        except EndpointError:
            return problem(503, "STS is unreachable", compat)
        except BudgetExceeded:
            return problem(
                503, "AssumeRole budget of this second spent", compat, **{"Retry-After": "1"}
            )
        except PermgenError as exc:
            return problem(400, str(exc), compat)
        if compat:
            return JSONResponse(
                {
                    "StatusCode": 200,
                    "AccessKeyId": creds.access_key_id,
                    "AccessKeySecret": creds.access_key_secret.reveal(),
                    "SecurityToken": creds.security_token.reveal(),
                    "Expiration": creds.expiration,
                },
                headers={"Cache-Control": "no-store"},
            )
        return JSONResponse(
            {
                "access_key_id": creds.access_key_id,
                "access_key_secret": creds.access_key_secret.reveal(),
                "security_token": creds.security_token.reveal(),
                "expiration": creds.expiration,
                "session_name": session,
                "cached": hit,
            },
            headers={"Cache-Control": "no-store"},
        )

    async def tokens(request: Request) -> Response:
        return await issue(request, None, False)

    async def compat(request: Request) -> Response:
        return await issue(request, request.path_params["role"], True)

    async def healthz(request: Request) -> Response:
        # 200 even when degraded: the instance still serves (from its cache, minting within
        # its local budget), so a load balancer should keep sending it traffic
        if service.shared and not await service.state.check():
            return JSONResponse({"status": "degraded", "redis": "unreachable"})
        return JSONResponse({"status": "ok"})

    async def metrics(request: Request) -> Response:
        return PlainTextResponse(service.metrics.text(), media_type="text/plain; version=0.0.4")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any) -> AsyncIterator[None]:
        await service.state.check()  # connects to a fleet's Redis before the first request
        yield
        await service.state.close()

    return Starlette(
        lifespan=lifespan,
        routes=[
            Route("/v1/tokens", tokens, methods=["POST"]),
            Route("/v1/sts/{role}", compat, methods=["GET"]),
            Route("/healthz", healthz, methods=["GET"]),
            Route("/metrics", metrics, methods=["GET"]),
        ],
    )


__all__ = ["Binding", "Caller", "TokenService", "create_app", "load_callers", "new_key"]
