"""The identity service's composition root: `build(settings)` makes its connections, store and
account logic; `create_app(settings)` serves sign-in, sessions, accounts and API tokens."""

import asyncio
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from pymongo.errors import PyMongoError

from services.identity import api, pages
from services.identity.accounts import Identity, IdentityError
from services.identity.settings import IdentitySettings
from shared.events.envelope import event_bytes
from shared.events.identity import StaffAccessRevoked
from shared.health import health_router, mongo_answers, nats_connected
from shared.identity.store import IdentityStore
from shared.identity.verifier import StaffVerifier, staff_verifier
from shared.jetstream import connect
from shared.mongo import connect_mongo
from shared.process import stop_task
from shared.subjects import IDENTITY_REVOKED
from shared.web import harden

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class IdentityService:
    """One running identity service: what `build` made and started."""

    settings: IdentitySettings
    store: IdentityStore
    nats: NatsClient
    staff: StaffVerifier
    identity: Identity


@asynccontextmanager
async def build(settings: IdentitySettings) -> AsyncIterator[IdentityService]:
    """MongoDB, NATS, the staff verifier and the account logic, made in one place; the sweeper
    runs until the context exits."""
    mongo: Any = connect_mongo(settings.mongodb_url)
    nc = await connect(settings.nats_url, name="identity")
    try:
        store = IdentityStore(mongo[settings.mongodb_database])
        await store.ensure_indexes()

        async def publish(event: StaffAccessRevoked) -> None:
            await nc.publish(IDENTITY_REVOKED, event_bytes(event))
            await nc.flush(timeout=1)

        async with staff_verifier(settings, "identity", serves_password_change=True) as verifier:
            assert verifier.audit is not None
            await verifier.audit.ensure_indexes()
            identity = Identity(settings, store, verifier.audit, publish, verifier)
            sweeper = asyncio.create_task(_sweep(identity, settings.sweep_seconds))
            try:
                yield IdentityService(settings, store, nc, verifier, identity)
            finally:
                await stop_task(sweeper)
    finally:
        await nc.close()
        await mongo.close()


def create_app(settings: IdentitySettings) -> FastAPI:
    """The identity service over HTTP; its lifespan runs `build(settings)`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings) as service:
            app.state.service, app.state.staff = service, service.staff
            yield

    app = FastAPI(
        title="binhyen identity",
        version="1.0.0",
        lifespan=lifespan,
        docs_url=None,  # no CDN-script pages (shared.web)
        redoc_url=None,
        description=(
            "Staff accounts, sign-in with a second factor, browser sessions and API tokens. "
            "Every service verifies sessions and tokens the same way (shared.identity)."
        ),
    )
    harden(app)
    app.add_exception_handler(IdentityError, api.identity_error)
    app.state.settings = settings

    checks = {
        "mongodb": mongo_answers(lambda: app.state.service.store.db),
        "nats": nats_connected(lambda: app.state.service.nats),
    }
    app.include_router(health_router(checks))
    app.include_router(api.router)
    app.include_router(pages.router)
    return app


async def _sweep(identity: Identity, every: float) -> None:
    """Delete expired sessions and stale throttle entries (no TTL indexes on FerretDB)."""
    while True:
        try:
            sessions, throttle = await identity.sweep()
            if sessions or throttle:
                log.info("identity swept", extra={"sessions": sessions, "throttle": throttle})
        except (PyMongoError, NatsError) as exc:  # the next round tries again
            log.warning("identity sweep failed", extra={"error": type(exc).__name__})
        await asyncio.sleep(every)
