"""The client-side rate limit: GCRA arithmetic, and the limit holding across processes."""

import itertools

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import KeyValueConfig

from shared.jetstream import ensure_key_value
from shared.zalo.ratelimit import KvRateStore, MemoryRateStore, RateLimiter, SlotBlock
from tests.fixtures.fake_zalo import FakeZalo
from tools.fake_zalo.rate_probe import measure


class TestGcra:
    async def test_slots_are_spaced_by_the_interval(self) -> None:
        store = MemoryRateStore()
        slots = [(await store.reserve("read", 0.1, 0.0, now=100.0)).allowed(0) for _ in range(4)]
        assert slots == pytest.approx([100.0, 100.1, 100.2, 100.3])

    async def test_burst_lets_the_first_calls_through_at_once(self) -> None:
        store = MemoryRateStore()
        slots = [(await store.reserve("read", 0.1, 0.2, now=100.0)).allowed(0) for _ in range(4)]
        assert slots == pytest.approx([100.0, 100.0, 100.0, 100.1])

    async def test_idle_time_does_not_bank_more_than_the_burst(self) -> None:
        store = MemoryRateStore()
        await store.reserve("read", 0.1, 0.0, now=100.0)
        slots = [(await store.reserve("read", 0.1, 0.0, now=200.0)).allowed(0) for _ in range(2)]
        assert slots == pytest.approx([200.0, 200.1])

    async def test_families_are_independent_and_unlisted_ones_unlimited(self) -> None:
        clock = iter([0.0] * 10)
        limiter = RateLimiter(MemoryRateStore(), {"message": 1.0}, clock=lambda: next(clock))
        assert await limiter.acquire("message") == 0.0
        assert await limiter.acquire("read") == 0.0


# The limit is a ceiling, asserted exactly above. How close the processes come to it is a speed
# figure (bench.zalo_client: 1.000-1.001 of the limit, docs/benchmarks.md), not for a timed test:
# three processes on two busy cores reached 0.84 of it once in `make test`. This floor still
# fails a limiter that wastes a large share of its slots.
UNDER_LOAD = 0.6
# The fake stamps a call when its event loop reaches the request, not when the client sent it.
# On two cores shared with three client processes and nats-server that lag reached ~75 ms in
# CI (161 calls in one second at 150/s, clean in six quiet runs): calls sent on time in one
# second are stamped in the next. The busiest window may hold that much more; the precise
# figure (limit + 1 on a quiet machine) is bench.zalo_client's. A limiter that did not share
# its budget across processes would put three times the limit in a window and still fail.
STAMP_LAG = 0.1


@pytest.mark.integration
@pytest.mark.slow
async def test_limit_holds_across_two_processes(fake_zalo: FakeZalo, nats_url: str) -> None:
    limit = 40.0
    settings = fake_zalo.settings(zalo_rate_limits={"read": limit})
    result = await measure(nats_url, settings, processes=2, calls_per_process=80, tasks=4)
    assert result.calls == 160
    assert min(result.per_process) >= 40  # both processes really competed for the budget
    print(f"cross-process rate {result.rate:.2f}/s for limit {limit}: {result}")
    assert result.rate <= limit * 1.10
    assert result.rate >= limit * UNDER_LOAD  # the precise figure: bench.zalo_client


class TestBlocks:
    def test_block_slots_follow_the_gcra_schedule(self) -> None:
        block = SlotBlock(arrival=100.0, interval=0.1, tolerance=0.2, reserved_at=100.0, count=4)
        assert [block.allowed(i) for i in range(4)] == pytest.approx([100.0, 100.0, 100.0, 100.1])

    def test_stale_slots_are_skipped_not_used_late(self) -> None:
        block = SlotBlock(arrival=100.0, interval=0.01, tolerance=0.0, reserved_at=100.0, count=5)
        assert block.first_fresh(1, now=100.012) == 1  # 100.01 is within STALE_AFTER of now
        assert block.first_fresh(1, now=100.025) == 2  # 100.01 is stale, 100.02 is not
        assert block.first_fresh(1, now=101.0) >= block.count  # all stale: the block is spent

    async def test_one_reservation_serves_a_whole_block(self) -> None:
        store = CountingStore()
        now = [100.0]
        limiter = RateLimiter(store, {"group": 100.0}, clock=lambda: now[0], block=0.05)
        waits = []
        for i in range(11):  # each call arrives exactly at its slot: 5 slots per 50 ms block
            now[0] = 100.0 + i * 0.01
            waits.append(await limiter.acquire("group"))
        assert waits == [0.0] * 11
        assert store.counts == [5, 5, 5]
        assert store.inner._arrivals["group"] == pytest.approx(100.15)

    async def test_a_skipped_slot_is_lost_not_handed_to_later_callers(self) -> None:
        store = CountingStore()
        now = [100.0]
        limiter = RateLimiter(store, {"group": 100.0}, clock=lambda: now[0], block=0.05)
        await limiter.acquire("group")  # slot 0 of 100.00-100.04
        now[0] = 100.03  # slots 1 and 2 are stale by now
        assert await limiter.acquire("group") == 0.0  # slot 3 (100.03)
        now[0] = 100.05
        await limiter.acquire("group")  # slot 4 is stale too: a new block from 100.05
        assert store.counts == [5, 5]

    @pytest.mark.parametrize("limits", [{}, {"read": 0.0}, {"read": float("inf")}])
    async def test_unlimited_costs_no_reservation(self, limits: dict[str, float]) -> None:
        store = CountingStore()
        limiter = RateLimiter(store, limits, block=0.05)
        assert [await limiter.acquire("read") for _ in range(3)] == [0.0] * 3
        assert store.counts == []


class CountingStore:
    """A `MemoryRateStore` that remembers the size of every block reserved."""

    def __init__(self) -> None:
        self.inner = MemoryRateStore()
        self.counts: list[int] = []

    async def reserve(
        self, family: str, interval: float, tolerance: float, now: float, count: int = 1
    ) -> SlotBlock:
        self.counts.append(count)
        return await self.inner.reserve(family, interval, tolerance, now, count)


@pytest.mark.integration
async def test_kv_blocks_of_two_stores_never_overlap(nats_client: NatsClient, unique: str) -> None:
    config = KeyValueConfig(bucket=f"rate_{unique}", history=1, ttl=0.0)
    kv = await ensure_key_value(nats_client.jetstream(), config)
    first, second = KvRateStore(kv), KvRateStore(kv)  # each remembers its own last revision
    order = [first, second, first, first, second, second, first]
    blocks = [await store.reserve("group", 0.01, 0.0, now=0.0, count=5) for store in order]
    for before, after in itertools.pairwise(blocks):
        assert after.arrival >= before.arrival + 5 * 0.01 - 1e-9


@pytest.mark.integration
@pytest.mark.slow
async def test_blocks_hold_the_limit_across_three_processes(
    fake_zalo: FakeZalo, nats_url: str
) -> None:
    limit = 150.0  # 50 ms blocks of 7 slots
    settings = fake_zalo.settings(zalo_rate_limits={"read": limit}, zalo_rate_block_seconds=0.05)
    result = await measure(nats_url, settings, processes=3, calls_per_process=120, tasks=4)
    assert result.calls == 360
    print(f"3 processes, blocks: {result.rate:.2f}/s, max 1 s window {result.max_in_window()}")
    assert result.max_in_window(1.0) <= limit * (1.05 + STAMP_LAG)
    assert result.rate <= limit * 1.10  # over the whole run the stamping lag nearly cancels
    assert result.rate >= limit * UNDER_LOAD  # far below the limit: skipped slots
