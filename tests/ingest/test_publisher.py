"""JetStream refusing or not answering: the event is spooled, answered 200, and drains later."""

import time
from dataclasses import replace
from pathlib import Path

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import DiscardPolicy

from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from shared.events.zalo import ZaloEventReceived
from tests.ingest.builders import (
    ingest_settings,
    post,
    reset_streams,
    running_ingest,
    stream_messages,
)
from tests.polling import eventually
from tools.zalo_sim.events import EventFactory

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(nats_client: NatsClient, nats_url: str, tmp_path: Path) -> IngestSettings:
    settings = ingest_settings(nats_url, tmp_path / "spool", publish_timeout_s=0.3)
    await reset_streams(nats_client.jetstream(), settings)
    return settings


async def stored_ids(nats_client: NatsClient, settings: IngestSettings) -> list[str]:
    messages = await stream_messages(nats_client.jetstream(), settings.events_stream)
    return [ZaloEventReceived.model_validate_json(m.data).event_id for m in messages]


async def test_error_reply_spools_until_the_stream_accepts_again(
    nats_client: NatsClient, settings: IngestSettings
) -> None:
    js = nats_client.jetstream()
    factory = EventFactory(settings.zalo_app_id, seed=21)
    async with running_ingest(settings) as ingest:
        publisher: EventPublisher = ingest.app.state.ingest.publisher
        first = await post(ingest, factory.make("user_send_text"))
        assert first.json()["status"] == "published"
        config = (await js.stream_info(settings.events_stream)).config
        await js.update_stream(replace(config, max_msgs=1, discard=DiscardPolicy.NEW))
        refused = [(await post(ingest, factory.make("follow"))).json() for _ in range(3)]
        assert [r["status"] for r in refused] == ["spooled"] * 3
        assert publisher.spooled == 3
        await js.update_stream(config)
        await eventually(lambda: publisher.spooled == 0)
    expected = [first.json()["event_id"], *(r["event_id"] for r in refused)]
    assert await stored_ids(nats_client, settings) == expected


async def test_no_acknowledgement_in_time_spools(
    nats_client: NatsClient, settings: IngestSettings
) -> None:
    js = nats_client.jetstream()
    factory = EventFactory(settings.zalo_app_id, seed=22)
    async with running_ingest(settings) as ingest:
        publisher: EventPublisher = ingest.app.state.ingest.publisher
        config = (await js.stream_info(settings.events_stream)).config
        await js.delete_stream(settings.events_stream)
        # A core subscriber takes every event and never answers, as a stalled stream would.
        silent = await nats_client.subscribe("zalo.event.>")
        try:
            started = time.monotonic()
            response = await post(ingest, factory.make("user_send_image"))
            assert time.monotonic() - started < 2.0, "Zalo's 2-second deadline"
            assert (response.status_code, response.json()["status"]) == (200, "spooled")
        finally:
            await silent.unsubscribe()
        await js.add_stream(config)
        await eventually(lambda: publisher.spooled == 0)
    assert await stored_ids(nats_client, settings) == [response.json()["event_id"]]
