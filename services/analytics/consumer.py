"""The pipeline between JetStream and the ledger: decode, write in groups, then ack.

Fetched messages are decoded at once and buffered; one writer task takes everything buffered
(up to `max_batch` events) as one ledger batch, so while a batch is being written the next
one grows (group commit): few MongoDB round trips under load, no waiting when idle. Messages
are acknowledged only after `CounterLedger.apply` returned, i.e. once their counts are in
MongoDB. A batch that fails for a reason the service can wait out (MongoDB or NATS away or
slow) is nak'ed with a delay and comes back. Anything else is a bug or a poison event: the batch
is written again event by event, so that only the event at fault is held up, and that event is
nak'ed until its last delivery, then recorded on `deadletter.analytics` with the error
(`shared.dead_letters`). An event that cannot be decoded would fail the same way on every
delivery: it is recorded there at once.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from services.analytics import telemetry
from services.analytics.increments import Decoded
from services.analytics.ledger import CounterLedger
from shared.dead_letters import PoisonMessages, where

log = logging.getLogger(__name__)

Decoder = Callable[[bytes], Decoded]
_Buffered = tuple[Decoded, Msg]
# What a batch may fail with and still succeed later, unchanged: it is delivered again.
TRANSIENT = (PyMongoError, NatsError, TimeoutError, ConnectionError)


@dataclass
class PipelineStats:
    batches: int = 0
    counted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed_batches: int = 0
    dead_lettered: int = 0


class BatchPipeline:
    """Applies buffered events through the ledger, one group at a time."""

    def __init__(
        self,
        ledger: CounterLedger,
        poison: PoisonMessages,
        max_batch: int = 10_000,
        retry_delay: float = 2.0,
    ) -> None:
        self.ledger = ledger
        self.poison = poison
        self.max_batch = max_batch
        self.retry_delay = retry_delay
        self.stats = PipelineStats()
        self._buffer: list[_Buffered] = []
        self._room = asyncio.Condition()
        self._writer: asyncio.Task[None] | None = None
        self._progress = asyncio.Event()

    async def submit(self, messages: Sequence[Msg], decode: Decoder) -> None:
        """Decode and buffer messages; waits while two full batches are already buffered."""
        rejected: list[tuple[Msg, Exception]] = []
        for message in messages:
            try:
                self._buffer.append((decode(message.data), message))
            except (ValidationError, ValueError) as exc:
                rejected.append((message, exc))
        for message, error in rejected:
            await self._reject(message, error)
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._write_loop())
        async with self._room:
            await self._room.wait_for(lambda: len(self._buffer) < 2 * self.max_batch)

    async def close(self) -> None:
        """Wait for the buffered events to be written (and acked or nak'ed)."""
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def wait_until(self, condition: Callable[[PipelineStats], bool], timeout: float) -> None:
        """Wait (at most `timeout` s) until `condition(stats)` holds after some batch."""
        try:
            async with asyncio.timeout(timeout):
                while not condition(self.stats):
                    self._progress.clear()
                    await self._progress.wait()
        except TimeoutError:
            raise TimeoutError(f"condition not met after {timeout} s: {self.stats}") from None

    async def _write_loop(self) -> None:
        while self._buffer:
            batch, self._buffer = self._buffer[: self.max_batch], self._buffer[self.max_batch :]
            async with self._room:
                self._room.notify_all()
            try:
                await self._write(batch)
            finally:
                self._progress.set()

    async def _write(self, batch: list[_Buffered]) -> None:
        with telemetry.writing([message for _, message in batch]):
            await self._write_batch(batch)

    async def _write_batch(self, batch: list[_Buffered]) -> None:
        try:
            # Facts first: idempotent by themselves, so a redelivery may write them again.
            await self.ledger.write_facts(f for decoded, _ in batch for f in decoded.facts)
            result = await self.ledger.apply([(d.event_id, d.increments) for d, _ in batch])
        except TRANSIENT as exc:  # Mongo or NATS down or slow: deliver the batch again later
            self.stats.failed_batches += 1
            telemetry.not_counted("failed", len(batch))
            log.warning(
                "batch failed, will be redelivered",
                extra={"error": type(exc).__name__, "events": len(batch)},
            )
            for _, message in batch:
                await message.nak(delay=self.retry_delay)
            return
        except Exception as exc:  # a bug or a poison event: find it, hold up only it
            if len(batch) > 1:
                for item in batch:  # the ledger counts an event once, whatever came before
                    await self._write_batch([item])
                return
            await self._failed(batch[0][1], exc)
            return
        self.stats.batches += 1
        self.stats.counted += result.counted
        self.stats.duplicates += result.duplicates
        telemetry.counted(result.counted, result.duplicates)
        for _, message in batch:
            await message.ack()

    async def _failed(self, message: Msg, exc: Exception) -> None:
        """An event that failed alone for no reason the service can wait out."""
        self.stats.failed_batches += 1
        telemetry.not_counted("failed")
        if self.poison.last_delivery(message):
            self.stats.dead_lettered += 1
            await self.poison.dead_letter(message, where(exc))
            return
        log.error(
            "event failed, will be redelivered",
            extra={"subject": message.subject, "error": where(exc)},
        )
        await message.nak(delay=self.retry_delay)

    async def _reject(self, message: Msg, exc: Exception) -> None:
        """An event that cannot be decoded: the same on every delivery, so recorded at once."""
        self.stats.rejected += 1
        telemetry.not_counted("rejected")
        log.warning("event rejected", extra={"subject": message.subject, "reason": _reason(exc)})
        await self.poison.dead_letter(message, _error(exc))
        self._progress.set()


def _error(exc: Exception) -> str:
    """The dead letter's error: the fields at fault and their error types, no values."""
    reason = _reason(exc)
    return f"{type(exc).__name__}: {'; '.join(reason)}" if isinstance(reason, list) else reason


def _reason(exc: Exception) -> Any:
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors()[:5]]
    return type(exc).__name__
