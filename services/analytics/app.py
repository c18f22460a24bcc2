"""The analytics service's composition root: `build(settings)` makes MongoDB, the durables, the
writer lease and the counting it runs in one place; `create_app(settings)` serves the metrics API
and the dashboard over what it built."""

import asyncio
import contextlib
import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StreamConfig
from nats.js.errors import NotFoundError
from pymongo.asynchronous.database import AsyncDatabase

from services.analytics.api import router as api_router
from services.analytics.consumer import BatchPipeline
from services.analytics.dashboard import router as dashboard_router
from services.analytics.lease import WriterLease
from services.analytics.ledger import CounterLedger, durable_database
from services.analytics.pullers import consumers, consuming
from services.analytics.settings import AnalyticsSettings
from services.analytics.snapshots import SnapshotPoller, ZaloStatsSnapshotted
from services.analytics.store import MetricsStore
from shared.events.envelope import event_bytes
from shared.health import health_router
from shared.identity.verifier import StaffVerifier, staff_verifier
from shared.jetstream import connect, ensure_consumer, ensure_key_value, ensure_stream
from shared.mongo import connect_mongo
from shared.places import Gazetteer
from shared.process import log_failure, stop_task
from shared.subjects import (
    ANALYTICS_SNAPSHOTS_STREAM,
    BROADCAST_EVENTS_STREAM,
    DEAD_LETTERS_STREAM,
    TIPS_STREAM,
    ZALO_EVENTS_STREAM,
)
from shared.web import harden
from shared.zalo.client import ZaloClient

log = logging.getLogger(__name__)


async def declare_consumers(settings: AnalyticsSettings) -> None:
    """This service's stream and durables; the producers' streams are created only when they
    do not exist yet (as their producers declare them), never updated from here."""
    nc = await connect(settings.nats_url, name="analytics-setup")
    try:
        js = nc.jetstream()
        own = ANALYTICS_SNAPSHOTS_STREAM.to_config(
            settings.nats_stream_replicas,
            name=settings.snapshots_stream,
            subjects=[settings.snapshots_subject_filter],
        )
        await ensure_stream(js, own)
        # Where poison events are recorded (`deadletter.analytics`), shared with the others.
        dead_letters = DEAD_LETTERS_STREAM.to_config(settings.nats_stream_replicas)
        await create_stream_if_missing(js, dead_letters)
        foreign = (
            (ZALO_EVENTS_STREAM, settings.zalo_events_stream, [settings.zalo_subject_filter]),
            (TIPS_STREAM, settings.tips_stream, [settings.tips_subject_filter]),
            (
                BROADCAST_EVENTS_STREAM,
                settings.broadcast_stream,
                [settings.broadcast_subject_filter, settings.registry_subject_filter],
            ),
        )
        for spec, name, filters in foreign:
            subjects = list(spec.subjects) if name == spec.name else filters
            config = spec.to_config(settings.nats_stream_replicas, name=name, subjects=subjects)
            await create_stream_if_missing(js, config)
        for stream, consumer_config in consumers(settings):
            await ensure_consumer(js, stream, consumer_config)
    finally:
        await nc.close()


async def create_stream_if_missing(js: JetStreamContext, config: StreamConfig) -> None:
    try:
        await js.stream_info(config.name or "")
    except NotFoundError:
        await ensure_stream(js, config)


@asynccontextmanager
async def snapshot_poller(settings: AnalyticsSettings) -> AsyncIterator[SnapshotPoller]:
    """Poll the Zalo API on a schedule and publish snapshots (deduplicated per slot)."""
    nc = await connect(settings.nats_url, name="analytics-snapshots")
    js = nc.jetstream()

    async def publish(snapshot: ZaloStatsSnapshotted) -> None:
        headers = {"Nats-Msg-Id": snapshot.event_id}
        await js.publish(settings.snapshot_subject, event_bytes(snapshot), headers=headers)

    try:
        async with ZaloClient(settings, nats=nc) as zalo:
            poller = SnapshotPoller(zalo, publish, settings.snapshot_interval)
            task = asyncio.create_task(poller.run(), name="analytics snapshots")
            task.add_done_callback(log_failure)
            try:
                yield poller
            finally:
                await stop_task(task)
    finally:
        await nc.close()


