"""The token service's cache over the real emulator, with an injected clock: when a token is
reused and when it is minted again, and that the cache and the single-flight locks stay
bounded under churn of caller-chosen ``{request}`` values.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

import permgen.sts.fleet
from permgen.account.sdk import SdkStsClient
from permgen.account.types import AccessKey, ClientConfig, Secret
from permgen.emulator import Backend, Emulator
from permgen.spec.load import load_spec
from permgen.sts.service import Caller, TokenService, load_callers, new_key
from tests.conftest import EXAMPLES
from tests.emulator.test_emulator import TRUST, Clock, attach_system, call, client


@pytest.fixture(scope="module")
def _account() -> Iterator[tuple[Emulator, Clock, SdkStsClient]]:
    clock = Clock()
    with Emulator(Backend(clock=clock)) as emu:
        admin = client(emu)
        call(admin, "CreateUser", UserName="vendor")
        call(admin, "CreateRole", RoleName="oss-uploader", AssumeRolePolicyDocument=TRUST)
        attach_system(admin, "vendor", "AliyunSTSAssumeRoleAccess")
        key = emu.backend.add_key("user/vendor")
        sts = SdkStsClient(
            AccessKey(key.key_id, Secret(key.secret)), ClientConfig(endpoint=emu.url)
        )
        yield emu, clock, sts


def _callers(tmp_path: Path) -> tuple[Caller, Caller]:
    spec = load_spec(EXAMPLES / "platform.yaml")
    callers = tmp_path / "callers.yaml"
    callers.write_text(
        f"callers:\n"
        f"  - {{id: alice, key_sha256: {new_key()[1]}, roles: {{mobile-uploader: {{vars: {{user: '{{caller}}'}}}}}}}}\n"
        f"  - {{id: bob, key_sha256: {new_key()[1]}, roles: {{mobile-uploader: {{vars: {{user: '{{request}}'}}}}}}}}\n"
    )
    alice, bob = load_callers(callers, spec)
    return alice, bob


@pytest.fixture
def setup(
    _account: tuple[Emulator, Clock, SdkStsClient], tmp_path: Path
) -> tuple[Emulator, Clock, TokenService, Caller, Caller]:
    emu, clock, sts = _account
    alice, bob = _callers(tmp_path)
    service = TokenService(load_spec(EXAMPLES / "platform.yaml"), [alice, bob], sts, clock=clock)
    return emu, clock, service, alice, bob


def test_a_token_is_reused_until_less_than_its_margin_remains(
    setup: tuple[Emulator, Clock, TokenService, Caller, Caller],
) -> None:
    emu, clock, service, alice, _ = setup
    before = emu.calls.get("AssumeRole", 0)
    start = clock.now
    first, _, hit = asyncio.run(service.token(alice, "mobile-uploader", {}, None))
    assert not hit and emu.calls["AssumeRole"] == before + 1
    # 900 s lifetime (examples/platform.yaml): the margin is max(60 s, 90 s) = 90 s
    clock.now = start + 900 - 91
    again, _, hit = asyncio.run(service.token(alice, "mobile-uploader", {}, None))
    assert hit and again.access_key_id == first.access_key_id
    assert emu.calls["AssumeRole"] == before + 1
    clock.now = start + 900 - 89
    fresh, _, hit = asyncio.run(service.token(alice, "mobile-uploader", {}, None))
    assert not hit and fresh.access_key_id != first.access_key_id
    assert emu.calls["AssumeRole"] == before + 2
    assert service.metrics.cache_hits == 1 and service.metrics.cache_misses == 2


def test_the_cache_drops_tokens_past_their_margin_and_stays_flat_under_churn(
    setup: tuple[Emulator, Clock, TokenService, Caller, Caller],
) -> None:
    _, clock, service, _, bob = setup
    start = clock.now
    sizes = []
    for n in range(40):  # a new {request} value every 100 s: each is minted once
        clock.now = start + 100 * n
        _, _, hit = asyncio.run(service.token(bob, "mobile-uploader", {"user": f"u{n}"}, None))
        assert not hit
        sizes.append(len(service.cache))
        assert service.locks == {}  # no lock is kept for a key with nothing in flight
    # a 900 s token is reusable for 810 s: at most 9 keys (the last 810 s) are kept
    assert max(sizes) == 9 and sizes[-1] == 9
    assert all(
        key[1] == (("user", f"u{n}"),) for n, key in zip(range(31, 40), service.cache, strict=True)
    )


def test_the_cache_never_holds_more_than_its_cap(
    setup: tuple[Emulator, Clock, TokenService, Caller, Caller],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, _, service, _, bob = setup
    monkeypatch.setattr(permgen.sts.fleet, "MAX_CACHED_TOKENS", 5)
    for n in range(12):  # the clock stands still: every token stays reusable
        asyncio.run(service.token(bob, "mobile-uploader", {"user": f"c{n}"}, None))
        assert len(service.cache) <= 5
    assert [key[1][0][1] for key in service.cache] == ["c7", "c8", "c9", "c10", "c11"]
    # the newest is still served from the cache
    _, _, hit = asyncio.run(service.token(bob, "mobile-uploader", {"user": "c11"}, None))
    assert hit


def test_concurrent_requests_for_one_key_share_one_assume_role_and_leave_no_lock(
    setup: tuple[Emulator, Clock, TokenService, Caller, Caller],
) -> None:
    emu, _, service, alice, _ = setup
    before = emu.calls.get("AssumeRole", 0)

    async def many() -> list[bool]:
        results = await asyncio.gather(
            *(service.token(alice, "mobile-uploader", {}, None) for _ in range(5))
        )
        return [hit for _, _, hit in results]

    hits = asyncio.run(many())
    assert sorted(hits) == [False, True, True, True, True]
    assert emu.calls["AssumeRole"] == before + 1
    assert service.locks == {}


def test_rate_limit_buckets_are_bounded_refilled_ones_first(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Many distinct subjects cannot grow the bucket map without bound: past the cap, the
    buckets that have refilled (the same as none) go first, then the oldest."""
    from permgen.sts import fleet

    monkeypatch.setattr(fleet, "MAX_BUCKETS", 4)
    state = fleet.LocalState()
    for i in range(4):
        assert state.take(f"app\x00user{i}", 1.0, 2, now=0.0) == 0.0
    state.take("app\x00user0", 1.0, 2, now=0.0)  # user0 is now empty; the rest hold 1 token
    assert state.take("app\x00user4", 1.0, 2, now=0.5) == 0.0  # at the cap: none refilled yet
    assert len(state.buckets) == 4 and "app\x00user0" not in state.buckets  # the oldest went
    # two seconds on, every bucket has refilled: a new subject drops them all
    assert state.take("app\x00user5", 1.0, 2, now=3.0) == 0.0
    assert list(state.buckets) == ["app\x00user5"]
