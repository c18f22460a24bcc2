"""The intake consumer: pull a batch, screen it, let intake handle it, publish, reply, ack.

Batches come from the durable `reports-intake` consumer through `shared.jetstream`'s
`PullConsumer`: one fetch takes whatever is pending (up to `BATCH`) without waiting, and when
nothing is, a fetch of one message waits for it. A quiet stream then costs one message per
batch and no added wait; a backlog is drained `BATCH` messages at a time with a few bulk
writes each. A fetch of a whole batch that waits (nats-py's, FastStream's pull subscriber)
would wait for the batch to fill, adding its timeout to every tip on a quiet stream.
"""

import asyncio
import logging
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from pydantic import ValidationError
from pymongo.errors import PyMongoError

from services.reports import metrics
from services.reports.intake_plan import Arrival, IntakeResult
from services.reports.services import Reports
from services.reports.settings import ReportsSettings
from shared.events.zalo import ZaloEventKind, ZaloEventReceived
from shared.jetstream import PullConsumer, times_delivered
from shared.process import stop_task
from shared.subjects import zalo_event_subject
from shared.zalo.errors import ZaloError

log = logging.getLogger(__name__)

MESSAGE_KINDS = (ZaloEventKind.USER_MESSAGE, ZaloEventKind.GROUP_MESSAGE)
RETRY_DELAY = 2.0
BATCH = 250
IDLE_WAIT = 5.0  # seconds a fetch of one message waits before it is renewed
PENDING_WAIT = 0.01  # seconds for the server to answer a fetch of what is pending
TRANSIENT = (PyMongoError, NatsError, TimeoutError)


def intake_consumer_config(settings: ReportsSettings) -> ConsumerConfig:
    """The durable `reports-intake` consumer: citizens' 1:1 and group messages only."""
    return ConsumerConfig(
        durable_name=settings.intake_durable,
        filter_subjects=[zalo_event_subject(kind) for kind in MESSAGE_KINDS],
        ack_policy=AckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        max_deliver=settings.intake_max_deliver,
        ack_wait=settings.intake_ack_wait,
    )


@dataclass(frozen=True)
class Screened:
    """A delivered message: the event to triage, or None with what to do instead."""

    event: ZaloEventReceived | None
    verdict: str = "triage"  # or "skip" (ack: not for intake) or "reject" (terminate)


def screen(data: bytes) -> Screened:
    """Decode a delivery and decide whether intake should see it (no I/O)."""
    try:
        event = ZaloEventReceived.model_validate_json(data)
    except ValidationError as exc:
        log.warning("invalid event rejected", extra={"errors": exc.error_count()})
        return Screened(None, "reject")
    if event.kind not in MESSAGE_KINDS:
        log.debug("event kind not triaged", extra={"event_id": event.event_id})
        return Screened(None, "skip")
    if not event.user_id:
        log.warning("message without sender rejected", extra={"event_id": event.event_id})
        return Screened(None, "reject")
    return Screened(event)


@dataclass(frozen=True)
class Delivery:
    """A message of the batch: what JetStream delivered, and what intake read of it."""

    msg: Msg
    arrival: Arrival

    @property
    def event(self) -> ZaloEventReceived:
        return self.arrival.event


