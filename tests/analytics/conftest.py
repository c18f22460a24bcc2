"""Fixtures for analytics: settings with their own stream, subjects and database per test."""

import contextlib
import json
from collections.abc import AsyncIterator, Iterable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from nats.js.errors import NotFoundError

from services.analytics.app import create_app
from services.analytics.registry import Group
from services.analytics.settings import AnalyticsSettings
from shared.auth import token_digest
from shared.events.broadcast import RegistryGroupChanged
from shared.events.envelope import event_bytes
from shared.events.zalo import ZaloEventReceived
from shared.jetstream import connect
from shared.mongo import connect_mongo
from shared.places import DEFAULT_UNITS_FILE
from shared.subjects import ANALYTICS_ZALO_DURABLE, zalo_event_subject
from tests.polling import eventually

ANALYST_TOKEN = "analyst-token-for-tests"
OFFICER_TOKEN = "officer-token-for-tests"
NAM_LY_ANALYST_TOKEN = "nam-ly-analyst-token-for-tests"
STAFF = {
    token_digest(NAM_LY_ANALYST_TOKEN): {
        "id": "a2",
        "name": "Lãnh đạo Nam Lý",
        "roles": ["analyst"],
        "wards": ["nam-ly"],
    },
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
        registry_subject_filter=f"t{unique}.broadcast.registry.group",
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


def units_file(directory: Path, households: Mapping[str, int | None]) -> Path:
    """The reference unit file with households set for some wards, marked as demo data."""
    raw = json.loads(DEFAULT_UNITS_FILE.read_text(encoding="utf-8"))
    for unit in raw["units"]:
        unit["households"] = households.get(unit["slug"])
    path = directory / "units.DEMO.json"
    path.write_text(json.dumps({**raw, "demo": True}, ensure_ascii=False), encoding="utf-8")
    return path


async def announce_groups(app: FastAPI, settings: AnalyticsSettings, groups: list[Group]) -> None:
    """Publish `groups` as broadcast's registry would, and wait until analytics holds them."""
    at = datetime.now(UTC)
    events = [
        RegistryGroupChanged(
            event_id=f"{g.id}:v1:{n}",
            occurred_at=at,
            group_id=g.id,
            name=g.name,
            ward=g.ward,
            member_count=g.members,
            households=g.households,
            channel="oa",
            active=True,
            is_test=False,
            changed_at=at,
        )
        for n, g in enumerate(groups)
    ]
    nc = await connect(settings.nats_url, name="tests-registry")
    try:
        js = nc.jetstream()
        for event in events:
            await js.publish(
                settings.registry_subject_filter,
                event_bytes(event),
                headers={"Nats-Msg-Id": event.event_id},
            )
    finally:
        await nc.close()

    async def taken() -> bool:
        return len(await app.state.service.store.groups()) >= len(groups)

    # A generous deadline (was ~10 s): only a hang should fail, not a loaded host.
    await eventually(taken, progress=lambda: "analytics did not take the registry's groups")


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


async def wait_all_acked(settings: AnalyticsSettings) -> None:
    """Every message of the Zalo durable was acknowledged or terminated: none comes again."""
    nc = await connect(settings.nats_url, name="tests-acked")
    try:
        js = nc.jetstream()

        async def acked() -> bool:
            info = await js.consumer_info(settings.zalo_events_stream, ANALYTICS_ZALO_DURABLE)
            return info.num_pending == 0 and info.num_ack_pending == 0

        await eventually(acked)  # a generous deadline (was 10 s): only a hang should fail
    finally:
        await nc.close()
