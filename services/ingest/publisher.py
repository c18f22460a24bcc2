"""Publishes every accepted event to JetStream exactly once, or spools it when NATS is away.

Exactly once across Zalo's whole retry horizon takes two layers:
- JetStream drops a repeated `Nats-Msg-Id` within the stream's duplicate window (fast retries,
  concurrent deliveries of the same body);
- a key-value ledger of accepted event ids, kept as long as an event can still be accepted
  (`max_event_age_s` + skew), answers the retries that come after that window.
While the spool holds anything, new events queue behind it so that order is kept.
"""

import asyncio
import contextlib
import logging
from enum import StrEnum

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import KeyValueConfig, StorageType
from nats.js.errors import KeyNotFoundError
from nats.js.kv import KeyValue

from services.ingest.settings import IngestSettings
from services.ingest.spool import Spool
from shared.jetstream import connect, ensure_key_value, ensure_stream
from shared.subjects import ZALO_EVENTS_STREAM, ZALO_QUARANTINE_STREAM

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
        self._nc: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._ledger: KeyValue | None = None
        self._wake = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
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
            task.cancel()
        await asyncio.gather(*self._background, return_exceptions=True)
        if self._tasks:
            await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._nc is not None:
            await self._nc.close()
        await self._spool.close()

    @property
    def spooled(self) -> int:
        return self._spool.size

    def is_ready(self) -> bool:
        return self._ledger is not None and self._nc is not None and self._nc.is_connected

    async def check_ready(self) -> None:
        """Readiness probe: JetStream answers."""
        if self._js is None or not self.is_ready():
            raise ConnectionError("NATS is not connected")
        await self._js.account_info()

    async def accept(self, event_id: str, subject: str, data: bytes) -> Outcome:
        """Publish the event, or spool it durably; returning means it will not be lost."""
        if not self._spool.size and self.is_ready():
            try:
                async with asyncio.timeout(self._settings.publish_timeout_s):
                    return await self._publish_once(event_id, subject, data)
            except UNAVAILABLE as exc:
                log.warning("publish failed, spooling", extra={"error": type(exc).__name__})
        await self._spool.append(event_id, subject, data)
        self._wake.set()
        return Outcome.SPOOLED

    async def _publish_once(self, event_id: str, subject: str, data: bytes) -> Outcome:
        assert self._js is not None
        assert self._ledger is not None
        if await self._in_ledger(self._ledger, event_id):
            return Outcome.DUPLICATE
        ack = await self._js.publish(subject, data, headers={"Nats-Msg-Id": event_id})
        self._remember(self._ledger, event_id, ack.seq)
        return Outcome.DUPLICATE if ack.duplicate else Outcome.PUBLISHED

    @staticmethod
    async def _in_ledger(ledger: KeyValue, event_id: str) -> bool:
        try:
            await ledger.get(event_id)
        except KeyNotFoundError:
            return False
        return True

    def _remember(self, ledger: KeyValue, event_id: str, seq: int) -> None:
        # Not awaited by the webhook: until it lands, the stream's duplicate window covers it.
        task = asyncio.create_task(self._put_ledger(ledger, event_id, seq))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    @staticmethod
    async def _put_ledger(ledger: KeyValue, event_id: str, seq: int) -> None:
        try:
            await ledger.put(event_id, str(seq).encode())
        except UNAVAILABLE as exc:
            log.warning(
                "ledger write failed", extra={"event_id": event_id, "error": type(exc).__name__}
            )

    async def _keep_connected(self) -> None:
        while self._nc is None:
            try:
                self._nc = await connect(
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
        """Streams and the ledger, declared idempotently; retried until NATS answers."""
        assert self._nc is not None
        js = self._nc.jetstream(timeout=5)
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
                await ensure_key_value(js, self._ledger_config())
                break
            except UNAVAILABLE as exc:
                log.warning("declaring streams failed", extra={"error": type(exc).__name__})
                await asyncio.sleep(1.0)
        self._js = self._nc.jetstream(timeout=self._settings.publish_timeout_s)
        self._ledger = await self._js.key_value(settings.ledger_bucket)
        self._wake.set()
        log.info("ingest connected to JetStream", extra={"stream": settings.events_stream})

    def _ledger_config(self) -> KeyValueConfig:
        return KeyValueConfig(
            bucket=self._settings.ledger_bucket,
            description="Ids of accepted Zalo events, for dedup beyond the stream window.",
            history=1,
            ttl=self._settings.ledger_ttl_s,
            storage=StorageType.FILE,
            replicas=self._settings.nats_stream_replicas,
            direct=True,
        )

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
                await self._publish_once(row.event_id, row.subject, row.data)
                await self._spool.remove(row.seq)
            log.info("spool drained a batch", extra={"remaining": self._spool.size})
