"""One broadcast process: connections, declarations, components and background loops.

Both entry points build it: the HTTP app (`python -m services.broadcast`, which also runs sender
workers unless RUN_SENDER=false) and worker-only replicas (`python -m services.broadcast.sender`,
`sender/__main__.py`).
"""

import asyncio
import contextlib
import logging
from collections.abc import Callable
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


class Runtime:
    """Owns every connection of the process; `start()` then `stop()`."""

    durables = Durables()

    def __init__(self, settings: BroadcastSettings) -> None:
        self.settings = settings
        self._tasks: list[asyncio.Task[None]] = []
        self._stop = asyncio.Event()
        self.nc: NatsClient
        self.js: JetStreamContext
        self.mongo: AsyncMongoClient[dict[str, Any]]
        self.broker: NatsBroker | None = None
        self.zalo: ZaloClient | None = None
        self._announced: dict[str, str] = {}  # group id -> content hash last published
        self._unwatch: Callable[[], None] = lambda: None

    async def start(self, *, workers: bool, scheduler: bool = True) -> None:
        s = self.settings
        self.nc = await connect(s.nats_url, name=s.service_name)
        self.js = self.nc.jetstream()
        self.mongo = connect_mongo(s.mongodb_url)
        db = self.mongo[s.mongodb_database]
        self.groups, self.notices = GroupStore(db), NoticeStore(db)
        self.deliveries, self.audit = DeliveryStore(db), AuditStore(db)
        for store in (self.groups, self.notices, self.deliveries, self.audit):
            await store.ensure_indexes()
        await self._declare()
        self._unwatch = watch_consumers("broadcast", self.js, self._watched())
        self.zalo = ZaloClient(s, nats=self.nc)
        await self.zalo.start()
        self.planner = Planner(self.nc, self.notices, self.groups, self.deliveries, self.audit)
        self.service = NoticeService(s, self.notices, self.deliveries, self.planner, self.audit)
        self.sender = Sender(s, self.nc, self.notices, self.deliveries, self.zalo)
        self.replies = Replies(
            s, self.notices, self.deliveries, self.zalo, self.sender.outcomes.outcome
        )
        self.broker = NatsBroker(
            s.nats_url,
            logger=None,
            inbox_prefix=inbox_prefix(s.nats_url),
            middlewares=broker_middlewares("broadcast"),
        )
        self.broker.include_router(build_router(self))
        await self.broker.start()
        if workers:
            lease = self.sender.lease(datetime.now(UTC))
            await self.deliveries.beat(self.sender.worker, lease)
            self.sender.alive_until = lease
            self._tasks.append(asyncio.create_task(self.sender.keep_alive(self._stop)))
            self._tasks += [
                asyncio.create_task(self.sender.run(self._stop)) for _ in range(s.sender_loops)
            ]
        if scheduler:
            self._tasks.append(asyncio.create_task(self._schedule()))

    async def _declare(self) -> None:
        s, js = self.settings, self.js
        await ensure_stream(js, BROADCAST_WORK_STREAM.to_config(s.nats_stream_replicas))
        await ensure_stream(js, BROADCAST_EVENTS_STREAM.to_config(s.nats_stream_replicas))
        await ensure_stream(js, DEAD_LETTERS_STREAM.to_config(s.nats_stream_replicas))
        try:
            await js.stream_info(ZALO_EVENTS_STREAM.name)
        except NotFoundError:  # ingest owns it; create it only so we can bind before ingest ran
            await ensure_stream(js, ZALO_EVENTS_STREAM.to_config(s.nats_stream_replicas))
        d = self.durables
        await ensure_consumer(
            js, BROADCAST_WORK_STREAM.name, self._consumer(d.planner, BROADCAST_PLAN, 30.0)
        )
        await ensure_consumer(
            js,
            BROADCAST_WORK_STREAM.name,
            self._consumer(d.sender, BROADCAST_DELIVER, s.sender_ack_wait, unbounded=True),
        )
        for durable, kind in (
            (d.groups, ZaloEventKind.GROUP),
            (d.users, ZaloEventKind.USER_MESSAGE),
            (d.echoes, ZaloEventKind.OA_MESSAGE),
        ):
            config = self._consumer(durable, zalo_event_subject(kind), s.event_ack_wait)
            await ensure_consumer(js, ZALO_EVENTS_STREAM.name, config)

    def _watched(self) -> list[tuple[str, str]]:
        d, work, events = self.durables, BROADCAST_WORK_STREAM.name, ZALO_EVENTS_STREAM.name
        return [(work, d.planner), (work, d.sender)] + [
            (events, durable) for durable in (d.groups, d.users, d.echoes)
        ]

    @staticmethod
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

    async def _schedule(self) -> None:
        """Release scheduled notices, re-plan stuck ones, chase unconfirmed manual groups."""
        while not self._stop.is_set():
            now = datetime.now(UTC)
            try:
                await self.service.release_due(now)
                await self.groups.refresh_roster()  # after group events, before a notice
                await self.announce_registry()
                for notice_id in await self.notices.stale_ready(now - STALE_READY):
                    await self.planner.plan(notice_id)
                await self.replies.chase_unconfirmed(now)
            except Exception:  # one failed round must not end the loop; the next one retries
                log.exception("scheduler round failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self.settings.scheduler_interval)

    async def announce_registry(self) -> None:
        """Publish the groups that changed since this process last announced them (all of
        them after a start): analytics builds its view of the registry from these events."""
        changes = registry_changes(await self.groups.every_group(), self._announced)
        messages = [(BROADCAST_REGISTRY, event_bytes(e), e.event_id) for e in changes]
        await publish_all(self.nc, messages, timeout=ANNOUNCE_TIMEOUT)
        self._announced |= {e.group_id: content_hash(e) for e in changes}  # once stored

    async def stop(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        self._unwatch()
        if self._tasks:  # loops see the stop event and finish their batch
            await asyncio.wait(self._tasks, timeout=self.settings.sender_fetch_timeout + 10)
        for task in self._tasks:
            with contextlib.suppress(Exception):  # a loop that failed has logged why
                await stop_task(task)
        if self.broker is not None:
            await self.broker.stop()
        if self.zalo is not None:
            await self.zalo.close()
        await self.nc.drain()
        await self.mongo.close()
