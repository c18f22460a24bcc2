"""Sender workers: take deliveries from the work queue and call Zalo, exactly once each.

Exactly-once per (notice, target) rests on insert-only documents keyed by `_id` (see
`store.DeliveryStore`), not on JetStream:
1. claim   attempt k of delivery D by inserting `D#k` (one `insert_many` per batch; exactly one
           worker wins an attempt);
2. send    through the Zalo client, while a heartbeat keeps the worker alive and the messages'
           ack wait extended;
3. record  the results `D#k` (one `insert_many` per batch), publish the outcome events, ack.
A first delivery of a message takes the fast path (claim attempt 1, no read). A redelivered
message, or a lost claim, reads where the delivery stands by `_id` and follows it: finished
(re-publish the outcome, ack), waiting for a retry time, held by a live worker (wait), or in
doubt (its worker died mid-send, or Zalo answered "maybe delivered"). An attempt in doubt is
resolved by Zalo's echo of the post (`oa_send_group_*` webhook, recorded from
`zalo.event.oa_message`); without one the delivery is sent again only after `echo_grace` *and*
once the echo consumer has caught up with every echo stored so far. See docs/broadcast.md for
the residual window.

Run `python -m services.broadcast.sender` for worker-only replicas.
"""

import asyncio
import contextlib
import json
import logging
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from services.broadcast import metrics
from services.broadcast.domain import (
    Channel,
    DeliveryState,
    Notice,
    NoticeStatus,
    group_text,
    officer_text,
    retry_delay,
)
from services.broadcast.fetching import WorkFetcher
from services.broadcast.publishing import Message, publish_all
from services.broadcast.settings import BroadcastSettings
from services.broadcast.store import (
    BOOKKEEPING_CLAIMS,
    DeliveryStore,
    NoticeStore,
    bookkeeping_claim,
    next_result,
    result_view,
)
from shared.events.broadcast import DeliveryDeadLettered, DeliveryOutcomeRecorded
from shared.events.envelope import event_bytes
from shared.subjects import (
    BROADCAST_DEAD_LETTER,
    BROADCAST_ECHOES_DURABLE,
    BROADCAST_SENDER_DURABLE,
    BROADCAST_WORK_STREAM,
    ZALO_EVENTS_STREAM,
    broadcast_outcome_subject,
)
from shared.zalo.client import ZaloClient
from shared.zalo.errors import RateLimited, ZaloError, ZaloHttpError
from shared.zalo.models import BroadcastTarget

log = logging.getLogger(__name__)
Doc = dict[str, Any]
RECORD_TRIES = 5  # inserting a batch's results: tries before the worker gives its id up
# An in-doubt send waits for a backlog of echoes up to this many graces, then goes out anyway
# (an echo consumer that is down must not hold deliveries forever).
ECHO_BACKLOG_GRACES = 4


@dataclass
class Verdict:
    """What became of one attempt: the result's fields, and how to answer NATS."""

    fields: Doc
    nak_delay: float | None = None  # None = ack
    dead_error: str | None = None
    publish: bool = False  # publish an outcome event


@dataclass
class Claimed:
    """A delivery (its static fields) this worker holds attempt `k` of."""

    msg: Msg
    doc: Doc
    k: int
    failures: int = 0  # failed attempts before this one


@dataclass
class Batch:
    worker: str  # the worker id the claims of this batch carry
    claimed: list[Claimed] = field(default_factory=list)


