"""The ingest service's composition root."""

from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI

from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from services.ingest.spool import Spool
from services.ingest.webhook import build_router
from shared.health import health_router


def create_app(settings: IngestSettings) -> FastAPI:
    publisher = EventPublisher(settings, Spool(Path(settings.spool_dir)))
    counts: Counter[str] = Counter()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await publisher.start()
        try:
            yield
        finally:
            await publisher.stop()

    app = FastAPI(
        title="binhyen ingest",
        description="Receives Zalo OA webhooks and publishes normalized events to JetStream.",
        lifespan=lifespan,
    )
    app.state.publisher = publisher
    app.state.counts = counts
    app.include_router(build_router(settings, publisher, counts))
    app.include_router(health_router({"nats": publisher.check_ready}))

    @app.get("/metrics", tags=["health"])
    async def metrics() -> dict[str, int]:
        return {**counts, "spooled_pending": publisher.spooled}

    return app
