"""Publishes every accepted event to JetStream exactly once, or spools it when NATS is away.

Exactly once across Zalo's whole retry horizon: the event id is the `Nats-Msg-Id`, and the
stream's duplicate window is as long as ingest's acceptance horizon (`max_event_age_s` plus the
allowed clock skew; older repeats are refused as stale before they get here). So the server
drops every repeat ingest could accept, atomically with the publish, across restarts (it
rebuilds its id table from the stored messages) and on every replica of a clustered stream.
One round trip per event; docs/benchmarks.md compares this with a separate id ledger.
While the spool holds anything, new events queue behind it so that order is kept. A spooled
event keeps its webhook's trace context and is published with it when the spool drains.
"""

import asyncio
import contextlib
import logging
from enum import StrEnum

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext

from services.ingest.settings import IngestSettings
from services.ingest.spool import Spool
from shared.jetstream import AckedPublisher, connect, ensure_stream
from shared.process import stop_task
from shared.subjects import ZALO_EVENTS_STREAM, ZALO_QUARANTINE_STREAM
from shared.tracing import inject

log = logging.getLogger(__name__)

# NATS being away shows up as any of these; the event then goes to the spool.
UNAVAILABLE = (TimeoutError, nats.errors.Error, OSError)


class Outcome(StrEnum):
    PUBLISHED = "published"
    DUPLICATE = "duplicate"
    SPOOLED = "spooled"


class EventPublisher:
    def __init__(self, settings: IngestSettings, spool: Spool) -> None:
        self._settings = settings
        self._spool = spool
        self._nats: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._acked: AckedPublisher | None = None
        self._wake = asyncio.Event()
        self._background: list[asyncio.Task[None]] = []

    async def start(self) -> None:
        await self._spool.open()
        if self._spool.size:
            log.warning("spool not empty at start", extra={"spooled": self._spool.size})
        self._background = [
            asyncio.create_task(self._keep_connected(), name="ingest-connect"),
            asyncio.create_task(self._drain_forever(), name="ingest-drain"),
        ]

    async def stop(self) -> None:
        for task in self._background:
            with contextlib.suppress(Exception):  # a loop that failed has logged why
                await stop_task(task)
        if self._nats is not None:
            await self._nats.close()
        await self._spool.close()

    @property
    def spooled(self) -> int:
        return self._spool.size

    def is_ready(self) -> bool:
        return self._acked is not None and self._nats is not None and self._nats.is_connected

    async def check_ready(self) -> None:
        """Readiness probe: JetStream answers."""
        if self._js is None or not self.is_ready():
            raise ConnectionError("NATS is not connected")
        await self._js.account_info()

    async def accept(self, event_id: str, subject: str, data: bytes) -> Outcome:
        """Publish the event, or spool it durably; returning means it will not be lost."""
        headers = inject({})  # the webhook's trace goes with the event, spooled or not
        if not self._spool.size and self.is_ready():
            try:  # the publisher's own timeout is publish_timeout_s
                return await self._publish_once(event_id, subject, data, headers)
            except UNAVAILABLE as exc:
                log.warning("publish failed, spooling", extra={"error": type(exc).__name__})
        await self._spool.append(event_id, subject, data, headers)
        self._wake.set()
        return Outcome.SPOOLED

    async def _publish_once(
        self, event_id: str, subject: str, data: bytes, headers: dict[str, str]
    ) -> Outcome:
        assert self._acked is not None
        duplicate = await self._acked.publish(subject, data, event_id, headers)
        return Outcome.DUPLICATE if duplicate else Outcome.PUBLISHED

    async def _keep_connected(self) -> None:
        while self._nats is None:
            try:
                self._nats = await connect(
                    self._settings.nats_url,
                    name="ingest",
                    reconnected_cb=self._on_reconnected,
                    disconnected_cb=self._on_disconnected,
                )
            except UNAVAILABLE as exc:
                log.warning("NATS unreachable, spooling", extra={"error": type(exc).__name__})
                await asyncio.sleep(1.0)
        await self._declare()

    async def _declare(self) -> None:
        """Streams declared idempotently; retried until NATS answers."""
        assert self._nats is not None
        js = self._nats.jetstream(timeout=5)
        settings = self._settings
        replicas = settings.nats_stream_replicas
        while True:
            try:
                await ensure_stream(
                    js,
                    ZALO_EVENTS_STREAM.to_config(
                        replicas,
                        name=settings.events_stream,
                        duplicate_window=settings.dedup_window_s,
                    ),
                )
                await ensure_stream(
                    js, ZALO_QUARANTINE_STREAM.to_config(replicas, name=settings.quarantine_stream)
                )
                break
            except UNAVAILABLE as exc:
                log.warning("declaring streams failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(1.0)
        self._js = js
        acked = AckedPublisher(self._nats, self._settings.publish_timeout_s)
        await acked.start()
        self._acked = acked
        self._wake.set()
        log.info("ingest connected to JetStream", extra={"stream": settings.events_stream})

    async def _on_reconnected(self) -> None:
        log.info("NATS reconnected")
        self._wake.set()

    async def _on_disconnected(self) -> None:
        log.warning("NATS disconnected")

    async def _drain_forever(self) -> None:
        while True:
            # asyncio.timeout, not wait_for: on 3.11 wait_for can swallow a cancellation.
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(1.0):
                    await self._wake.wait()
            self._wake.clear()
            try:
                await self._drain()
            except UNAVAILABLE as exc:
                log.warning("spool drain paused", extra={"error": type(exc).__name__})
                await asyncio.sleep(0.5)

    async def _drain(self) -> None:
        while self._spool.size and self.is_ready():
            for row in await self._spool.peek(100):
                await self._publish_once(row.event_id, row.subject, row.data, row.headers)
                await self._spool.remove(row.seq)
            log.info("spool drained a batch", extra={"remaining": self._spool.size})
