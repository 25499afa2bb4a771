"""The token service's state: the token cache, single flight, per-caller rate limits and the
AssumeRole budget, in process (:class:`LocalState`, the default) or shared by a fleet of
instances on Redis (:class:`RedisState`, ``permgen serve --redis``).

Both implement :class:`TokenState`. The service always keeps its in-process cache in front
(a hit there never leaves the process); the shared state is asked on a local miss. Every
Redis call is bounded by a short timeout; when one fails, the instance serves from its local
cache and mints directly within a local budget (degraded: ``/healthz`` says so, metrics count
it) and tries Redis again after :data:`RETRY_INTERVAL` seconds. Credentials are stored in
Redis only encrypted with AES-GCM (:class:`Keyring`); docs/token-service.md has the
deployment and the key rotation.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import json
import math
import os
import secrets
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, TypeVar

from permgen.account.types import Secret, StsCredentials
from permgen.errors import InputError

#: The most tokens the in-process cache keeps. Entries no longer reusable (less than
#: max(60 s, 10% of the lifetime) left) are dropped whenever a token is minted; past this
#: many, the oldest are dropped too. With ``{request}`` values the number of keys is chosen
#: by callers, so the cache must not grow with them (docs/token-service.md).
MAX_CACHED_TOKENS = 4096
#: STS allows 100 AssumeRole calls per second per account (reference ram-facts §2.2); the
#: fleet's default budget stays 20% below it.
DEFAULT_BUDGET = 80
#: Per instance and second, the AssumeRole calls an instance makes while Redis is
#: unreachable (4 instances stay within the default fleet budget).
DEFAULT_LOCAL_BUDGET = 20
#: Seconds a Redis call may take before the instance gives up on it and goes local.
DEFAULT_REDIS_TIMEOUT = 0.25
#: Seconds after Redis failed during which the instance does not try Redis again; it fails
#: at once when it refuses a connection, and after TRIP_AFTER timeouts in a row.
RETRY_INTERVAL = 1.0
TRIP_AFTER = 3
#: Seconds an instance waits for another instance's AssumeRole of the same key, and the
#: lifetime of the single-flight lock in Redis (a crashed minter's lock expires).
WAIT_FOR_PEER = 3.0
LOCK_TTL = 10.0
POLL_INTERVAL = 0.01
#: The environment variable holding the cache keys (base64, current first, comma-separated).
KEY_ENV = "PERMGEN_CACHE_KEY"
PREFIX = "permgen:"

_T = TypeVar("_T")
Key = tuple[Any, ...]


class BudgetExceeded(Exception):
    """The AssumeRole budget of this second is spent (answered 503 with Retry-After)."""


def reusable(issued: float, expires: float, now: float) -> bool:
    """Whether a cached token has more than max(60 s, 10% of its lifetime) left."""
    return expires - now > max(60.0, 0.1 * (expires - issued))


@dataclass(frozen=True)
class CachedToken:
    credentials: StsCredentials
    issued: float
    expires: float
    session: str
    instance: str  # the instance that called AssumeRole for it

    def to_json(self) -> bytes:
        c = self.credentials
        return json.dumps(
            {
                "id": c.access_key_id,
                "secret": c.access_key_secret.reveal(),
                "token": c.security_token.reveal(),
                "expiration": c.expiration,
                "issued": self.issued,
                "expires": self.expires,
                "session": self.session,
                "instance": self.instance,
            }
        ).encode()

    @staticmethod
    def from_json(data: bytes) -> CachedToken:
        d = json.loads(data)
        return CachedToken(
            StsCredentials(d["id"], Secret(d["secret"]), Secret(d["token"]), d["expiration"]),
            float(d["issued"]),
            float(d["expires"]),
            str(d["session"]),
            str(d["instance"]),
        )


class TokenState(Protocol):
    """What the service needs of its state: the in-process state and the fleet's both have it."""

    @property
    def degraded(self) -> bool: ...

    async def check(self) -> bool:
        """Whether the state's backend answers (``/healthz``)."""
        ...

    async def get(self, key: Key, now: float) -> CachedToken | None:
        """A reusable token of the key, or None."""
        ...

    async def put(self, key: Key, token: CachedToken, now: float) -> None: ...

    async def claim(self, key: Key) -> bool:
        """Whether this instance is the one to call AssumeRole for the key."""
        ...

    async def wait(self, key: Key, now: Callable[[], float]) -> CachedToken | None:
        """The token another instance is minting for the key, or None on giving up."""
        ...

    async def release(self, key: Key) -> None: ...

    async def allow(self, caller: str, rate: float, burst: int, now: float) -> float:
        """0 when the caller may go on, else the seconds to wait."""
        ...

    async def spend(self, now: float) -> None:
        """Count one AssumeRole against the budget; :class:`BudgetExceeded` when spent."""
        ...

    async def close(self) -> None: ...


