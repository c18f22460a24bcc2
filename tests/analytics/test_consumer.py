"""Every event counts exactly once, however often it is delivered."""

import random
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from pymongo.errors import AutoReconnect

from services.analytics.app import declare_consumers
from services.analytics.buckets import Grain
from services.analytics.increments import FOLLOWERS, GROUP_MESSAGES, ZALO_EVENTS
from services.analytics.ledger import BatchResult, CounterLedger, Events, durable_database
from services.analytics.pullers import consuming
from services.analytics.settings import AnalyticsSettings
from services.analytics.store import MetricsStore
from shared.events.zalo import ZaloEventKind, ZaloEventReceived
from shared.mongo import connect_mongo
from tests.analytics.builders import zalo_event
from tests.analytics.conftest import publish_events, running, wait_all_acked

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stream_cleanup")]

KINDS = (
    [ZaloEventKind.FOLLOW] * 5
    + [ZaloEventKind.UNFOLLOW] * 2
    + [ZaloEventKind.USER_MESSAGE, ZaloEventKind.GROUP_MESSAGE, ZaloEventKind.OA_MESSAGE]
)


def mixed_events(count: int, seed: int = 7) -> list[ZaloEventReceived]:
    rng = random.Random(seed)
    start = datetime(2026, 11, 18, 15, 0, tzinfo=UTC)
    return [
        zalo_event(
            rng.choice(KINDS),
            start + timedelta(minutes=rng.randrange(6 * 60)),
            group_id=f"g{rng.randrange(3)}",
        )
        for _ in range(count)
    ]


def expected_day_counts(events: list[ZaloEventReceived]) -> Counter[tuple[str, str]]:
    expected: Counter[tuple[str, str]] = Counter()
    for event in events:
        day = (event.occurred_at + timedelta(hours=7)).date().isoformat()
        expected[(day, str(event.kind))] += 1
    return expected


async def stored_day_counts(app, metric: str, field: str, dim: str) -> Counter[tuple[str, str]]:
    docs = await app.state.service.store.counters(metric, Grain.DAY)
    return Counter(
        {(d["b"], d["d"].get(dim, "")): d["n"].get(field, 0) for d in docs if d["n"].get(field, 0)}
    )


async def test_every_event_delivered_twice_counts_once(settings: AnalyticsSettings) -> None:
    events = mixed_events(600)
    async with running(settings) as app:
        await publish_events(settings, events)
        again = events[:]
        random.Random(1).shuffle(again)
        await publish_events(settings, again, dedup=False)  # past the stream's dedup window
        pipeline = app.state.service.writer.pipeline
        await pipeline.wait_until(lambda s: s.counted + s.duplicates >= 1200, timeout=30)

        assert pipeline.stats.counted == 600
        assert pipeline.stats.duplicates == 600
        assert await stored_day_counts(app, ZALO_EVENTS, "n", "kind") == expected_day_counts(events)
        follows = sum(e.kind is ZaloEventKind.FOLLOW for e in events)
        docs = await app.state.service.store.counters(FOLLOWERS, Grain.HOUR)
        assert sum(d["n"].get("follow", 0) for d in docs) == follows
        group_docs = await app.state.service.store.counters(GROUP_MESSAGES, Grain.DAY)
        assert sum(d["n"]["n"] for d in group_docs) == sum(
            e.kind is ZaloEventKind.GROUP_MESSAGE for e in events
        )


async def test_duplicates_within_one_batch_count_once(settings: AnalyticsSettings) -> None:
    event = zalo_event(ZaloEventKind.FOLLOW)
    async with running(settings) as app:
        await publish_events(settings, [event, event, event], dedup=False)
        await app.state.service.writer.pipeline.wait_until(
            lambda s: s.counted + s.duplicates >= 3, timeout=10
        )
        docs = await app.state.service.store.counters(FOLLOWERS, Grain.DAY)
        assert [d["n"] for d in docs] == [{"follow": 1}]


class FailsOnce(CounterLedger):
    """The database fails once, after the first batch's counters were written, before the
    batch was marked applied (the worst moment for double counting)."""

    failed, failed_events = False, 0

    async def apply(self, events: Events) -> BatchResult:
        if not self.failed_events:
            self.failed_events = len(dict(events))
        return await super().apply(events)

    async def _write_counters(self, batch: str, ops: list[Any]) -> None:
        await super()._write_counters(batch, ops)
        if not self.failed:
            self.failed = True
            raise AutoReconnect("connection lost")


async def test_a_failed_batch_comes_again_and_later_batches_go_on(
    settings: AnalyticsSettings,
) -> None:
    events = mixed_events(500, seed=3)
    await declare_consumers(settings)
    await publish_events(settings, events)
    mongo: Any = connect_mongo(settings.mongodb_url)
    try:
        db = durable_database(mongo, settings.mongodb_database)
        ledger = FailsOnce(db)
        small_batches = settings.model_copy(update={"max_write_batch": 200})
        async with consuming(small_batches, ledger) as pipeline:
            await pipeline.wait_until(lambda s: s.counted >= 500, timeout=30)
            await wait_all_acked(settings)
        assert pipeline.stats.failed_batches == 1
        # The failed batch's events came back once each: found in its journal, which was
        # finished (not written again) and only then reported counted.
        assert ledger.failed_events > 0
        assert (pipeline.stats.counted, pipeline.stats.duplicates) == (500, 0)
        store = MetricsStore(db, settings)
        docs = await store.counters(ZALO_EVENTS, Grain.DAY)
        assert Counter({(d["b"], d["d"]["kind"]): d["n"]["n"] for d in docs}) == (
            expected_day_counts(events)
        )
    finally:
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()
