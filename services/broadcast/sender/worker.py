"""Sender workers: take deliveries from the work queue and call Zalo, exactly once each.

Exactly-once per (notice, target) rests on insert-only documents keyed by `_id` (see
`store.DeliveryStore`), not on JetStream:
1. claim   attempt k of delivery D by inserting `D#k` (one `insert_many` per batch; exactly one
           worker wins an attempt);
2. send    through the Zalo client, while a heartbeat keeps the worker alive and the messages'
           ack wait extended;
3. record  the results `D#k` (one `insert_many` per batch), publish the outcome events, ack.
A first delivery of a message takes the fast path (claim attempt 1, no read). A redelivered
message, or a lost claim, reads where the delivery stands by `_id` and follows it. Every
decision on the way is a plain function of `decisions.py`; this module loads what they need,
calls them and performs what they return. See docs/broadcast.md for the residual window.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from pymongo.errors import PyMongoError

from services.broadcast import metrics
from services.broadcast.domain import Notice, group_text, officer_text
from services.broadcast.outcomes import Outcomes
from services.broadcast.records import (
    Claim,
    Delivery,
    DeliveryView,
    Echo,
    Result,
    parse_delivery,
)
from services.broadcast.sender import decisions
from services.broadcast.sender.decisions import Policy, SendFailure, Verdict
from services.broadcast.settings import BroadcastSettings
from services.broadcast.store import DeliveryStore, NoticeStore
from shared.dead_letters import dead_letter
from shared.jetstream import Message, PullConsumer, publish_all, times_delivered
from shared.subjects import (
    BROADCAST_ECHOES_DURABLE,
    BROADCAST_SENDER_DURABLE,
    BROADCAST_WORK_STREAM,
    ZALO_EVENTS_STREAM,
)
from shared.zalo.client import ZaloClient
from shared.zalo.errors import RateLimited, ZaloError, ZaloHttpError
from shared.zalo.models import BroadcastTarget

log = logging.getLogger(__name__)
RECORD_TRIES = 5  # inserting a batch's results: tries before the worker gives its id up
RESUME_ROUNDS = 20  # a delivery followed this often without settling is redelivered later


@dataclass
class Claimed:
    """A delivery this worker holds attempt `k` of."""

    msg: Msg
    delivery: Delivery
    k: int
    failures: int = 0  # failed attempts before this one


@dataclass
class Batch:
    worker: str  # the worker id the claims of this batch carry
    claimed: list[Claimed] = field(default_factory=list)


def policy(settings: BroadcastSettings) -> Policy:
    return Policy(
        claim_lease=settings.claim_lease,
        echo_grace=settings.echo_grace,
        max_attempts=settings.max_attempts,
        retry_base_delay=settings.retry_base_delay,
        retry_max_delay=settings.retry_max_delay,
        manual_reminder_after=settings.manual_reminder_after,
    )


def send_failure(exc: ZaloError) -> SendFailure:
    return SendFailure(
        error=f"{type(exc).__name__}: {exc}",
        retryable=exc.retryable,
        maybe_delivered=isinstance(exc, ZaloHttpError) and exc.maybe_delivered,
        rate_limited=isinstance(exc, RateLimited),
        retry_after=exc.retry_after if isinstance(exc, RateLimited) else None,
    )


class Sender:
    def __init__(
        self,
        settings: BroadcastSettings,
        nc: NatsClient,
        notices: NoticeStore,
        deliveries: DeliveryStore,
        zalo: ZaloClient,
        echo_durable: str = BROADCAST_ECHOES_DURABLE,
    ) -> None:
        self.settings, self.nc, self.js = settings, nc, nc.jetstream()
        self.notices, self.deliveries, self.zalo = notices, deliveries, zalo
        self.policy = policy(settings)
        self.echo_durable = echo_durable
        self.outcomes = Outcomes(nc)
        self.worker = uuid.uuid4().hex[:8]
        self._notices: dict[str, tuple[float, Notice]] = {}
        self._fetching: dict[str, asyncio.Future[Notice | None]] = {}
        self._slots = asyncio.Semaphore(settings.sender_concurrency)
        self._echo_poll = asyncio.Lock()
        self._echoes_recorded_to = 0  # stream sequence up to which every echo is recorded
        self.alive_until = datetime.now(UTC)  # set by keep_alive before any claim

    @property
    def durable(self) -> str:
        return BROADCAST_SENDER_DURABLE

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and handle batches until `stop` is set (one loop; a process may run several)."""
        s = self.settings
        async with PullConsumer(self.nc, BROADCAST_WORK_STREAM.name, self.durable) as work:
            while not stop.is_set():
                try:
                    msgs = await work.fetch(s.sender_batch, s.sender_fetch_timeout)
                except (NatsTimeoutError, TimeoutError):  # idle (or the request was refused)
                    continue
                except (nats.errors.Error, OSError):  # e.g. NATS reconnecting: try again
                    log.warning("fetch failed", exc_info=True)
                    await asyncio.sleep(0.2)
                    continue
                try:
                    with metrics.sending(msgs):
                        await self.handle(msgs)
                except Exception:
                    # Not dead-lettered by delivery count: the work queue's redeliveries count
                    # rate-limit pauses and waits on echoes too (its attempt bound lives in the
                    # delivery documents), and a batch fails as a whole when MongoDB or NATS is
                    # away, which must never drop a delivery.
                    log.exception("batch failed", extra={"messages": len(msgs)})

    async def keep_alive(self, stop: asyncio.Event) -> None:
        """The worker's heartbeat. It only trusts what it wrote: once its own liveness has
        lapsed it stops renewing (another worker may be taking its attempts over) and sends
        nothing more until a new worker id starts."""
        period = max(0.2, self.settings.claim_lease / 4)
        while not stop.is_set():
            now = datetime.now(UTC)
            if now >= self.alive_until:
                log.error("worker liveness lapsed, sending stops", extra={"worker": self.worker})
                self.worker, self.alive_until = uuid.uuid4().hex[:8], self.lease(now)
            lease = self.lease(now)
            try:
                await self.deliveries.beat(self.worker, lease)
                self.alive_until = lease if now < self.alive_until else self.alive_until
            except PyMongoError:  # Mongo hiccup: retry on the next beat; sends check the lease
                log.warning("worker heartbeat failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    async def handle(self, msgs: list[Msg]) -> None:
        """Claim, send and record one batch of work-queue messages."""
        started, now = time.monotonic(), datetime.now(UTC)
        batch = Batch(worker=self.worker)
        slow: list[tuple[Msg, Delivery]] = []
        fresh: list[tuple[Msg, Delivery]] = []
        settle = []
        for msg in msgs:
            delivery = parse_delivery(msg.data)
            if delivery is None:  # poison at once: it will never be readable
                settle.append(self._dead_letter(msg, "unreadable delivery message"))
            elif times_delivered(msg) == 1:
                fresh.append((msg, delivery))  # the usual case: nobody has tried it yet
            else:
                slow.append((msg, delivery))
        claims = [Claim.of(delivery, 1, batch.worker, now) for _, delivery in fresh]
        taken = await self.deliveries.insert_claims(claims)
        for (msg, delivery), claim in zip(fresh, claims, strict=True):
            if claim.id in taken:
                slow.append((msg, delivery))
            else:
                batch.claimed.append(Claimed(msg, delivery, 1))
        settle += [self._resume(msg, delivery, batch) for msg, delivery in slow]
        beat = asyncio.create_task(self._progress(batch))
        try:
            await asyncio.gather(*settle)
            if batch.claimed:
                await self._send_claimed(batch, time.monotonic() - started)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    async def _dead_letter(self, msg: Msg, error: str) -> None:
        await dead_letter(self.nc, "broadcast", msg, error)
        await msg.term()

    async def _resume(self, msg: Msg, delivery: Delivery, batch: Batch) -> None:
        """Follow a delivery somebody has tried already: finish it, wait, or take it over."""
        for _ in range(RESUME_ROUNDS):
            now = datetime.now(UTC)
            attempt = await self.deliveries.attempt(delivery)
            holder = decisions.holder_to_check(attempt)
            alive = await self.deliveries.alive_until(holder) if holder else None
            step = decisions.resume(attempt, now, alive, self.policy)
            match step:
                case decisions.Finished():
                    assert attempt.result is not None
                    await self._finished(msg, DeliveryView(delivery, attempt.result))
                    return
                case decisions.Wait(delay):
                    await msg.nak(delay=delay)
                    return
                case decisions.InDoubt(since):
                    if not await self._may_resend(msg, delivery, attempt.k, since, batch):
                        return
            mine = Claim.of(delivery, attempt.k + 1, batch.worker, now)
            if not await self.deliveries.insert_claims([mine]):
                batch.claimed.append(Claimed(msg, delivery, mine.k, attempt.failures))
                return
        await msg.nak(delay=1.0)

    async def _finished(self, msg: Msg, view: DeliveryView) -> None:
        """Re-publish the outcome (the first worker may have died before it), then ack."""
        await self.outcomes.outcome(view)
        await msg.ack()

    async def _may_resend(
        self, msg: Msg, delivery: Delivery, k: int, since: datetime, batch: Batch
    ) -> bool:
        """Attempt k is in doubt since `since`: True to send again, else the message is
        answered here (resolved by the echo, or redelivered later)."""
        now = datetime.now(UTC)
        waited = (now - since).total_seconds()
        echoed = delivery.is_echoed
        echo = await self.deliveries.echo_seen(delivery.target, delivery.code) if echoed else None
        caught_up: bool | None = None
        while True:
            step = decisions.on_doubt(echoed, echo is not None, waited, caught_up, self.policy)
            match step:
                case decisions.AskEchoConsumer():
                    caught_up = await self._echoes_caught_up()
                    echo = await self.deliveries.echo_seen(delivery.target, delivery.code)
                case decisions.ResolveByEcho():
                    assert echo is not None
                    await self._resolve_by_echo(msg, delivery, k, echo, batch, now)
                    return False
                case decisions.Wait(delay):
                    await msg.nak(delay=delay)
                    return False
                case decisions.Resend():
                    log.warning("in-doubt delivery sent again", extra={"delivery_id": delivery.id})
                    return True

    async def _resolve_by_echo(
        self,
        msg: Msg,
        delivery: Delivery,
        k: int,
        echo: Echo,
        batch: Batch,
        now: datetime,
    ) -> None:
        """With an echo of the post, attempt k+1 records the delivery sent (nothing is sent)."""
        claim = Claim.of(delivery, k + 1, "echo", now)
        if await self.deliveries.insert_claims([claim]):
            await msg.nak(delay=0.5)  # someone else moved on: follow them next time
            return
        result = Result.of(delivery, claim.k, decisions.echoed(echo, now), now)
        await self.deliveries.insert_results([result])
        await self._finished(msg, DeliveryView(delivery, result))

    async def _echoes_caught_up(self) -> bool:
        """True once every Zalo event stored so far (any echo of a post older than the grace
        among them) has been recorded: the echo consumer's ack floor reached the stream's last
        sequence as it was when we asked, or nothing is pending on it. Waits up to one grace;
        concurrent callers share one poll."""
        try:
            stream = await self.js.stream_info(ZALO_EVENTS_STREAM.name)
            target = stream.state.last_seq
            deadline = time.monotonic() + self.settings.echo_grace
            async with self._echo_poll:
                while self._echoes_recorded_to < target:
                    info = await self.js.consumer_info(ZALO_EVENTS_STREAM.name, self.echo_durable)
                    floor = info.ack_floor.stream_seq if info.ack_floor else 0
                    if not info.num_pending and not info.num_ack_pending:
                        floor = max(floor, target)
                    self._echoes_recorded_to = max(self._echoes_recorded_to, floor)
                    if floor >= target:
                        break
                    if time.monotonic() > deadline:
                        return False
                    await asyncio.sleep(0.1)
        except (nats.errors.Error, OSError):
            log.warning("echo consumer unreadable", exc_info=True)
            return False
        return True

    async def _send_claimed(self, batch: Batch, claimed_in: float) -> None:
        started = time.monotonic()
        verdicts = await asyncio.gather(*(self._send_one(c, batch) for c in batch.claimed))
        sent = time.monotonic()
        now = datetime.now(UTC)
        results = [
            Result.of(c.delivery, c.k, v.outcome, now, c.failures, batch.worker)
            for c, v in zip(batch.claimed, verdicts, strict=True)
        ]
        await self._record(results)
        recorded = time.monotonic()
        await self._settle(batch, results, verdicts)
        log.info(
            "batch done",
            extra={
                "claimed": len(batch.claimed),
                "claim_s": round(claimed_in, 4),
                "send_s": round(sent - started, 4),
                "record_s": round(recorded - sent, 4),
                "settle_s": round(time.monotonic() - recorded, 4),
            },
        )

    async def _record(self, results: list[Result]) -> None:
        """Insert a batch's results. If MongoDB keeps refusing, this worker gives its id up:
        its open attempts fall in doubt after the lease and are resolved like a crash."""
        for attempt in range(RECORD_TRIES):
            try:
                await self.deliveries.insert_results(results)
                return
            except PyMongoError:
                if attempt == RECORD_TRIES - 1:
                    self.alive_until = datetime.now(UTC)
                    raise
                log.warning("recording results failed, retrying", exc_info=True)
                await asyncio.sleep(0.2 * 2**attempt)

    async def _settle(self, batch: Batch, results: list[Result], verdicts: list[Verdict]) -> None:
        """Publish the batch's outcome and dead-letter events (pipelined), then answer NATS.
        If publishing fails the messages are not answered: their redelivery finds the
        results recorded and publishes again (the events are deduplicated by id)."""
        events: list[Message] = []
        for c, result, verdict in zip(batch.claimed, results, verdicts, strict=True):
            view = DeliveryView(c.delivery, result)
            metrics.settled(view.state, c.delivery.target_kind, verdict.dead_error is not None)
            if verdict.dead_error is not None:
                log.warning(
                    "delivery dead-lettered",
                    extra={"delivery_id": c.delivery.id, "error": verdict.dead_error},
                )
                events.append(self.outcomes.dead_letter_message(view, verdict.dead_error))
            if verdict.publish:
                events.append(self.outcomes.outcome_message(view))
        await publish_all(self.nc, events, timeout=max(5.0, self.settings.sender_ack_wait / 2))
        for c, verdict in zip(batch.claimed, verdicts, strict=True):
            if verdict.nak_delay is None:
                await c.msg.ack()
            else:
                await c.msg.nak(delay=verdict.nak_delay)

    async def _progress(self, batch: Batch) -> None:
        """Tell JetStream the batch's messages are being worked on (no redelivery meanwhile)."""
        period = max(0.2, self.settings.sender_ack_wait / 3)
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):
                await asyncio.gather(*(c.msg.in_progress() for c in list(batch.claimed)))

    async def _send_one(self, claimed: Claimed, batch: Batch) -> Verdict:
        delivery = claimed.delivery
        async with self._slots:
            notice = await self._notice(delivery.notice_id)
            now = datetime.now(UTC)
            holds_lease = batch.worker == self.worker and now < self.alive_until
            skipped = decisions.before_send(notice, now, holds_lease)
            if skipped is not None:
                return skipped
            assert notice is not None
            try:
                return await self._deliver(delivery, notice)
            except ZaloError as exc:
                failure = send_failure(exc)
                return decisions.failed(failure, claimed.failures, datetime.now(UTC), self.policy)

    async def _deliver(self, delivery: Delivery, notice: Notice) -> Verdict:
        if delivery.target_kind == "followers":
            return await self._broadcast(delivery, notice)
        if delivery.is_manual:
            text = officer_text(notice, delivery.group_name or "", False)
            to_officer = await self.zalo.send_text(str(delivery.officer_id), text)
            return decisions.awaiting_officer(to_officer.message_id, datetime.now(UTC), self.policy)
        posted = await self.zalo.send_group_text(delivery.target, group_text(notice))
        return decisions.sent(posted.message_id, datetime.now(UTC))

    async def _broadcast(self, delivery: Delivery, notice: Notice) -> Verdict:
        """Followers: the broadcast API sends only articles, so publish one, then broadcast it
        (the article's id is kept on the delivery, so a retry does not publish a second)."""
        article_id = await self.deliveries.article(delivery.id)
        if not article_id:
            created = await self.zalo.create_article(
                notice.title,
                group_text(notice),
                author="Công an TP Đồng Hới",
                cover_url=notice.image_url,
            )
            created_id = await self.zalo.article_id_for(created.token)
            article_id = await self.deliveries.keep_article(delivery.id, created_id)
        targeting = notice.targets.follower_targeting
        target = BroadcastTarget.model_validate(targeting.model_dump()) if targeting else None
        posted = await self.zalo.broadcast_article(str(article_id), target)
        return decisions.sent(posted.message_id, datetime.now(UTC))

    async def _notice(self, notice_id: str) -> Notice | None:
        """The notice, cached for a second (a cancel must be seen quickly). Concurrent sends
        share one read when the cache runs out (not one read each)."""
        cached = self._notices.get(notice_id)
        if cached is not None and time.monotonic() - cached[0] <= 1.0:
            return cached[1]
        task = self._fetching.get(notice_id)
        if task is None:
            task = asyncio.ensure_future(self._fetch_notice(notice_id))
            self._fetching[notice_id] = task
            task.add_done_callback(lambda _: self._fetching.pop(notice_id, None))
        return await asyncio.shield(task)

    async def _fetch_notice(self, notice_id: str) -> Notice | None:
        fresh = await self.notices.get(notice_id)
        if fresh is not None:
            if len(self._notices) > 1000:
                self._notices.clear()
            self._notices[notice_id] = (time.monotonic(), fresh)
        return fresh

    def lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.settings.claim_lease)
