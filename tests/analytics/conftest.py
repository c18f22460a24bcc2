"""Fixtures for analytics: settings with their own stream, subjects and database per test."""

import contextlib
import json
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from typing import Any

import pytest
from fastapi import FastAPI
from nats.js.errors import NotFoundError

from services.analytics.app import create_app
from services.analytics.settings import AnalyticsSettings
from shared.auth import token_digest
from shared.events.zalo import ZaloEventReceived
from shared.jetstream import connect
from shared.mongo import connect_mongo
from shared.subjects import zalo_event_subject

ANALYST_TOKEN = "analyst-token-for-tests"
OFFICER_TOKEN = "officer-token-for-tests"
STAFF = {
    token_digest(ANALYST_TOKEN): {"id": "a1", "name": "Phân tích", "roles": ["analyst"]},
    token_digest(OFFICER_TOKEN): {"id": "o1", "name": "Cán bộ", "roles": ["officer"]},
}


@pytest.fixture
def settings(unique: str, nats_url: str, mongodb_url: str) -> AnalyticsSettings:
    return AnalyticsSettings(
        nats_url=nats_url,
        mongodb_url=mongodb_url,
        mongodb_database=f"analytics_{unique}",
        zalo_events_stream=f"ZE_{unique}",
        zalo_subject_filter=f"t{unique}.zalo.event.>",
        tips_stream=f"TT_{unique}",
        tips_subject_filter=f"t{unique}.tips.>",
        broadcast_stream=f"TB_{unique}",
        broadcast_subject_filter=f"t{unique}.broadcast.outcome.>",
        batch_size=200,
        batch_timeout=0.1,
        ack_wait=4.0,
        retry_delay=0.05,
        staff_tokens=json.dumps(STAFF),
        snapshots_stream=f"TS_{unique}",
        snapshots_subject_filter=f"t{unique}.analytics.snapshot.>",
        snapshot_interval=0,
        writer_lease_bucket=f"aw_{unique}",
        writer_lease_ttl=1.0,
    )


def subject_for(settings: AnalyticsSettings, kind: str) -> str:
    return settings.zalo_subject_filter.removesuffix("zalo.event.>") + zalo_event_subject(kind)


@asynccontextmanager
async def running(settings: AnalyticsSettings, keep: bool = False) -> AsyncIterator[FastAPI]:
    """The app with its lifespan running (consumers started); the database is dropped after
    unless `keep`."""
    app = create_app(settings)
    try:
        async with app.router.lifespan_context(app):
            yield app
    finally:
        if not keep:
            await drop_database(settings)


async def drop_database(settings: AnalyticsSettings) -> None:
    client: Any = connect_mongo(settings.mongodb_url)
    await client.drop_database(settings.mongodb_database)
    await client.close()


async def publish_events(
    settings: AnalyticsSettings, events: Iterable[ZaloEventReceived], dedup: bool = True
) -> int:
    """Publish events to the test stream; `dedup=False` publishes without `Nats-Msg-Id`."""
    nc = await connect(settings.nats_url, name="tests-publisher")
    count = 0
    try:
        js = nc.jetstream()
        for event in events:
            headers = {"Nats-Msg-Id": event.event_id} if dedup else None
            await js.publish(
                subject_for(settings, event.kind), event.model_dump_json().encode(), headers=headers
            )
            count += 1
    finally:
        await nc.close()
    return count


async def delete_stream(settings: AnalyticsSettings) -> None:
    nc = await connect(settings.nats_url, name="tests-cleanup")
    try:
        streams = (
            settings.zalo_events_stream,
            settings.tips_stream,
            settings.broadcast_stream,
            settings.snapshots_stream,
        )
        for name in streams:
            with contextlib.suppress(NotFoundError):
                await nc.jetstream().delete_stream(name)
        with contextlib.suppress(NotFoundError):
            await nc.jetstream().delete_key_value(settings.writer_lease_bucket)
    finally:
        await nc.close()


@pytest.fixture
async def stream_cleanup(settings: AnalyticsSettings) -> AsyncIterator[None]:
    yield
    await delete_stream(settings)
