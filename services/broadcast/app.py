"""`create_app(settings)`: the broadcast HTTP API over what `composition.build` made."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.broadcast import api, cap
from services.broadcast.composition import build
from services.broadcast.settings import BroadcastSettings
from shared.health import health_router, mongo_answers, nats_connected
from shared.identity.verifier import StaffVerifier, staff_verifier
from shared.web import MIB, harden


def create_app(settings: BroadcastSettings) -> FastAPI:
    """The API; its lifespan runs `build(settings)` (sender workers unless RUN_SENDER=false)."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings) as service, staff_verifier(settings, "broadcast") as verifier:
            app.state.service, app.state.staff = service, verifier
            yield

    app = FastAPI(
        title="binhyen broadcast",
        version="1.0.0",
        lifespan=lifespan,
        description=api.FOLLOWERS_NOTE,
        docs_url=None,  # no CDN-script pages (shared.web)
        redoc_url=None,
    )
    # CAP is read whole before parsing: 512 KiB, checked while reading; a registry of
    # 10,000 groups is ~1.5 MB of CSV.
    harden(app, {("POST", "/notices/cap"): cap.MAX_XML_BYTES, ("POST", "/groups/import"): 8 * MIB})
    app.state.staff = StaffVerifier.static_only(settings)  # the lifespan's replaces it
    app.include_router(api.router)

    checks = {
        "nats": nats_connected(lambda: app.state.service.nc),
        "mongodb": mongo_answers(lambda: app.state.service.mongo.admin),
    }
    app.include_router(health_router(checks))
    return app
