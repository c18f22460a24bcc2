"""Fixtures: a broadcast service on the real NATS and MongoDB-wire servers, aimed at the fake
Zalo server, and an HTTP client for its API."""

import contextlib
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from nats.js.errors import NotFoundError

from services.broadcast.app import create_app
from services.broadcast.composition import BroadcastService
from services.broadcast.settings import BroadcastSettings
from shared.jetstream import connect
from shared.subjects import BROADCAST_EVENTS_STREAM, BROADCAST_WORK_STREAM, ZALO_EVENTS_STREAM
from tests.broadcast.builders import staff_tokens_json
from tests.fixtures.fake_zalo import FakeZalo

STREAMS = (BROADCAST_WORK_STREAM.name, BROADCAST_EVENTS_STREAM.name, ZALO_EVENTS_STREAM.name)


async def delete_streams(nats_url: str) -> None:
    """Each test starts with fresh broadcast streams (their subjects are fixed names)."""
    nc = await connect(nats_url, name="tests-cleanup")
    try:
        js = nc.jetstream()
        for name in STREAMS:
            with contextlib.suppress(NotFoundError):
                await js.delete_stream(name)
    finally:
        await nc.close()


@pytest.fixture
def make_settings(
    nats_url: str, mongodb_url: str, unique: str, fake_zalo: FakeZalo
) -> Callable[..., BroadcastSettings]:
    def build(**overrides: Any) -> BroadcastSettings:
        zalo = fake_zalo.settings().model_dump()
        values: dict[str, Any] = {
            **zalo,
            "nats_url": nats_url,
            "mongodb_url": mongodb_url,
            "mongodb_database": f"bc_{unique}",
            "staff_tokens": staff_tokens_json(),
            "quiet_hours_enabled": False,
            "sender_ack_wait": 3.0,
            "claim_lease": 2.0,
            "echo_grace": 1.0,
            "sender_fetch_timeout": 0.3,
            "scheduler_interval": 0.2,
            "retry_base_delay": 0.05,
            "retry_max_delay": 0.2,
            "zalo_retry_attempts": 1,
            "sender_loops": 1,
        }
        return BroadcastSettings(**(values | overrides))

    return build


@dataclass
class Harness:
    service: BroadcastService
    http: httpx.AsyncClient
    fake: FakeZalo
    stack: contextlib.AsyncExitStack

    async def stop(self) -> None:
        """Stop this process (its HTTP client, loops and connections); idempotent."""
        await self.stack.aclose()


@pytest.fixture
async def broadcast(
    make_settings: Callable[..., BroadcastSettings], nats_url: str, fake_zalo: FakeZalo
) -> AsyncIterator[Callable[..., Any]]:
    """Factory: `await broadcast(**settings)` -> a started Harness (stopped after the test)."""
    await delete_streams(nats_url)
    started: list[Harness] = []

    async def start(workers: bool = True, **overrides: Any) -> Harness:
        app = create_app(make_settings(run_sender=workers, **overrides))
        stack = contextlib.AsyncExitStack()
        await stack.enter_async_context(app.router.lifespan_context(app))
        http = await stack.enter_async_context(
            httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://broadcast")
        )
        harness = Harness(app.state.service, http, fake_zalo, stack)
        started.append(harness)
        return harness

    try:
        yield start
    finally:
        for harness in started:
            await harness.stop()
