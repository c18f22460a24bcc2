"""The ingest service's composition root."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.types import Receive, Scope, Send

from services.ingest.metrics import SpoolReader
from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from services.ingest.spool import Spool
from services.ingest.webhook import WEBHOOK_PATH, WebhookEndpoint, WebhookRoute
from shared.health import health_router
from shared.metrics import on_scrape
from shared.telemetry import ObservedEndpoint
from shared.web import harden


class IngestApp(FastAPI):
    """FastAPI, except that webhooks go straight to their endpoint.

    Every other path (health, metrics, docs) takes FastAPI's usual way. The webhook skips
    the middleware stack and the router, which would only find the same endpoint again
    (`WebhookRoute`), at a cost per request larger than the endpoint's own work.
    """

    observed_paths = (WEBHOOK_PATH,)  # its span and duration here; its answers by outcome

    def __init__(self, webhook: WebhookEndpoint, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.webhook = ObservedEndpoint(webhook, "ingest", "POST", WEBHOOK_PATH)
        self.router.routes.append(WebhookRoute(webhook))

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == WEBHOOK_PATH:
            await self.webhook(scope, receive, send)
        else:
            await super().__call__(scope, receive, send)


def create_app(settings: IngestSettings) -> FastAPI:
    spool = Spool(Path(settings.spool_dir))
    publisher = EventPublisher(settings, spool)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        unwatch = on_scrape(SpoolReader(spool))
        try:
            yield
        finally:
            unwatch()
            await publisher.stop()

    app = IngestApp(
        WebhookEndpoint(settings, publisher),
        title="binhyen ingest",
        description="Receives Zalo OA webhooks and publishes normalized events to JetStream.",
        lifespan=lifespan,
        docs_url=None,  # no CDN-script pages (shared.web)
        redoc_url=None,
    )
    harden(app)  # the webhook itself bypasses the middleware stack (IngestApp.__call__)
    app.state.publisher = publisher
    app.include_router(health_router({"nats": publisher.check_ready}))
    return app