#: The most rate-limit buckets held in process (one per caller, or per subject of a JWT
#: caller); past it, buckets that have refilled are dropped first, then the oldest.
MAX_BUCKETS = 100_000


@dataclass
class _Bucket:
    tokens: float
    stamp: float
    rate: float = 0.0
    burst: float = 0.0


@dataclass
class LocalState:
    """The in-process state: a bounded token cache, token buckets per caller, and (when
    ``budget`` is set) a per-second AssumeRole budget. Single flight in process is the
    service's per-key lock, so :meth:`claim` always answers yes."""

    budget: int | None = None
    cache: dict[Key, CachedToken] = field(default_factory=dict)
    buckets: dict[str, _Bucket] = field(default_factory=dict)
    _second: int = -1
    _spent: int = 0

    @property
    def degraded(self) -> bool:
        return False

    async def check(self) -> bool:
        return True

    async def get(self, key: Key, now: float) -> CachedToken | None:
        return self.lookup(key, now)

    def lookup(self, key: Key, now: float) -> CachedToken | None:
        hit = self.cache.get(key)
        if hit is not None and reusable(hit.issued, hit.expires, now):
            return hit
        return None

    async def put(self, key: Key, token: CachedToken, now: float) -> None:
        self.store(key, token, now)

    def store(self, key: Key, token: CachedToken, now: float) -> None:
        """Keep the token, after dropping tokens no longer reusable, then the oldest past
        MAX_CACHED_TOKENS - 1."""
        cache = self.cache
        cache.pop(key, None)
        for k in [k for k, v in cache.items() if not reusable(v.issued, v.expires, now)]:
            del cache[k]
        while len(cache) >= MAX_CACHED_TOKENS:
            del cache[next(iter(cache))]
        cache[key] = token

    async def claim(self, key: Key) -> bool:
        return True

    async def wait(self, key: Key, now: Callable[[], float]) -> CachedToken | None:
        return None

    async def release(self, key: Key) -> None:
        return None

    async def allow(self, caller: str, rate: float, burst: int, now: float) -> float:
        return self.take(caller, rate, burst, now)

    def take(self, caller: str, rate: float, burst: int, now: float) -> float:
        b = self.buckets.get(caller)
        if b is None:
            if len(self.buckets) >= MAX_BUCKETS:
                self._drop_full_buckets(now)
            b = self.buckets[caller] = _Bucket(float(burst), now, rate, float(burst))
        b.tokens = min(float(burst), b.tokens + max(0.0, now - b.stamp) * rate)
        b.stamp = now
        if b.tokens >= 1:
            b.tokens -= 1
            return 0.0
        return (1 - b.tokens) / rate

    def _drop_full_buckets(self, now: float) -> None:
        for key, b in list(self.buckets.items()):
            if b.tokens + max(0.0, now - b.stamp) * b.rate >= b.burst:
                del self.buckets[key]  # refilled: the same as no bucket
        while len(self.buckets) >= MAX_BUCKETS:  # none refilled: the oldest go
            del self.buckets[next(iter(self.buckets))]

    async def spend(self, now: float) -> None:
        if self.budget is None:
            return
        second = int(now)
        if second != self._second:
            self._second, self._spent = second, 0
        if self._spent >= self.budget:
            raise BudgetExceeded
        self._spent += 1

    async def close(self) -> None:
        return None


