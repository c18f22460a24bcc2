"""The live stream (Server-Sent Events) through a real HTTP server on loopback."""

import asyncio
import json
from collections.abc import Callable

import httpx
import pytest
import uvicorn

from services.reports.app import create_app
from services.reports.settings import ReportsSettings
from shared.jetstream import connect
from shared.subjects import zalo_event_subject
from tests.polling import eventually
from tests.reports.builders import auth, message
from tools.localstack.servers import LOOPBACK, free_port

pytestmark = pytest.mark.integration


async def test_dispatcher_sees_new_cases_of_own_ward_only(
    reports_settings: Callable[..., ReportsSettings], reports: object
) -> None:
    # `reports` prepares fresh streams and fake Zalo users; this test runs its own server.
    port = free_port()
    settings = reports_settings(http_port=port)
    config = uvicorn.Config(
        create_app(settings), host=LOOPBACK, port=port, log_config=None, lifespan="on"
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve())
    try:
        await eventually(lambda: _started(server), timeout=15)
        nc = await connect(settings.nats_url, name="tests-sse")
        base = f"http://{LOOPBACK}:{port}"
        async with (
            httpx.AsyncClient(base_url=base, timeout=15) as http,
            http.stream("GET", "/cases/stream", headers=auth("t-qp")) as response,
        ):
            assert response.headers["content-type"].startswith("text/event-stream")
            lines = response.aiter_lines()
            assert await anext(lines) == ": connected"
            for text in ("Có trộm ở phường Bắc Lý", "Có trộm ở xã Quang Phú"):
                event = message(text=text, user_id=f"u-{text[-3:]}")
                await nc.jetstream().publish(
                    zalo_event_subject(event.kind),
                    event.model_dump_json().encode(),
                    headers={"Nats-Msg-Id": event.event_id},
                )
            data = await asyncio.wait_for(_first_data(lines), timeout=15)
        await nc.close()
        assert data["type"] == "tip.triaged"
        assert data["ward"] == "quang-phu"
    finally:
        server.should_exit = True
        await serving


async def _started(server: uvicorn.Server) -> bool:
    return server.started


async def _first_data(lines: object) -> dict[str, object]:
    async for line in lines:  # type: ignore[attr-defined]
        if line.startswith("data: "):
            payload: dict[str, object] = json.loads(line[len("data: ") :])
            return payload
    raise AssertionError("stream ended")
