"""The ingest service's composition root: `build(settings)` makes the spool, the publisher and
the webhook endpoint; `create_app(settings)` serves what it built."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest.metrics import SpoolReader
from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from services.ingest.spool import Spool
from services.ingest.webhook import WEBHOOK_PATH, WebhookEndpoint, WebhookRoute
from shared.health import health_router
from shared.metrics import on_scrape
from shared.telemetry import ObservedEndpoint
from shared.web import harden


@dataclass(frozen=True)
class IngestService:
    """One running ingest service: what `build` made, started."""

    settings: IngestSettings
    spool: Spool
    publisher: EventPublisher
    webhook: WebhookEndpoint


@asynccontextmanager
async def build(settings: IngestSettings) -> AsyncIterator[IngestService]:
    """Every connection and collaborator of the service, started; stopped at exit."""
    spool = Spool(Path(settings.spool_dir))
    publisher = EventPublisher(settings, spool)
    await publisher.start()
    unwatch = on_scrape(SpoolReader(spool))
    try:
        yield IngestService(settings, spool, publisher, WebhookEndpoint(settings, publisher))
    finally:
        unwatch()
        await publisher.stop()


class IngestApp(FastAPI):
    """FastAPI, except that webhooks go straight to their endpoint.

    Kept for a measured speed reason, not for composition: every other path (health, metrics,
    docs) takes FastAPI's usual way, while the webhook skips the middleware stack and the
    router, which would only find the same endpoint again (`WebhookRoute`), at a cost per
    request larger than the endpoint's own work (docs/benchmarks.md, ingest).
    """

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhook: ObservedEndpoint | None = None  # the lifespan installs `build`'s
        # Its span and duration are the endpoint's own (its answers are counted by outcome):
        # `shared.telemetry.Instrumented` calls it from here, past this app's dispatch.
        self.observed_endpoints: dict[str, ASGIApp] = {}
        self.router.routes.append(WebhookRoute(self._to_webhook))

    def serve_webhook(self, endpoint: WebhookEndpoint) -> None:
        self.webhook = ObservedEndpoint(endpoint, "ingest", "POST", WEBHOOK_PATH)
        self.observed_endpoints[WEBHOOK_PATH] = self.webhook

    async def _to_webhook(self, scope: Scope, receive: Receive, send: Send) -> None:
        assert self.webhook is not None, "the lifespan has not built the service"
        await self.webhook(scope, receive, send)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH:
            await self._to_webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: IngestSettings) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        async with build(settings) as ingest:
            app.state.ingest = ingest
            app.serve_webhook(ingest.webhook)
            yield

    app = IngestApp(
        title="binhyen ingest",
        description="Receives Zalo OA webhooks and publishes normalized events to JetStream.",
        lifespan=lifespan,
        docs_url=None,  # no CDN-script pages (shared.web)
        redoc_url=None,
    )
    harden(app)  # the webhook itself bypasses the middleware stack (IngestApp.__call__)

    async def nats_ready() -> None:
        await app.state.ingest.publisher.check_ready()

    app.include_router(health_router({"nats": nats_ready}))
    return app