class Keyring:
    """AES-256-GCM keys for the cached credentials in Redis: the first encrypts, every one
    decrypts (rotation: put the new key first, keep the previous one until the tokens it
    encrypted have expired). A record names its key by id (the first 8 bytes of the key's
    SHA-256, in hex); the Redis key name is the associated data, so a record cannot be moved
    to another cache key. Neither keys nor plaintext are ever logged."""

    def __init__(self, keys: list[bytes]) -> None:
        if not keys:
            raise InputError("no cache key given")
        self.keys = {hashlib.sha256(k).hexdigest()[:16]: k for k in keys}
        self.current = hashlib.sha256(keys[0]).hexdigest()[:16]

    def __repr__(self) -> str:
        return f"Keyring(ids={list(self.keys)})"

    @staticmethod
    def parse(items: list[str], source: str) -> Keyring:
        keys: list[bytes] = []
        for n, item in enumerate(items, 1):
            try:
                key = base64.b64decode(item.strip(), validate=True)
            except (binascii.Error, ValueError):
                raise InputError(f"{source}: key {n} is not base64") from None
            if len(key) != 32:
                raise InputError(
                    f"{source}: key {n} is {len(key)} bytes, expected 32 (AES-256; "
                    "make one with: head -c 32 /dev/urandom | base64)"
                )
            keys.append(key)
        if not keys:
            raise InputError(f"{source}: no key")
        return Keyring(keys)

    @staticmethod
    def load(path: Path | None, environ: Mapping[str, str] = os.environ) -> Keyring:
        """The keys of ``--cache-key-file`` (one base64 key a line, current first; ``#``
        comments), else of $PERMGEN_CACHE_KEY (comma-separated, current first)."""
        if path is not None:
            try:
                text = path.read_text("utf-8")
            except (OSError, UnicodeDecodeError) as exc:
                why = getattr(exc, "strerror", None) or "not UTF-8 text"
                raise InputError(f"--cache-key-file {path}: cannot read: {why}") from None
            lines = [ln for ln in text.splitlines() if ln.strip() and not ln.startswith("#")]
            return Keyring.parse(lines, f"--cache-key-file {path}")
        value = environ.get(KEY_ENV, "")
        if not value.strip():
            raise InputError(
                f"--redis needs a cache key: set {KEY_ENV} (base64 of 32 bytes) "
                "or give --cache-key-file"
            )
        return Keyring.parse([v for v in value.split(",") if v.strip()], f"${KEY_ENV}")

    def encrypt(self, plaintext: bytes, aad: bytes) -> bytes:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        nonce = secrets.token_bytes(12)
        sealed = AESGCM(self.keys[self.current]).encrypt(nonce, plaintext, aad)
        record = {"v": 1, "kid": self.current, "n": _b64(nonce), "ct": _b64(sealed)}
        return json.dumps(record).encode()

    def decrypt(self, record: bytes, aad: bytes) -> bytes | None:
        """The plaintext, or None for a record of an unknown key, tampered with or moved."""
        from cryptography.exceptions import InvalidTag
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM

        try:
            doc = json.loads(record)
            key = self.keys.get(doc["kid"])
            if key is None:
                return None
            nonce, sealed = base64.b64decode(doc["n"]), base64.b64decode(doc["ct"])
            return AESGCM(key).decrypt(nonce, sealed, aad)
        except (InvalidTag, ValueError, KeyError, TypeError):
            return None


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def key_name(key: Key) -> str:
    """The Redis name part of a cache key: a hash, so role values never appear in Redis."""
    return hashlib.sha256(json.dumps(key, separators=(",", ":")).encode()).hexdigest()


