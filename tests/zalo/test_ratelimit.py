"""The client-side rate limit: GCRA arithmetic, and the limit holding across processes."""

import pytest

from shared.zalo.ratelimit import MemoryRateStore, RateLimiter
from tests.fixtures.fake_zalo import FakeZalo
from tools.fake_zalo.rate_probe import measure


class TestGcra:
    async def test_slots_are_spaced_by_the_interval(self) -> None:
        store = MemoryRateStore()
        slots = [await store.reserve("read", 0.1, 0.0, now=100.0) for _ in range(4)]
        assert slots == pytest.approx([100.0, 100.1, 100.2, 100.3])

    async def test_burst_lets_the_first_calls_through_at_once(self) -> None:
        store = MemoryRateStore()
        slots = [await store.reserve("read", 0.1, 0.2, now=100.0) for _ in range(4)]
        assert slots == pytest.approx([100.0, 100.0, 100.0, 100.1])

    async def test_idle_time_does_not_bank_more_than_the_burst(self) -> None:
        store = MemoryRateStore()
        await store.reserve("read", 0.1, 0.0, now=100.0)
        slots = [await store.reserve("read", 0.1, 0.0, now=200.0) for _ in range(2)]
        assert slots == pytest.approx([200.0, 200.1])

    async def test_families_are_independent_and_unlisted_ones_unlimited(self) -> None:
        clock = iter([0.0] * 10)
        limiter = RateLimiter(MemoryRateStore(), {"message": 1.0}, clock=lambda: next(clock))
        assert await limiter.acquire("message") == 0.0
        assert await limiter.acquire("read") == 0.0


@pytest.mark.integration
@pytest.mark.slow
async def test_limit_holds_across_two_processes(fake_zalo: FakeZalo, nats_url: str) -> None:
    limit = 40.0
    settings = fake_zalo.settings(zalo_rate_limits={"read": limit})
    result = await measure(nats_url, settings, processes=2, calls_per_process=80, tasks=4)
    assert result.calls == 160
    assert min(result.per_process) >= 40  # both processes really competed for the budget
    print(f"cross-process rate {result.rate:.2f}/s for limit {limit}: {result}")
    assert result.rate == pytest.approx(limit, rel=0.10)
