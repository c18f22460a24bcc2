"""The reports service's composition root: `build(settings)` makes and starts its connections,
stores and collaborators (intake consumer, live feed, SLA timer); `create_app(settings)` serves
the staff API over what it built."""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import FastAPI
from faststream import ExceptionMiddleware
from faststream.exceptions import RejectMessage
from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.errors import Error as NatsError
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from services.reports import api
from services.reports.desk import Desk, Messenger
from services.reports.intake import Intake
from services.reports.intake_consumer import IntakeConsumer, intake_consumer_config
from services.reports.intake_core import IntakeCore
from services.reports.intake_plan import IntakeConfig
from services.reports.knowledge import KnowledgeBase
from services.reports.live import LiveFeed
from services.reports.publisher import TipPublisher
from services.reports.roster import Roster
from services.reports.services import Reports
from services.reports.settings import ReportsSettings
from services.reports.sla import escalate_overdue
from services.reports.store import ReportsStore
from services.reports.triage import Triager
from services.reports.vault import TipsterVault
from shared.health import health_router, mongo_answers, nats_connected
from shared.identity.verifier import StaffVerifier, staff_verifier
from shared.jetstream import connect, ensure_consumer, ensure_stream, inbox_prefix
from shared.metrics import watch_consumers
from shared.mongo import connect_mongo
from shared.places import Gazetteer
from shared.process import stop_task
from shared.subjects import TIPS_ALL, TIPS_STREAM, ZALO_EVENTS_STREAM
from shared.telemetry import broker_middlewares
from shared.web import harden
from shared.zalo.client import ZaloClient

log = logging.getLogger(__name__)
PURGE_EVERY = timedelta(hours=1)


def load_gazetteer(settings: ReportsSettings) -> Gazetteer:
    return Gazetteer.load(
        settings.places_units_file,
        settings.places_crosswalk_file,
        settings.places_extra_file,
        settings.places_current_set,
    )


def create_broker(settings: ReportsSettings) -> NatsBroker:
    poison = ExceptionMiddleware()

    @poison.add_handler(ValidationError)
    async def _reject_invalid(exc: ValidationError) -> None:
        log.warning("invalid event rejected", extra={"errors": exc.error_count()})
        raise RejectMessage

    return NatsBroker(
        settings.nats_url,
        middlewares=[*broker_middlewares("reports"), poison],
        logger=logging.getLogger("services.reports.broker"),  # JSON lines through the root handler
        log_level=logging.DEBUG,
        max_reconnect_attempts=-1,
        inbox_prefix=inbox_prefix(settings.nats_url),
    )


@dataclass(frozen=True)
class ReportsService:
    """One running reports service: what `build` made and started. The staff API reaches
    `reports` (its collaborators); bench and tests stop and start `intake_consumer`."""

    reports: Reports
    nats: NatsClient
    staff: StaffVerifier
    broker: NatsBroker
    intake_consumer: IntakeConsumer


@asynccontextmanager
async def build(
    settings: ReportsSettings, messenger: Messenger | None = None
) -> AsyncIterator[ReportsService]:
    """Every connection, store and collaborator of the service, created here and started:
    the intake consumer, the live feed and the SLA timer run until the context exits. Pass
    `messenger` to reply through something other than the Zalo client."""
    broker = create_broker(settings)
    mongo = connect_mongo(settings.mongodb_url)
    async with contextlib.AsyncExitStack() as stack:
        stack.push_async_callback(mongo.close)
        nc = await connect(settings.nats_url, name="reports")
        stack.push_async_callback(nc.close)
        store = ReportsStore(mongo[settings.mongodb_database])
        await store.ensure_indexes()
        await _declare(nc, settings)
        intake = (settings.zalo_events_stream, settings.intake_durable)
        stack.callback(watch_consumers("reports", nc.jetstream(), [intake]))
        outbound = messenger
        if outbound is None and settings.send_replies:
            zalo = ZaloClient(settings, nats=nc)
            await zalo.start()
            stack.push_async_callback(zalo.close)
            outbound = zalo
        staff = await stack.enter_async_context(staff_verifier(settings, "reports"))
        reports = _collaborators(settings, store, nc, outbound)
        live = await nc.subscribe(TIPS_ALL, cb=reports.live.on_message)
        stack.push_async_callback(live.unsubscribe)
        await broker.connect()
        await broker.start()
        stack.push_async_callback(broker.stop)
        stack.push_async_callback(reports.intake.close)  # after the consumer stops
        consumer = IntakeConsumer(nc, reports)
        await consumer.start()
        stack.push_async_callback(consumer.stop)
        timer = asyncio.create_task(_sla_loop(reports))
        stack.push_async_callback(stop_task, timer)
        yield ReportsService(reports, nc, staff, broker, consumer)


