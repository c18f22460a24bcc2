"""Poison messages: a message a FastStream subscriber fails on as often as its consumer
delivers it is recorded on `deadletter.<service>` with the error, then acknowledged.

Handlers catch only what they can handle. Anything else fails the message loudly: the
exception is logged, the message nacked (ack policy NACK_ON_ERROR) and redelivered, so a
transient failure (MongoDB away) heals by itself. On the last delivery the consumer allows
(`max_deliver`), the same failure is a poison message: this middleware publishes a
`MessageDeadLettered` record (which message, which error; never its content) and lets
FastStream acknowledge it, so it neither loops forever nor silently stops being delivered.
A handler's own acknowledgement decisions (`NackMessage`, `RejectMessage`) pass through.
"""

import logging
import traceback
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from faststream import BaseMiddleware
from faststream.exceptions import HandlerException
from faststream.message import StreamMessage
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from shared.events.dead_letter import MessageDeadLettered
from shared.events.envelope import event_bytes
from shared.jetstream import publish_all, times_delivered
from shared.subjects import dead_letter_subject

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT = 5.0  # seconds for the stream to store a record (else: redelivered, tried again)


def where(exc: BaseException) -> str:
    """The exception's type and the innermost place it was raised (`KeyError at
    services/broadcast/handlers.py:88`): enough to find the bug, no data."""
    frames = traceback.extract_tb(exc.__traceback__)
    if not frames:
        return type(exc).__name__
    last = frames[-1]
    path = "/".join(Path(last.filename).parts[-3:])
    return f"{type(exc).__name__} at {path}:{last.lineno}"


async def dead_letter(nc: NatsClient, service: str, raw: Msg, error: str) -> MessageDeadLettered:
    """Record `raw` as a poison message of `service` on `deadletter.<service>` (the caller
    acknowledges or terminates it afterwards, once the record is stored)."""
    record = dead_letter_record(service, raw, error)
    message = (dead_letter_subject(service), event_bytes(record), record.event_id)
    await publish_all(nc, [message], timeout=PUBLISH_TIMEOUT)
    # The error's text may quote the message (a tip, a Zalo id): only `where` is logged.
    extra = {"subject": raw.subject, "seq": record.stream_seq, "error": error}
    log.error("message dead-lettered", extra=extra)
    return record


def dead_letter_record(service: str, raw: Msg, error: str) -> MessageDeadLettered:
    meta = raw.metadata
    return MessageDeadLettered(
        event_id=f"{meta.stream}:{meta.sequence.stream}",
        occurred_at=datetime.now(UTC),
        producer=service,
        subject=raw.subject,
        stream=meta.stream,
        stream_seq=meta.sequence.stream,
        consumer=meta.consumer or "",
        deliveries=meta.num_delivered,
        error=error,
    )


class PoisonMessages:
    """Dead letters for a hand-written pull consumer (analytics' pullers, no FastStream
    middleware): the same record on `deadletter.<service>`, then the message is terminated."""

    def __init__(self, nc: NatsClient, service: str, max_deliver: int) -> None:
        self.nc, self.service, self.max_deliver = nc, service, max_deliver

    def last_delivery(self, raw: Msg) -> bool:
        """Whether the consumer will not deliver `raw` again after this delivery."""
        return times_delivered(raw) >= self.max_deliver

    async def dead_letter(self, raw: Msg, error: str) -> MessageDeadLettered:
        """Record `raw` with `error` (`where(exc)`, never the content), then terminate it."""
        record = await dead_letter(self.nc, self.service, raw, error)
        await raw.term()
        return record


def dead_letters(
    connection: Callable[[], NatsClient], service: str, max_deliver: int
) -> Callable[..., BaseMiddleware]:
    """The middleware for a router whose durables allow `max_deliver` deliveries;
    `connection` gives the NATS connection to publish the record with (once it is open)."""

    class DeadLetters(BaseMiddleware):
        async def consume_scope(self, call_next: Any, msg: StreamMessage[Any]) -> Any:
            try:
                return await call_next(msg)
            except HandlerException:
                raise
            except Exception as exc:
                raw: Msg = msg.raw_message
                if times_delivered(raw) < max_deliver:
                    raise
                await dead_letter(connection(), service, raw, where(exc))
                return None  # acknowledged by FastStream

    return DeadLetters
