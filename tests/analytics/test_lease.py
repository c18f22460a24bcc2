"""Two replicas: one counts, the other serves HTTP and takes over when the first stops."""

import asyncio
from contextlib import AsyncExitStack
from datetime import UTC, datetime

import pytest

from services.analytics.buckets import Grain
from services.analytics.increments import FOLLOWERS
from services.analytics.settings import AnalyticsSettings
from shared.events.zalo import ZaloEventKind
from tests.analytics.builders import zalo_event
from tests.analytics.conftest import publish_events, running

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stream_cleanup")]


async def test_one_replica_counts_and_the_other_takes_over(settings: AnalyticsSettings) -> None:
    first = [
        zalo_event(ZaloEventKind.FOLLOW, datetime(2026, 11, 20, 3, tzinfo=UTC)) for _ in range(5)
    ]
    later = [
        zalo_event(ZaloEventKind.FOLLOW, datetime(2026, 11, 20, 4, tzinfo=UTC)) for _ in range(3)
    ]
    leader_stack = AsyncExitStack()
    leader = await leader_stack.enter_async_context(running(settings, keep=True))
    try:
        async with running(settings) as standby:
            assert leader.state.service.lease.leading.is_set()
            assert not standby.state.service.lease.leading.is_set()
            await publish_events(settings, first)
            await leader.state.service.writer.pipeline.wait_until(
                lambda s: s.counted >= 5, timeout=20
            )

            await leader_stack.aclose()  # the leader stops and gives the lease up
            await asyncio.wait_for(standby.state.service.lease.leading.wait(), timeout=10)
            await publish_events(settings, first + later, dedup=False)  # old ones come again
            await standby.state.service.writer.pipeline.wait_until(
                lambda s: s.counted + s.duplicates >= 8, timeout=20
            )
            assert standby.state.service.writer.pipeline.stats.counted == 3
            docs = await standby.state.service.store.counters(FOLLOWERS, Grain.DAY)
            assert sum(d["n"].get("follow", 0) for d in docs) == 8
    finally:
        await leader_stack.aclose()
