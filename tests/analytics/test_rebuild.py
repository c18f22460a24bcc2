"""Dropping the aggregates and replaying the streams gives identical counters."""

import random
from typing import Any

import pytest

from services.analytics.rebuild import ServiceRunning, rebuild
from services.analytics.settings import AnalyticsSettings
from services.analytics.store import MetricsStore
from shared.mongo import connect_mongo
from tests.analytics.conftest import drop_database, publish_events, running
from tests.analytics.test_consumer import mixed_events

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("stream_cleanup")]


async def snapshot(settings: AnalyticsSettings) -> dict[str, Any]:
    client: Any = connect_mongo(settings.mongodb_url)
    try:
        return await MetricsStore(client[settings.mongodb_database], settings).counter_snapshot()
    finally:
        await client.close()


async def test_rebuild_gives_identical_aggregates(settings: AnalyticsSettings) -> None:
    events = mixed_events(400, seed=11)
    again = events[:150]
    random.Random(2).shuffle(again)
    try:
        async with running(settings, keep=True) as app:
            await publish_events(settings, events)
            await publish_events(settings, again, dedup=False)
            await app.state.service.writer.pipeline.wait_until(
                lambda s: s.counted + s.duplicates >= 550, timeout=30
            )
        before = await snapshot(settings)
        assert len(before) > 5

        async with running(settings, keep=True):
            with pytest.raises(ServiceRunning):
                await rebuild(settings, timeout=60)
        stats = await rebuild(settings, timeout=60)  # the service is stopped, as documented
        assert (stats.counted, stats.duplicates) == (400, 150)
        assert await snapshot(settings) == before
    finally:
        await drop_database(settings)
