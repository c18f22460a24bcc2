"""A running reports service on the real NATS and MongoDB-wire servers, replying through the
fake Zalo server, plus helpers to publish citizens' messages and wait for the outcome."""

import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from nats.js.errors import NotFoundError

from services.reports.app import create_app
from services.reports.services import Reports
from services.reports.settings import ReportsSettings
from services.reports.store import ReportsStore
from shared.events.zalo import ZaloEventReceived
from shared.jetstream import connect
from shared.mongo import connect_mongo
from shared.subjects import TIPS_STREAM, ZALO_EVENTS_STREAM, zalo_event_subject
from tests.fixtures.fake_zalo import FakeZalo
from tests.polling import eventually
from tests.reports.builders import CITIZEN, NEIGHBOUR, staff_tokens_json


async def delete_streams(nc: NatsClient) -> None:
    """Streams with these fixed subjects must not overlap with a previous test's."""
    js = nc.jetstream()
    for name in (ZALO_EVENTS_STREAM.name, TIPS_STREAM.name):
        with contextlib.suppress(NotFoundError):
            await js.delete_stream(name)


@dataclass
class Harness:
    app: FastAPI
    settings: ReportsSettings
    http: httpx.AsyncClient
    nc: NatsClient
    fake: FakeZalo

    @property
    def reports(self) -> Reports:
        reports: Reports = self.app.state.service.reports
        return reports

    async def publish(self, event: ZaloEventReceived, msg_id: str | None = None) -> None:
        await self.nc.jetstream().publish(
            zalo_event_subject(event.kind),
            event.model_dump_json().encode(),
            stream=self.settings.zalo_events_stream,
            headers={"Nats-Msg-Id": msg_id or event.event_id},
        )

    async def processed(self, event_id: str, timeout: float = 30.0) -> dict[str, Any]:
        """The intake ledger entry of an event, once the service has handled it."""
        record = await eventually(lambda: self.reports.store.seen(event_id), timeout)
        return dict(record.model_dump())

    async def cases(self) -> list[dict[str, Any]]:
        return await self.reports.store.cases.find({}).to_list(None)


@pytest.fixture
async def store(mongodb_url: str, unique: str) -> AsyncIterator[ReportsStore]:
    """The reports store alone, in a database of its own (dropped after the test)."""
    client = connect_mongo(mongodb_url)
    try:
        yield ReportsStore(client[f"store_{unique}"])
    finally:
        await client.drop_database(f"store_{unique}")
        await client.close()


@pytest.fixture
def reports_settings(
    nats_url: str, mongodb_url: str, unique: str, fake_zalo: FakeZalo
) -> Callable[..., ReportsSettings]:
    def build(**overrides: Any) -> ReportsSettings:
        values: dict[str, Any] = {
            **fake_zalo.settings().model_dump(),
            "nats_url": nats_url,
            "mongodb_url": mongodb_url,
            "mongodb_database": f"reports_{unique}",
            "declare_zalo_stream": True,
            "intake_durable": f"reports-intake-{unique}",
            "staff_tokens": staff_tokens_json(),
            "places_extra_file": None,
            "sla_check_seconds": 3600.0,
            "intake_ack_wait": 5.0,
        }
        return ReportsSettings(**(values | overrides))

    return build


@pytest.fixture
async def reports(
    reports_settings: Callable[..., ReportsSettings], nats_url: str, fake_zalo: FakeZalo
) -> AsyncIterator[Callable[..., Awaitable[Harness]]]:
    """Factory: `await reports(**settings)` -> a started service (stopped after the test)."""
    for citizen in (CITIZEN, NEIGHBOUR):
        fake_zalo.admin.add_user(citizen, display_name="Người dân", is_follower=True)
        fake_zalo.admin.interact(citizen)
    nc = await connect(nats_url, name="tests-reports")
    await delete_streams(nc)
    async with contextlib.AsyncExitStack() as stack:

        async def start(**overrides: Any) -> Harness:
            settings = reports_settings(**overrides)
            app = create_app(settings)
            await stack.enter_async_context(app.router.lifespan_context(app))
            http = await stack.enter_async_context(
                httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://reports")
            )
            return Harness(app, settings, http, nc, fake_zalo)

        try:
            yield start
        finally:
            await stack.aclose()
            await delete_streams(nc)
            await nc.close()