class WriterWork:
    """What only the replica holding the writer lease runs: the ledger, the pipeline, the
    pullers and the snapshot poller. Started when the lease is taken, stopped when it is lost;
    `pipeline` and `ledger` are the current lead's (None while following)."""

    def __init__(self, settings: AnalyticsSettings, db: AsyncDatabase[Any]) -> None:
        self.settings, self.db = settings, db
        self.pipeline: BatchPipeline | None = None
        self.ledger: CounterLedger | None = None
        self._stack: AsyncExitStack | None = None

    async def start(self) -> None:
        settings = self.settings
        ledger = CounterLedger(self.db)
        await ledger.load(timedelta(days=settings.journal_retention_days))
        async with AsyncExitStack() as stack:
            pipeline = await stack.enter_async_context(consuming(settings, ledger))
            if settings.snapshot_interval > 0:
                await stack.enter_async_context(snapshot_poller(settings))
            self.pipeline, self.ledger = pipeline, ledger
            self._stack = stack.pop_all()

    async def stop(self) -> None:
        if self._stack is not None:
            stack, self._stack = self._stack, None
            await stack.aclose()


@asynccontextmanager
async def writer_lease(settings: AnalyticsSettings, work: WriterWork) -> AsyncIterator[WriterLease]:
    """Run `work` while this replica holds the lease; give the lease up at shutdown."""
    nc = await connect(settings.nats_url, name="analytics-lease")
    try:
        config = KeyValueConfig(
            bucket=settings.writer_lease_bucket, history=1, ttl=settings.writer_lease_ttl
        )
        kv = await ensure_key_value(nc.jetstream(), config)
        lease = WriterLease(
            kv, uuid.uuid4().hex[:12], settings.writer_lease_ttl, work.start, work.stop
        )
        task = asyncio.create_task(lease.run(), name="analytics writer lease")
        task.add_done_callback(log_failure)
        try:
            with contextlib.suppress(TimeoutError):  # a follower starts serving HTTP anyway
                await asyncio.wait_for(lease.leading.wait(), settings.writer_lease_wait)
            yield lease
        finally:
            await stop_task(task)
            await work.stop()
            await lease.release()
    finally:
        await nc.close()


@dataclass(frozen=True)
class AnalyticsService:
    """One running analytics replica: what `build` made and started. The metrics API and the
    dashboard read `store`, `gazetteer` and `chart_js`; `writer` counts while `lease` is held."""

    settings: AnalyticsSettings
    store: MetricsStore
    staff: StaffVerifier
    lease: WriterLease
    writer: WriterWork
    gazetteer: Gazetteer
    chart_js: Path | None


@asynccontextmanager
async def build(settings: AnalyticsSettings) -> AsyncIterator[AnalyticsService]:
    """Every connection, store and collaborator of a replica, in one place: MongoDB, the
    declared durables, the staff verifier, and the writer lease that runs the counting."""
    gazetteer = Gazetteer.load(settings.places_units_file, settings.places_crosswalk_file)
    chart_js = Path(settings.chart_js_file)
    chart_js_found = chart_js.is_file()  # noqa: ASYNC240 (once, at start-up)
    mongo: Any = connect_mongo(settings.mongodb_url)
    try:
        db: AsyncDatabase[Any] = durable_database(mongo, settings.mongodb_database)
        await declare_consumers(settings)
        writer = WriterWork(settings, db)
        async with (
            staff_verifier(settings, "analytics") as verifier,
            writer_lease(settings, writer) as lease,
        ):
            yield AnalyticsService(
                settings=settings,
                store=MetricsStore(db, settings),
                staff=verifier,
                lease=lease,
                writer=writer,
                gazetteer=gazetteer,
                chart_js=chart_js if chart_js_found else None,
            )
    finally:
        await mongo.close()


def create_app(settings: AnalyticsSettings) -> FastAPI:
    """The analytics service over HTTP; its lifespan runs `build(settings)`."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with build(settings) as service:
            app.state.service, app.state.staff = service, service.staff
            yield

    app = FastAPI(title="binhyen analytics", lifespan=lifespan, docs_url=None, redoc_url=None)
    harden(app)
    app.state.staff = StaffVerifier.static_only(settings)  # the lifespan's replaces it

    async def mongo_ready() -> None:
        await app.state.service.store.ping()

    app.include_router(health_router({"mongodb": mongo_ready}))
    app.include_router(api_router)
    app.include_router(dashboard_router)
    return app
