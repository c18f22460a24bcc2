"""Helpers for ingest tests: signed requests, a running ingest, reading what it published."""

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager, suppress
from pathlib import Path
from typing import Any

import httpx
from nats.js import JetStreamContext
from nats.js.errors import NotFoundError

from services.ingest.app import create_app
from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from shared.telemetry import instrument
from tests.polling import eventually
from tools.zalo_sim.events import encode, signed_request

WEBHOOKS = Path(__file__).resolve().parents[1] / "data" / "zalo-webhooks"
APP_ID = "360846524940903967"
SECRET = "test-oa-secret-key"


def fixture_body(name: str, **changes: Any) -> dict[str, Any]:
    """A documented payload with a current timestamp (the stored ones are years old)."""
    body: dict[str, Any] = json.loads((WEBHOOKS / f"{name}.json").read_text(encoding="utf-8"))
    body["timestamp"] = str(int(time.time() * 1000))
    body.update(changes)
    return body


def fixture_names() -> list[str]:
    return sorted(p.stem for p in WEBHOOKS.glob("*.json"))


def signed(body: dict[str, Any], secret: str = SECRET) -> tuple[bytes, dict[str, str]]:
    raw = encode(body)
    return raw, signed_request(raw, body["app_id"], secret, body["timestamp"])


def ingest_settings(nats_url: str, spool_dir: Path, **overrides: Any) -> IngestSettings:
    values: dict[str, Any] = {
        "nats_url": nats_url,
        "spool_dir": str(spool_dir),
        "zalo_app_id": APP_ID,
        "zalo_oa_secret_key": SECRET,
    }
    return IngestSettings(**(values | overrides))


async def reset_streams(js: JetStreamContext, settings: IngestSettings) -> None:
    for stream in (settings.events_stream, settings.quarantine_stream):
        with suppress(NotFoundError):
            await js.delete_stream(stream)


@asynccontextmanager
async def running_ingest(
    settings: IngestSettings, ready: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """Ingest with its lifespan running, reached in-process over ASGI."""
    app = create_app(settings)
    async with app.router.lifespan_context(app):
        publisher: EventPublisher = app.state.ingest.publisher
        if ready:
            await eventually(publisher.is_ready)
        # Served as `shared.serve` serves it: with its HTTP span and request metrics.
        transport = httpx.ASGITransport(app=instrument(app, "ingest"))
        async with httpx.AsyncClient(transport=transport, base_url="http://ingest") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


async def stream_messages(js: JetStreamContext, stream: str) -> list[Any]:
    """Every message in the stream, in order."""
    info = await js.stream_info(stream)
    if info.state.messages == 0:
        return []
    return [
        await js.get_msg(stream, seq)
        for seq in range(info.state.first_seq, info.state.last_seq + 1)
    ]


async def post(client: httpx.AsyncClient, body: dict[str, Any], **kw: Any) -> httpx.Response:
    raw, headers = signed(body, **kw)
    return await client.post("/webhooks/zalo", content=raw, headers=headers)
