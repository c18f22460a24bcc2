"""The pipeline between JetStream and the ledger: decode, write in groups, then ack.

Fetched messages are decoded at once and buffered; one writer task takes everything buffered
(up to `max_batch` events) as one ledger batch, so while a batch is being written the next
one grows (group commit): few MongoDB round trips under load, no waiting when idle. Messages
are acknowledged only after `CounterLedger.apply` returned, i.e. once their counts are in
MongoDB; a failed batch is nak'ed with a delay and comes back.
"""

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from nats.aio.msg import Msg
from pydantic import ValidationError

from services.analytics import telemetry
from services.analytics.increments import Decoded
from services.analytics.ledger import CounterLedger

log = logging.getLogger(__name__)

Decoder = Callable[[bytes], Decoded]
_Buffered = tuple[Decoded, Msg]


@dataclass
class PipelineStats:
    batches: int = 0
    counted: int = 0
    duplicates: int = 0
    rejected: int = 0
    failed_batches: int = 0


class BatchPipeline:
    """Applies buffered events through the ledger, one group at a time."""

    def __init__(
        self, ledger: CounterLedger, max_batch: int = 10_000, retry_delay: float = 2.0
    ) -> None:
        self.ledger = ledger
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
        except Exception as exc:  # Mongo down or slow: deliver the batch again later
            self.stats.failed_batches += 1
            telemetry.not_counted("failed", len(batch))
            log.warning(
                "batch failed, will be redelivered",
                extra={"error": type(exc).__name__, "events": len(batch)},
            )
            for _, message in batch:
                await message.nak(delay=self.retry_delay)
            return
        self.stats.batches += 1
        self.stats.counted += result.counted
        self.stats.duplicates += result.duplicates
        telemetry.counted(result.counted, result.duplicates)
        for _, message in batch:
            await message.ack()

    async def _reject(self, message: Msg, exc: Exception) -> None:
        self.stats.rejected += 1
        telemetry.not_counted("rejected")
        log.warning("event rejected", extra={"subject": message.subject, "reason": _reason(exc)})
        await message.term()
        self._progress.set()


def _reason(exc: Exception) -> Any:
    if isinstance(exc, ValidationError):
        return [f"{'.'.join(map(str, e['loc']))}: {e['type']}" for e in exc.errors()[:5]]
    return type(exc).__name__