# KEYS[1]: the caller's bucket; ARGV: rate per second, burst, now (seconds). Returns the
# milliseconds to wait, 0 when a token was taken. Runs atomically in Redis.
_BUCKET_LUA = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local now = tonumber(ARGV[3])
local b = redis.call('HMGET', KEYS[1], 'tokens', 'stamp')
local tokens = tonumber(b[1]) or burst
local stamp = tonumber(b[2]) or now
local elapsed = now - stamp
if elapsed < 0 then elapsed = 0 end
tokens = math.min(burst, tokens + elapsed * rate)
local wait = 0
if tokens >= 1 then tokens = tokens - 1 else wait = math.ceil((1 - tokens) / rate * 1000) end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'stamp', tostring(math.max(now, stamp)))
redis.call('PEXPIRE', KEYS[1], math.ceil(burst / rate * 1000) + 1000)
return wait
"""
# KEYS[1]: the lock; ARGV[1]: this instance's claim. Deletes the lock only if it is ours.
_RELEASE_LUA = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""


@dataclass
class FleetCounters:
    redis_errors: int = 0
    decrypt_failures: int = 0
    peer_waits: int = 0
    peer_wait_timeouts: int = 0
    budget_rejections: int = 0


class RedisState:
    """The fleet's state on Redis, with ``local`` as the fallback when Redis fails."""

    def __init__(
        self,
        url: str,
        keyring: Keyring,
        instance: str,
        *,
        local: LocalState,
        budget: int = DEFAULT_BUDGET,
        timeout: float = DEFAULT_REDIS_TIMEOUT,
        wait_for_peer: float = WAIT_FOR_PEER,
    ) -> None:
        self.url, self.keyring, self.instance, self.local = url, keyring, instance, local
        self.budget, self.timeout, self.wait_for_peer = budget, timeout, wait_for_peer
        self.counters = FleetCounters()
        self._client: Any = None
        self._down_until = 0.0
        self._up = True
        self._claims: dict[Key, str] = {}
        self._failures = 0
        # imported now, not on the first request: an import inside the event loop stalls
        # every request in flight past its Redis timeout
        import cryptography.hazmat.primitives.ciphers.aead  # noqa: F401
        import redis.asyncio  # noqa: F401

        _redis_error()

    def __repr__(self) -> str:  # the URL may carry a password
        return f"RedisState(instance={self.instance!r})"

    @property
    def degraded(self) -> bool:
        return not self._up

    def _redis(self) -> Any:
        if self._client is None:
            import redis.asyncio

            self._client = redis.asyncio.Redis.from_url(
                self.url,
                socket_timeout=self.timeout,
                socket_connect_timeout=self.timeout,
                retry_on_timeout=False,
                retry=None,
                health_check_interval=0,
            )
        return self._client

    async def _call(
        self, op: Callable[[Any], Awaitable[_T]], fallback: Callable[[], Awaitable[_T]]
    ) -> _T:
        """``op`` on Redis within the timeout; on failure (or within RETRY_INTERVAL of the
        last one) the fallback."""
        if time.monotonic() < self._down_until:
            return await fallback()
        try:
            result = await asyncio.wait_for(op(self._redis()), self.timeout)
        except (OSError, TimeoutError, _redis_error()) as exc:
            # Redis refusing connections is down at once; a slow answer only after
            # TRIP_AFTER in a row (one slow call under load should not send every key local)
            self.counters.redis_errors += 1
            self._failures += 1
            if self._failures >= TRIP_AFTER or not _is_timeout(exc):
                self._up = False
                self._down_until = time.monotonic() + RETRY_INTERVAL
            return await fallback()
        self._up = True
        self._failures = 0
        return result

    async def _drop_connections(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.aclose(), self.timeout)
            except (OSError, TimeoutError, _redis_error()):
                pass

    async def check(self) -> bool:
        async def ping(r: Any) -> bool:
            return bool(await r.ping())

        async def down() -> bool:
            return False

        return await self._call(ping, down)

    async def get(self, key: Key, now: float) -> CachedToken | None:
        name = PREFIX + "tok:" + key_name(key)

        async def read(r: Any) -> bytes | None:
            value: bytes | None = await r.get(name)
            return value

        async def none() -> bytes | None:
            return None

        record = await self._call(read, none)
        if record is None:
            return None
        plain = self.keyring.decrypt(record, name.encode())
        if plain is None:
            self.counters.decrypt_failures += 1
            return None
        try:
            token = CachedToken.from_json(plain)
        except (ValueError, KeyError, TypeError):
            self.counters.decrypt_failures += 1
            return None
        return token if reusable(token.issued, token.expires, now) else None

    async def put(self, key: Key, token: CachedToken, now: float) -> None:
        name = PREFIX + "tok:" + key_name(key)
        margin = max(60.0, 0.1 * (token.expires - token.issued))
        ttl = math.floor((token.expires - margin - now) * 1000)
        if ttl <= 0:
            return
        record = self.keyring.encrypt(token.to_json(), name.encode())

        async def write(r: Any) -> None:
            await r.set(name, record, px=ttl)

        await self._call(write, _nothing)

    async def claim(self, key: Key) -> bool:
        name = PREFIX + "lock:" + key_name(key)
        mine = f"{self.instance}:{secrets.token_hex(8)}"

        async def take(r: Any) -> bool:
            return bool(await r.set(name, mine, nx=True, px=int(LOCK_TTL * 1000)))

        async def yes() -> bool:
            return True

        claimed = await self._call(take, yes)
        if claimed:
            self._claims[key] = mine
        return claimed

    async def wait(self, key: Key, now: Callable[[], float]) -> CachedToken | None:
        """Poll for the token another instance is minting, up to ``wait_for_peer`` seconds;
        None when the wait ends without one (the minter failed, or Redis did)."""
        self.counters.peer_waits += 1
        lock = PREFIX + "lock:" + key_name(key)
        deadline = time.monotonic() + self.wait_for_peer
        while time.monotonic() < deadline:
            await asyncio.sleep(POLL_INTERVAL)
            token = await self.get(key, now())
            if token is not None:
                return token
            if self.degraded:
                return None

            async def held(r: Any) -> bool:
                return bool(await r.exists(lock))

            async def no() -> bool:
                return False

            if not await self._call(held, no):
                return await self.get(key, now())  # the minter is done (or gave up)
        self.counters.peer_wait_timeouts += 1
        return None

    async def release(self, key: Key) -> None:
        mine = self._claims.pop(key, None)
        if mine is None:
            return
        name = PREFIX + "lock:" + key_name(key)

        async def delete(r: Any) -> None:
            await r.eval(_RELEASE_LUA, 1, name, mine)

        await self._call(delete, _nothing)

    async def allow(self, caller: str, rate: float, burst: int, now: float) -> float:
        name = PREFIX + "rate:" + hashlib.sha256(caller.encode()).hexdigest()

        async def bucket(r: Any) -> float:
            wait_ms = await r.eval(_BUCKET_LUA, 1, name, repr(rate), str(burst), repr(now))
            return int(wait_ms) / 1000.0

        async def local() -> float:
            return self.local.take(caller, rate, burst, now)

        return await self._call(bucket, local)

    async def spend(self, now: float) -> None:
        second = int(now)
        name = f"{PREFIX}budget:{second}"

        async def count(r: Any) -> int:
            async with r.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.expire(name, 5)
                n, _ = await pipe.execute()
            return int(n)

        async def local() -> int:
            await self.local.spend(now)
            return 0

        try:
            n = await self._call(count, local)
        except BudgetExceeded:
            self.counters.budget_rejections += 1
            raise
        if n > self.budget:
            self.counters.budget_rejections += 1
            raise BudgetExceeded

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None:
            try:
                await asyncio.wait_for(client.aclose(), 1.0)
            except (OSError, TimeoutError, _redis_error()):
                pass


async def _nothing() -> None:
    return None


def _is_timeout(exc: BaseException) -> bool:
    import redis.exceptions

    return isinstance(exc, (TimeoutError, redis.exceptions.TimeoutError))


def _redis_error() -> type[Exception]:
    import redis.exceptions

    return redis.exceptions.RedisError


def default_instance_id() -> str:
    import socket

    return f"{socket.gethostname()}:{os.getpid()}"


__all__ = [
    "DEFAULT_BUDGET",
    "DEFAULT_LOCAL_BUDGET",
    "BudgetExceeded",
    "CachedToken",
    "Keyring",
    "LocalState",
    "RedisState",
    "TokenState",
    "default_instance_id",
    "reusable",
]