def create_app(settings: ReportsSettings, messenger: Messenger | None = None) -> FastAPI:
    """The service over HTTP; its lifespan runs `build(settings, messenger)`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings, messenger) as service:
            app.state.service, app.state.staff = service, service.staff
            yield

    app = FastAPI(
        title="binhyen reports", version="1.0.0", lifespan=lifespan, docs_url=None, redoc_url=None
    )
    harden(app)  # CaseError is a ServiceError: the one error body, its code by status

    checks = {
        "mongodb": mongo_answers(lambda: app.state.service.reports.store.db),
        "nats": nats_connected(lambda: app.state.service.nats),
    }
    app.include_router(health_router(checks))
    app.include_router(api.router)
    return app


async def _declare(nc: NatsClient, settings: ReportsSettings) -> None:
    js = nc.jetstream()
    replicas = settings.nats_stream_replicas
    if settings.declare_zalo_stream:
        zalo = ZALO_EVENTS_STREAM.to_config(replicas, name=settings.zalo_events_stream)
        await ensure_stream(js, zalo)
    await ensure_stream(js, TIPS_STREAM.to_config(replicas, name=settings.tips_stream))
    consumer = intake_consumer_config(settings)
    await ensure_consumer(js, settings.zalo_events_stream, consumer)


def _collaborators(
    settings: ReportsSettings, store: ReportsStore, nc: NatsClient, messenger: Messenger | None
) -> Reports:
    gazetteer = load_gazetteer(settings)
    triager = Triager.from_files(
        settings.triage_rules_file, settings.triage_model_file, settings.safety_rules_file
    )
    ward_names = {u.slug: f"{u.kind} {u.name}" for u in gazetteer.current_units()}
    knowledge = KnowledgeBase.load(settings.knowledge_file, ward_names)
    sealer = TipsterVault(settings.tipster_vault_key, settings.pseudonym_key)
    roster = Roster.from_json(settings.roster_json(), settings.roster_timezone)
    config = IntakeConfig(
        group_window=timedelta(seconds=settings.group_window_seconds),
        duplicate_window=timedelta(seconds=settings.duplicate_window_seconds),
        duplicate_threshold=settings.duplicate_threshold,
        ref_prefix=settings.ref_prefix,
        group_wards=settings.group_ward_map(),
        location_max_km=settings.location_max_km,
        verification_prefix=settings.verification_prefix,
    )
    intake = Intake(store, IntakeCore(triager, gazetteer, knowledge, roster, config), sealer)
    publisher = TipPublisher(nc, store)
    desk = Desk(store, publisher, gazetteer, sealer, messenger)
    return Reports(settings, store, gazetteer, intake, publisher, desk, LiveFeed(), messenger)


async def _sla_loop(reports: Reports) -> None:
    """Escalate overdue urgent cases, publish what is left in the outbox, apply retention."""
    settings = reports.settings
    ack_within = timedelta(seconds=settings.urgent_ack_seconds)
    retention = timedelta(days=settings.tipster_retention_days)
    last_purge: datetime | None = None
    while True:
        await asyncio.sleep(settings.sla_check_seconds)
        now = datetime.now(UTC)
        try:
            await escalate_overdue(reports.store, reports.publisher, now, ack_within)
            await reports.publisher.flush()
            if last_purge is None or now - last_purge > PURGE_EVERY:
                forgotten = await reports.store.forget_tipsters(now - retention)
                last_purge = now
                log.info("tipster retention applied", extra={"forgotten": forgotten})
        except (PyMongoError, NatsError, TimeoutError) as exc:  # the next round retries
            log.warning("sla round failed", extra={"error": type(exc).__name__})