class Outcomes:
    """Publishes outcome and dead-letter events (deduplicated by their event ids)."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def outcome(self, doc: Doc) -> None:
        """`doc`: a delivery view (`_id` = delivery id, `claims` = attempt, `state`)."""
        subject, body, msg_id = self.outcome_message(doc)
        await self.js.publish(subject, body, headers={"Nats-Msg-Id": msg_id})

    def outcome_message(self, doc: Doc) -> Message:
        state = str(doc["state"])
        event = DeliveryOutcomeRecorded(
            event_id=f"{doc['_id']}:{state}:{doc.get('claims', 0)}",
            occurred_at=datetime.now(UTC),
            notice_id=doc["notice_id"],
            delivery_id=doc["_id"],
            msg_type=doc.get("msg_type") or "Alert",
            category=doc.get("category") or "other",
            target_kind=doc["target_kind"],
            target_id=doc["target"],
            ward=doc.get("ward"),
            channel=doc.get("channel") or "oa",
            state=state,
            attempts=int(doc.get("claims", 0)),
            error=doc.get("last_error"),
            test_mode=bool(doc.get("test_mode")),
        )
        return broadcast_outcome_subject(state), event_bytes(event), event.event_id

    def dead_letter_message(self, doc: Doc, error: str) -> Message:
        event = DeliveryDeadLettered(
            event_id=f"{doc['_id']}:dead",
            occurred_at=datetime.now(UTC),
            notice_id=doc["notice_id"],
            delivery_id=doc["_id"],
            target_kind=doc["target_kind"],
            target_id=doc["target"],
            ward=doc.get("ward"),
            attempts=int(doc.get("claims", 0)),
            last_error=error,
            failed_at=datetime.now(UTC),
        )
        return BROADCAST_DEAD_LETTER, event_bytes(event), event.event_id


class Sender:
    def __init__(
        self,
        settings: BroadcastSettings,
        js: JetStreamContext,
        notices: NoticeStore,
        deliveries: DeliveryStore,
        zalo: ZaloClient,
        echo_durable: str = BROADCAST_ECHOES_DURABLE,
    ) -> None:
        self.s, self.js, self.notices, self.deliveries, self.zalo = (
            settings,
            js,
            notices,
            deliveries,
            zalo,
        )
        self.echo_durable = echo_durable
        self.outcomes = Outcomes(js)
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
        async with WorkFetcher(self.js, BROADCAST_WORK_STREAM.name, self.durable) as fetcher:
            while not stop.is_set():
                try:
                    msgs = await fetcher.fetch(self.s.sender_batch, self.s.sender_fetch_timeout)
                except (NatsTimeoutError, TimeoutError):  # idle (or the request was refused)
                    continue
                except Exception:  # e.g. NATS reconnecting: try again
                    log.warning("fetch failed", exc_info=True)
                    await asyncio.sleep(0.2)
                    continue
                try:
                    with metrics.sending(msgs):
                        await self.handle(msgs)
                except Exception:  # the messages come back; this loop must go on
                    log.exception("batch failed", extra={"messages": len(msgs)})

    async def keep_alive(self, stop: asyncio.Event) -> None:
        """The worker's heartbeat. It only trusts what it wrote: once its own liveness has
        lapsed it stops renewing (another worker may be taking its attempts over) and sends
        nothing more until a new worker id starts."""
        period = max(0.2, self.s.claim_lease / 4)
        while not stop.is_set():
            now = datetime.now(UTC)
            if now >= self.alive_until:
                log.error("worker liveness lapsed, sending stops", extra={"worker": self.worker})
                self.worker, self.alive_until = uuid.uuid4().hex[:8], self.lease(now)
            lease = self.lease(now)
            try:
                await self.deliveries.beat(self.worker, lease)
                self.alive_until = lease if now < self.alive_until else self.alive_until
            except Exception:  # Mongo hiccup: retry on the next beat; sends check the lease
                log.warning("worker heartbeat failed", exc_info=True)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), period)

    async def handle(self, msgs: list[Msg]) -> None:
        """Claim, send and record one batch of work-queue messages."""
        started, now = time.monotonic(), datetime.now(UTC)
        batch = Batch(worker=self.worker)
        docs = [self._delivery(m) for m in msgs]
        slow: list[tuple[Msg, Doc]] = []
        fresh: list[tuple[Msg, Doc]] = []
        settle = []
        for msg, doc in zip(msgs, docs, strict=True):
            if doc is None:
                log.warning("unreadable delivery message, dropped", extra={"subject": msg.subject})
                settle.append(msg.term())
            elif times_delivered(msg) == 1:
                fresh.append((msg, doc))  # the usual case: nobody has tried it yet
            else:
                slow.append((msg, doc))
        claims = [self._claim_doc(doc, 1, batch, now) for _, doc in fresh]
        taken = await self.deliveries.insert_claims(claims)
        for (msg, doc), claim in zip(fresh, claims, strict=True):
            if claim["_id"] in taken:
                slow.append((msg, doc))
            else:
                batch.claimed.append(Claimed(msg, doc, 1))
        settle += [self._resume(msg, doc, batch) for msg, doc in slow]
        beat = asyncio.create_task(self._progress(batch))
        try:
            await asyncio.gather(*settle)
            if batch.claimed:
                await self._send_claimed(batch, time.monotonic() - started)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    @staticmethod
    def _delivery(msg: Msg) -> Doc | None:
        """The delivery's static fields: the planner puts them in the message."""
        try:
            doc = json.loads(msg.data)
        except ValueError:
            return None
        return doc if isinstance(doc, dict) and "_id" in doc else None

    def _claim_doc(self, doc: Doc, k: int, batch: Batch, now: datetime) -> Doc:
        return bookkeeping_claim(doc, k, batch.worker, now)

    async def _finished(self, msg: Msg, view: Doc) -> None:
        """Re-publish the outcome (the first worker may have died before it), then ack."""
        await self.outcomes.outcome(view)
        await msg.ack()

    async def _resume(self, msg: Msg, doc: Doc, batch: Batch) -> None:
        """Follow a delivery somebody has tried already: finish it, wait, or take it over."""
        for _ in range(20):
            now = datetime.now(UTC)
            attempt = await self.deliveries.attempt(doc["_id"])
            k, claim, result = attempt.k, attempt.claim, attempt.result
            if result is not None:  # attempt k is over
                if result["state"] != DeliveryState.PENDING:
                    await self._finished(msg, result_view(doc, result))
                    return
                not_before = result.get("not_before")
                if not_before is not None and _aware(not_before) > now:
                    await msg.nak(delay=_seconds_until(not_before, now, 0.2))
                    return
                since = _aware(result["doubt_at"]) if result.get("doubt") else None
                if since is not None and not await self._may_resend(msg, doc, k, since, batch):
                    return
            elif claim is not None:  # attempt k is open
                since = await self._doubt_since(claim, now)
                if since is None:
                    await msg.nak(delay=max(0.5, self.s.claim_lease / 2))
                    return
                # A cancel or confirmation that died half-way sent nothing: no doubt. Every
                # other open attempt (an echo resolution too) goes through the echo check.
                sent_nothing = claim.get("worker") in ("cancel", "confirm")
                if not sent_nothing and not await self._may_resend(msg, doc, k, since, batch):
                    return
            mine = self._claim_doc(doc, k + 1, batch, now)
            if not await self.deliveries.insert_claims([mine]):
                batch.claimed.append(Claimed(msg, doc, k + 1, attempt.failures))
                return
        await msg.nak(delay=1.0)

    async def _doubt_since(self, claim: Doc, now: datetime) -> datetime | None:
        """Since when an open attempt is in doubt, or None while its holder is working on it.

        A bookkeeping claim (cancel, confirm, echo) gets its result at once; one left without
        a result for a whole lease (its writer crashed) sent nothing and is taken over."""
        created = _aware(claim["created_at"])
        if claim.get("worker") in BOOKKEEPING_CLAIMS:
            return created if now - created > timedelta(seconds=self.s.claim_lease) else None
        until = await self.deliveries.alive_until(str(claim.get("worker")))
        if until is not None and _aware(until) > now:
            return None
        return _aware(until) if until is not None else created

    async def _may_resend(self, msg: Msg, doc: Doc, k: int, since: datetime, batch: Batch) -> bool:
        """Attempt k is in doubt since `since`. Zalo's echo of the post proves it went out;
        without one the caller may send again once `echo_grace` has passed since the doubt
        began and the echo consumer holds no unrecorded echo (a backlog of echoes is waited
        out, up to ECHO_BACKLOG_GRACES graces). Otherwise the message is answered here (False)."""
        now = datetime.now(UTC)
        echoed = doc["target_kind"] == "group" and doc.get("channel") == Channel.OA
        if echoed and await self._resolve_by_echo(msg, doc, k, batch, now):
            return False
        waited = (now - since).total_seconds()
        if waited < self.s.echo_grace:
            await msg.nak(delay=max(0.5, self.s.echo_grace - waited))
            return False
        if echoed:
            backlog_bound = ECHO_BACKLOG_GRACES * self.s.echo_grace
            if waited < backlog_bound and not await self._echoes_caught_up():
                await msg.nak(delay=max(0.5, self.s.echo_grace / 4))
                return False
            if await self._resolve_by_echo(msg, doc, k, batch, now):
                return False
        log.warning("in-doubt delivery sent again", extra={"delivery_id": doc["_id"], "k": k})
        return True

    async def _resolve_by_echo(
        self, msg: Msg, doc: Doc, k: int, batch: Batch, now: datetime
    ) -> bool:
        """With an echo of the post, attempt k+1 records the delivery sent (nothing is sent)."""
        echo = await self.deliveries.echo_seen(doc["target"], doc["code"])
        if echo is None:
            return False
        claim = bookkeeping_claim(doc, k + 1, "echo", now)
        if await self.deliveries.insert_claims([claim]):
            await msg.nak(delay=0.5)  # someone else moved on: follow them next time
            return True
        fields = {
            "state": DeliveryState.SENT.value,
            "sent_at": now,
            "resolved_by": "echo",
            "zalo_message_id": echo.get("message_id"),
        }
        result = next_result(doc, k + 1, fields, now)
        await self.deliveries.insert_results([result])
        await self._finished(msg, result_view(doc, result))
        return True

    async def _echoes_caught_up(self) -> bool:
        """True once every Zalo event stored so far (any echo of a post older than the grace
        among them) has been recorded: the echo consumer's ack floor reached the stream's last
        sequence as it was when we asked, or nothing is pending on it. Waits up to one grace;
        concurrent callers share one poll."""
        try:
            stream = await self.js.stream_info(ZALO_EVENTS_STREAM.name)
            target = stream.state.last_seq
            deadline = time.monotonic() + self.s.echo_grace
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
        except Exception:
            log.warning("echo consumer unreadable", exc_info=True)
            return False
        return True

    async def _send_claimed(self, batch: Batch, claimed_in: float) -> None:
        started = time.monotonic()
        verdicts = await asyncio.gather(*(self._send_one(c, batch) for c in batch.claimed))
        sent = time.monotonic()
        now = datetime.now(UTC)
        results = [
            next_result(
                c.doc, c.k, {"failures": c.failures, **v.fields, "worker": batch.worker}, now
            )
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

    async def _record(self, results: list[Doc]) -> None:
        """Insert a batch's results. If MongoDB keeps refusing, this worker gives its id up:
        its open attempts fall in doubt after the lease and are resolved like a crash."""
        for attempt in range(RECORD_TRIES):
            try:
                await self.deliveries.insert_results(results)
                return
            except Exception:
                if attempt == RECORD_TRIES - 1:
                    self.alive_until = datetime.now(UTC)
                    raise
                log.warning("recording results failed, retrying", exc_info=True)
                await asyncio.sleep(0.2 * 2**attempt)

    async def _settle(self, batch: Batch, results: list[Doc], verdicts: list[Verdict]) -> None:
        """Publish the batch's outcome and dead-letter events (pipelined), then answer NATS.
        If publishing fails the messages are not answered: their redelivery finds the
        results recorded and publishes again (the events are deduplicated by id)."""
        events: list[Message] = []
        for c, result, verdict in zip(batch.claimed, results, verdicts, strict=True):
            view = result_view(c.doc, result)
            metrics.settled(view, dead=verdict.dead_error is not None)
            if verdict.dead_error is not None:
                events.append(self.outcomes.dead_letter_message(view, verdict.dead_error))
            if verdict.publish:
                events.append(self.outcomes.outcome_message(view))
        await publish_all(self.js, events, timeout=max(5.0, self.s.sender_ack_wait / 2))
        for c, verdict in zip(batch.claimed, verdicts, strict=True):
            if verdict.nak_delay is None:
                await c.msg.ack()
            else:
                await c.msg.nak(delay=verdict.nak_delay)

    async def _progress(self, batch: Batch) -> None:
        """Tell JetStream the batch's messages are being worked on (no redelivery meanwhile)."""
        period = max(0.2, self.s.sender_ack_wait / 3)
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):
                await asyncio.gather(*(c.msg.in_progress() for c in list(batch.claimed)))

    async def _send_one(self, claimed: Claimed, batch: Batch) -> Verdict:
        doc = claimed.doc
        async with self._slots:
            notice = await self._notice(doc["notice_id"])
            now = datetime.now(UTC)
            if batch.worker != self.worker or now >= self.alive_until:
                # Our lease may have run out (a stalled process): another worker may take this
                # attempt over after the echo grace, so we must not send. Nothing was sent.
                fields = {"last_error": "claim lease ran out before sending", "not_before": now}
                return Verdict({"state": DeliveryState.PENDING.value, **fields}, 0.2)
            if notice is None or notice.status == NoticeStatus.CANCELLED:
                return Verdict(
                    {"state": DeliveryState.CANCELLED.value, "finished_at": now}, publish=True
                )
            if notice.expires_at is not None and notice.expires_at <= now:
                fields = {"state": DeliveryState.CANCELLED.value, "last_error": "expired"}
                return Verdict({**fields, "finished_at": now}, publish=True)
            try:
                return await self._deliver(doc, notice)
            except ZaloError as exc:
                return self._failure(doc, claimed.failures, exc)

    async def _deliver(self, doc: Doc, notice: Notice) -> Verdict:
        if doc["target_kind"] == "followers":
            return await self._broadcast(doc, notice)
        if doc.get("channel") == Channel.MANUAL:
            sent = await self.zalo.send_text(
                str(doc["officer_id"]), officer_text(notice, doc.get("group_name") or "", False)
            )
            now = datetime.now(UTC)
            due = now + timedelta(seconds=self.s.manual_reminder_after)
            fields = {
                "state": DeliveryState.AWAITING_CONFIRMATION.value,
                "officer_message_id": sent.message_id,
                "notified_at": now,
                "next_action_at": due,
                "reminders": 0,
            }
            return Verdict(fields, publish=True)
        sent = await self.zalo.send_group_text(str(doc["target"]), group_text(notice))
        fields = {
            "state": DeliveryState.SENT.value,
            "sent_at": datetime.now(UTC),
            "zalo_message_id": sent.message_id,
        }
        return Verdict(fields, publish=True)

    async def _broadcast(self, doc: Doc, notice: Notice) -> Verdict:
        """Followers: the broadcast API sends only articles, so publish one, then broadcast it
        (the article's id is kept on the delivery, so a retry does not publish a second)."""
        article_id = await self.deliveries.article(doc["_id"])
        if not article_id:
            created = await self.zalo.create_article(
                notice.title,
                group_text(notice),
                author="Công an TP Đồng Hới",
                cover_url=notice.image_url,
            )
            created_id = await self.zalo.article_id_for(created.token)
            article_id = await self.deliveries.keep_article(doc["_id"], created_id)
        targeting = notice.targets.follower_targeting
        target = BroadcastTarget.model_validate(targeting.model_dump()) if targeting else None
        sent = await self.zalo.broadcast_article(str(article_id), target)
        fields = {
            "state": DeliveryState.SENT.value,
            "sent_at": datetime.now(UTC),
            "zalo_message_id": sent.message_id,
        }
        return Verdict(fields, publish=True)

    def _failure(self, doc: Doc, failed_before: int, exc: ZaloError) -> Verdict:
        now = datetime.now(UTC)
        error = f"{type(exc).__name__}: {exc}"
        failures = failed_before + 1
        pending: Doc = {"state": DeliveryState.PENDING.value, "last_error": error}
        in_doubt = isinstance(exc, ZaloHttpError) and exc.maybe_delivered
        if in_doubt and failures < self.s.max_attempts:
            # Zalo may have posted: the next attempt goes through the echo check first.
            fields = {**pending, "failures": failures, "not_before": now}
            return Verdict({**fields, "doubt": True, "doubt_at": now}, self.s.echo_grace)
        if isinstance(exc, RateLimited):
            delay = exc.retry_after or self.s.retry_base_delay
            return Verdict({**pending, "not_before": now + timedelta(seconds=delay)}, delay)
        if not exc.retryable or failures >= self.s.max_attempts:
            fields = {
                "state": DeliveryState.FAILED.value,
                "failures": failures,
                "last_error": error,
                "finished_at": now,
            }
            log.warning("delivery dead-lettered", extra={"delivery_id": doc["_id"], "error": error})
            return Verdict(fields, dead_error=error, publish=True)
        delay = retry_delay(failures, self.s.retry_base_delay, self.s.retry_max_delay)
        later = now + timedelta(seconds=delay)
        return Verdict({**pending, "failures": failures, "not_before": later}, delay)

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
        return now + timedelta(seconds=self.s.claim_lease)


def times_delivered(msg: Msg) -> int:
    """How often JetStream has handed `msg` out, read from its reply subject
    (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`):
    `msg.metadata` parses every field into objects, about eight times this cost per message.
    Any other form of the subject goes through `msg.metadata`."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK" and tokens[4].isdigit():
        return int(tokens[4])
    return int(msg.metadata.num_delivered)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _seconds_until(when: datetime, now: datetime, minimum: float) -> float:
    return max(minimum, (_aware(when) - now).total_seconds())


if __name__ == "__main__":
    from services.broadcast.runtime import run_sender_process

    run_sender_process()
