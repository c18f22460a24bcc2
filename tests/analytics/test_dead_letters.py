"""Poison events: the pipeline catches only what it can wait out (MongoDB or NATS away). An
event it cannot decode, or fails on for any other reason on its consumer's last delivery, is
recorded on `deadletter.analytics` with the error and terminated; the events around it are
counted and nothing loops forever."""

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from services.analytics.app import declare_consumers
from services.analytics.ledger import BatchResult, CounterLedger, Events, durable_database
from services.analytics.pullers import consuming
from services.analytics.settings import AnalyticsSettings
from shared.events.zalo import ZaloEventKind
from shared.jetstream import connect
from shared.mongo import connect_mongo
from shared.subjects import ANALYTICS_ZALO_DURABLE, dead_letter_subject
from tests.analytics.builders import zalo_event
from tests.analytics.conftest import publish_events, subject_for, wait_all_acked
from tests.contracts.golden import check_golden

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stream_cleanup")]

DELIVERIES = 3


class Buggy(CounterLedger):
    """A ledger with a bug that one event sets off, whatever batch it is in."""

    poison_id = ""

    async def apply(self, events: Events) -> BatchResult:
        batch = dict(events)
        if self.poison_id in batch:
            raise KeyError("a bug that this event sets off")
        return await super().apply(events)


@asynccontextmanager
async def dead_letters(
    settings: AnalyticsSettings,
) -> AsyncIterator["asyncio.Queue[dict[str, Any]]"]:
    """The records on `deadletter.analytics` of this test's stream (the stream is shared)."""
    records: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    nc = await connect(settings.nats_url, name="tests-dead-letters")

    async def on_record(msg: Any) -> None:
        check_golden(dead_letter_subject("analytics"), msg.data)
        record = json.loads(msg.data)
        if record["stream"] == settings.zalo_events_stream:
            await records.put(record)

    try:
        await nc.subscribe(dead_letter_subject("analytics"), cb=on_record)
        await nc.flush()  # subscribed at the server before the test publishes anything
        yield records
    finally:
        await nc.close()


@pytest.fixture
def poisoned(settings: AnalyticsSettings) -> AnalyticsSettings:
    return settings.model_copy(update={"max_deliver": DELIVERIES})


async def test_an_event_that_fails_every_delivery_is_dead_lettered_after_the_last(
    poisoned: AnalyticsSettings,
) -> None:
    settings = poisoned
    events = [zalo_event(ZaloEventKind.FOLLOW) for _ in range(9)]
    await declare_consumers(settings)
    mongo: Any = connect_mongo(settings.mongodb_url)
    try:
        ledger = Buggy(durable_database(mongo, settings.mongodb_database))
        ledger.poison_id = events[4].event_id
        async with dead_letters(settings) as records, consuming(settings, ledger) as pipeline:
            await publish_events(settings, events)
            record = await asyncio.wait_for(records.get(), 60)
            await pipeline.wait_until(lambda s: s.counted >= 8, timeout=30)
            await wait_all_acked(settings)
        assert (pipeline.stats.counted, pipeline.stats.dead_lettered) == (8, 1)
        assert records.empty()
        assert record["producer"] == "analytics"
        assert record["consumer"] == ANALYTICS_ZALO_DURABLE
        assert record["deliveries"] == DELIVERIES
        assert record["subject"] == subject_for(settings, ZaloEventKind.FOLLOW)
        assert record["error"].startswith("KeyError at tests/analytics/test_dead_letters.py:")
    finally:
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()


async def test_an_undecodable_event_is_dead_lettered_at_once(
    poisoned: AnalyticsSettings,
) -> None:
    settings = poisoned
    good = zalo_event(ZaloEventKind.FOLLOW)
    await declare_consumers(settings)
    mongo: Any = connect_mongo(settings.mongodb_url)
    nc = await connect(settings.nats_url, name="tests-poison")
    try:
        ledger = CounterLedger(durable_database(mongo, settings.mongodb_database))
        async with dead_letters(settings) as records, consuming(settings, ledger) as pipeline:
            subject = subject_for(settings, ZaloEventKind.FOLLOW)
            await nc.jetstream().publish(subject, b'{"kind": "follow", "tip": "0912 345 678"}')
            await publish_events(settings, [good])
            record = await asyncio.wait_for(records.get(), 60)
            await pipeline.wait_until(lambda s: s.counted >= 1, timeout=30)
            await wait_all_acked(settings)
        assert (pipeline.stats.rejected, pipeline.stats.counted) == (1, 1)
        assert (record["subject"], record["deliveries"]) == (subject, 1)
        assert record["error"].startswith("ValidationError: ")
        assert "0912" not in json.dumps(record)
    finally:
        await nc.close()
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()
