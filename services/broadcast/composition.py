"""The broadcast service's composition root: `build(settings)` makes one broadcast process's
connections, declarations, components and background loops in one place.

Both entry points call it: the HTTP app (`python -m services.broadcast`, which also runs sender
workers unless RUN_SENDER=false) and worker-only replicas (`python -m services.broadcast.sender`,
`sender/__main__.py`).
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from faststream.nats import NatsBroker
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig
from nats.js.errors import NotFoundError
from pymongo import AsyncMongoClient

from services.broadcast.groups import content_hash, registry_changes
from services.broadcast.handlers import MAX_DELIVER, Durables, build_router
from services.broadcast.notices import NoticeService
from services.broadcast.planner import Planner
from services.broadcast.replies import Replies
from services.broadcast.sender.worker import Sender
from services.broadcast.settings import BroadcastSettings
from services.broadcast.store import AuditStore, DeliveryStore, GroupStore, NoticeStore
from shared.events.envelope import event_bytes
from shared.events.zalo import ZaloEventKind
from shared.jetstream import connect, ensure_consumer, ensure_stream, inbox_prefix, publish_all
from shared.metrics import watch_consumers
from shared.mongo import connect_mongo
from shared.process import stop_task
from shared.subjects import (
    BROADCAST_DELIVER,
    BROADCAST_EVENTS_STREAM,
    BROADCAST_PLAN,
    BROADCAST_REGISTRY,
    BROADCAST_WORK_STREAM,
    DEAD_LETTERS_STREAM,
    ZALO_EVENTS_STREAM,
    zalo_event_subject,
)
from shared.telemetry import broker_middlewares
from shared.zalo.client import ZaloClient

log = logging.getLogger(__name__)
STALE_READY = timedelta(minutes=5)
ANNOUNCE_TIMEOUT = 10.0  # seconds for the stream to store a round of registry changes


DURABLES = Durables()


class RegistryAnnouncer:
    """Publishes the groups that changed since this process last announced them (all of
    them after a start): analytics builds its view of the registry from these events."""

    def __init__(self, nc: NatsClient, groups: GroupStore) -> None:
        self._nc, self._groups = nc, groups
        self._announced: dict[str, str] = {}  # group id -> content hash last published

    async def announce(self) -> None:
        changes = registry_changes(await self._groups.every_group(), self._announced)
        messages = [(BROADCAST_REGISTRY, event_bytes(e), e.event_id) for e in changes]
        await publish_all(self._nc, messages, timeout=ANNOUNCE_TIMEOUT)
        self._announced |= {e.group_id: content_hash(e) for e in changes}  # once stored


@dataclass(frozen=True)
class BroadcastService:
    """One running broadcast process: its connections, stores and components, made by `build`.
    The staff API and the NATS subscribers (`handlers.build_router`) receive this object."""

    settings: BroadcastSettings
    nc: NatsClient
    js: JetStreamContext
    mongo: AsyncMongoClient[dict[str, Any]]
    groups: GroupStore
    notices: NoticeStore
    deliveries: DeliveryStore
    audit: AuditStore
    zalo: ZaloClient
    planner: Planner
    notice_service: NoticeService
    sender: Sender
    replies: Replies
    registry: RegistryAnnouncer
    durables: Durables = DURABLES


@asynccontextmanager
async def build(
    settings: BroadcastSettings, *, workers: bool | None = None, scheduler: bool = True
) -> AsyncIterator[BroadcastService]:
    """Connect, declare, make every component, and run the subscribers, the sender loops
    (`workers`, by default `settings.run_sender`) and the scheduler until the context exits."""
    workers = settings.run_sender if workers is None else workers
    async with contextlib.AsyncExitStack() as stack:
        nc = await connect(settings.nats_url, name=settings.service_name)
        stack.push_async_callback(nc.drain)
        js = nc.jetstream()
        mongo: AsyncMongoClient[dict[str, Any]] = connect_mongo(settings.mongodb_url)
        stack.push_async_callback(mongo.close)
        db = mongo[settings.mongodb_database]
        groups, notices = GroupStore(db), NoticeStore(db)
        deliveries, audit = DeliveryStore(db), AuditStore(db)
        for store in (groups, notices, deliveries, audit):
            await store.ensure_indexes()
        await _declare(js, settings)
        stack.callback(watch_consumers("broadcast", js, _watched()))
        zalo = ZaloClient(settings, nats=nc)
        await zalo.start()
        stack.push_async_callback(zalo.close)
        planner = Planner(nc, notices, groups, deliveries, audit)
        sender = Sender(settings, nc, notices, deliveries, zalo)
        service = BroadcastService(
            settings=settings,
            nc=nc,
            js=js,
            mongo=mongo,
            groups=groups,
            notices=notices,
            deliveries=deliveries,
            audit=audit,
            zalo=zalo,
            planner=planner,
            notice_service=NoticeService(settings, notices, deliveries, planner, audit),
            sender=sender,
            replies=Replies(settings, notices, deliveries, zalo, sender.outcomes.outcome),
            registry=RegistryAnnouncer(nc, groups),
        )
        broker = NatsBroker(
            settings.nats_url,
            logger=None,
            inbox_prefix=inbox_prefix(settings.nats_url),
            middlewares=broker_middlewares("broadcast"),
        )
        broker.include_router(build_router(settings, DURABLES, lambda: service))
        await broker.start()
        stack.push_async_callback(broker.stop)
        stop = asyncio.Event()
        tasks: list[asyncio.Task[None]] = []
        stack.push_async_callback(_stop_loops, stop, tasks, settings)
        if workers:
            lease = sender.lease(datetime.now(UTC))
            await deliveries.beat(sender.worker, lease)
            sender.alive_until = lease
            tasks.append(asyncio.create_task(sender.keep_alive(stop)))
            tasks += [asyncio.create_task(sender.run(stop)) for _ in range(settings.sender_loops)]
        if scheduler:
            tasks.append(asyncio.create_task(_schedule(service, stop)))
        yield service


async def _stop_loops(
    stop: asyncio.Event, tasks: list[asyncio.Task[None]], settings: BroadcastSettings
) -> None:
    stop.set()
    if tasks:  # loops see the stop event and finish their batch
        await asyncio.wait(tasks, timeout=settings.sender_fetch_timeout + 10)
    for task in tasks:
        with contextlib.suppress(Exception):  # a loop that failed has logged why
            await stop_task(task)


async def _declare(js: JetStreamContext, settings: BroadcastSettings) -> None:
    replicas = settings.nats_stream_replicas
    await ensure_stream(js, BROADCAST_WORK_STREAM.to_config(replicas))
    await ensure_stream(js, BROADCAST_EVENTS_STREAM.to_config(replicas))
    await ensure_stream(js, DEAD_LETTERS_STREAM.to_config(replicas))
    try:
        await js.stream_info(ZALO_EVENTS_STREAM.name)
    except NotFoundError:  # ingest owns it; create it only so we can bind before ingest ran
        await ensure_stream(js, ZALO_EVENTS_STREAM.to_config(replicas))
    d = DURABLES
    await ensure_consumer(
        js, BROADCAST_WORK_STREAM.name, _consumer(d.planner, BROADCAST_PLAN, 30.0)
    )
    await ensure_consumer(
        js,
        BROADCAST_WORK_STREAM.name,
        _consumer(d.sender, BROADCAST_DELIVER, settings.sender_ack_wait, unbounded=True),
    )
    for durable, kind in (
        (d.groups, ZaloEventKind.GROUP),
        (d.users, ZaloEventKind.USER_MESSAGE),
        (d.echoes, ZaloEventKind.OA_MESSAGE),
    ):
        config = _consumer(durable, zalo_event_subject(kind), settings.event_ack_wait)
        await ensure_consumer(js, ZALO_EVENTS_STREAM.name, config)


def _watched() -> list[tuple[str, str]]:
    d, work, events = DURABLES, BROADCAST_WORK_STREAM.name, ZALO_EVENTS_STREAM.name
    return [(work, d.planner), (work, d.sender)] + [
        (events, durable) for durable in (d.groups, d.users, d.echoes)
    ]


def _consumer(
    durable: str, subject: str, ack_wait: float, unbounded: bool = False
) -> ConsumerConfig:
    """Durable pull consumers. The sender's bound on attempts lives in the delivery
    documents (rate limiting must not count), so JetStream redelivers it without limit."""
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=ack_wait,
        max_deliver=-1 if unbounded else MAX_DELIVER,
        max_ack_pending=20000 if unbounded else 1000,
    )


async def _schedule(service: BroadcastService, stop: asyncio.Event) -> None:
    """Release scheduled notices, re-plan stuck ones, chase unconfirmed manual groups."""
    while not stop.is_set():
        now = datetime.now(UTC)
        try:
            await service.notice_service.release_due(now)
            await service.groups.refresh_roster()  # after group events, before a notice
            await service.registry.announce()
            for notice_id in await service.notices.stale_ready(now - STALE_READY):
                await service.planner.plan(notice_id)
            await service.replies.chase_unconfirmed(now)
        except Exception:  # one failed round must not end the loop; the next one retries
            log.exception("scheduler round failed")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), service.settings.scheduler_interval)
