"""The console's composition root: `build(settings)` makes its upstream client pool;
`create_app(settings)` serves the staff console (pages, and `/api/<service>/...` forwarded)."""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from services.console import pages, proxy
from services.console.settings import ConsoleSettings
from shared.health import health_router
from shared.web import MIB, harden


@dataclass(frozen=True)
class ConsoleService:
    """One running console: what `build` made."""

    settings: ConsoleSettings
    upstreams: proxy.Upstreams


@asynccontextmanager
async def build(settings: ConsoleSettings) -> AsyncIterator[ConsoleService]:
    """The console's one collaborator: the HTTP client pool to the services it forwards to."""
    upstreams = proxy.Upstreams(settings.upstreams, settings.upstream_timeout)
    try:
        yield ConsoleService(settings, upstreams)
    finally:
        await upstreams.aclose()


def create_app(settings: ConsoleSettings) -> FastAPI:
    """The console over HTTP; its lifespan runs `build(settings)`."""
    # httpx logs every forwarded URL at INFO: paths name cases and pseudonyms, keep them out.
    logging.getLogger("httpx").setLevel(logging.WARNING)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings) as service:
            app.state.service = service
            yield

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
    upstreams: proxy.Upstreams = app.state.service.upstreams
    answer = await upstreams.client.get(f"{upstreams.addresses[service]}/healthz", timeout=2)
    answer.raise_for_status()