class IntakeConsumer:
    """Pulls batches from `reports-intake` and handles each until stopped."""

    def __init__(self, nc: NatsClient, reports: Reports, batch: int = BATCH) -> None:
        settings = reports.settings
        self.reports = reports
        self.batch = batch
        self._pulls = PullConsumer(nc, settings.zalo_events_stream, settings.intake_durable)
        self._task: asyncio.Task[None] | None = None
        self._ahead: asyncio.Task[list[Delivery]] | None = None

    async def start(self) -> None:
        await self._pulls.open()
        self._task = asyncio.create_task(self._run(), name="reports intake")

    async def stop(self) -> None:
        if self._task is not None:
            await stop_task(self._task)
        if self._ahead is not None:
            await stop_task(self._ahead)
        await self._pulls.close()

    async def _run(self) -> None:
        """Each batch is pulled and read (`Intake.read`) while the one before it is handled,
        and handled after it: one batch at a time, in order."""
        self._ahead = asyncio.create_task(self._prepare())
        while True:
            batch = await self._ahead
            self._ahead = asyncio.create_task(self._prepare())
            if batch:
                with metrics.handling([d.msg for d in batch]):
                    await self.handle(batch)

    async def _prepare(self) -> list[Delivery]:
        try:
            deliveries = await self._next_batch()
        except NatsError as exc:  # NATS away: the client reconnects; ask again
            log.warning("intake pull failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(RETRY_DELAY)
            return []
        accepted: list[tuple[Msg, ZaloEventReceived]] = []
        for msg in deliveries:
            screened = screen(msg.data)
            if screened.event is not None:
                accepted.append((msg, screened.event))
            elif screened.verdict == "skip":
                await msg.ack()
            else:
                await msg.term()
        arrivals = await self.reports.intake.read([event for _, event in accepted])
        return [
            Delivery(msg, arrival) for (msg, _), arrival in zip(accepted, arrivals, strict=True)
        ]

    async def _next_batch(self) -> list[Msg]:
        """What is pending (up to `BATCH`), else the first message to come (or nothing)."""
        for batch, wait in ((self.batch, PENDING_WAIT), (1, IDLE_WAIT)):
            try:
                return await self._pulls.fetch(batch, wait)
            except NatsTimeoutError:
                continue
        return []

    async def handle(self, batch: list[Delivery]) -> None:
        """Handle the batch's messages together; one failure retries them all, and an
        unexpected one is retried message by message so it holds up only its own."""
        try:
            await self._triage(batch)
        except TRANSIENT as exc:
            log.warning(
                "intake failed, will retry",
                extra={"messages": len(batch), "error": type(exc).__name__},
            )
            await asyncio.gather(*(d.msg.nak(delay=RETRY_DELAY) for d in batch))
        except Exception:
            if len(batch) > 1:
                for delivery in batch:
                    await self.handle([delivery])
                return
            log.exception("intake failed", extra={"event_id": batch[0].event.event_id})
            await batch[0].msg.nak(delay=RETRY_DELAY)

    async def _triage(self, batch: list[Delivery]) -> None:
        reports = self.reports
        first = frozenset(d.event.event_id for d in batch if times_delivered(d.msg) == 1)
        plan = await reports.intake.process([d.arrival for d in batch], first)
        await asyncio.gather(
            reports.intake.finish(plan), reports.publisher.publish_staged(plan.staged)
        )
        replies = zip(plan.results, batch, strict=True)
        await asyncio.gather(*(_reply(reports, result, d.event) for result, d in replies))
        for delivery, result in zip(batch, plan.results, strict=True):
            await delivery.msg.ack()
            with metrics.message_handled(result.outcome, delivery.msg.headers):
                log.info(
                    "message triaged",
                    extra={
                        "event_id": delivery.event.event_id,
                        "outcome": result.outcome,
                        "case_id": result.case_id,
                    },
                )


async def _reply(reports: Reports, result: IntakeResult, event: ZaloEventReceived) -> None:
    if not (result.reply and result.reply_key and event.user_id) or reports.messenger is None:
        return
    if not reports.settings.send_replies:
        return
    if not await reports.store.claim_reply(result.reply_key, datetime.now(UTC)):
        return
    try:
        await reports.messenger.send_text(event.user_id, result.reply)
    except (ZaloError, httpx.HTTPError) as exc:
        # At most once: the reply is claimed before sending, so a failure is logged, not retried.
        log.warning(
            "automatic reply failed",
            extra={"case_id": result.case_id, "error": type(exc).__name__},
        )
