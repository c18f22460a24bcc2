"""`create_app(settings)`: the staff console (pages, and `/api/<service>/...` to the services)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console import pages, proxy
from services.console.settings import ConsoleSettings
from shared.health import health_router
from shared.web import MIB, harden


def create_app(settings: ConsoleSettings) -> FastAPI:
    # httpx logs every forwarded URL at INFO: paths name cases and pseudonyms, keep them out.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        upstreams = proxy.Upstreams(settings.upstreams, settings.upstream_timeout)
        app.state.upstreams = upstreams
        try:
            yield
        finally:
            await upstreams.aclose()

    app = FastAPI(title="binhyen console", lifespan=lifespan, docs_url=None, redoc_url=None)
    # Broadcast's group registry takes CSV files up to 8 MiB (its own limit); 1 MiB elsewhere.
    harden(app, {("POST", "/api/broadcast/groups/import"): 8 * MIB})
    app.state.settings = settings

    async def identity_up() -> None:
        await _healthy(app, "identity")

    async def reports_up() -> None:
        await _healthy(app, "reports")

    app.include_router(health_router({"identity": identity_up, "reports": reports_up}))
    app.include_router(pages.router)
    app.include_router(proxy.router)
    app.mount("/static", StaticFiles(directory=pages.STATIC), name="static")
    return app


async def _healthy(app: FastAPI, service: str) -> None:
    upstreams: proxy.Upstreams = app.state.upstreams
    answer = await upstreams.client.get(f"{upstreams.addresses[service]}/healthz", timeout=2)
    answer.raise_for_status()
