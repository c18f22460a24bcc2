"""Sender workers: take deliveries from the work queue and call Zalo, exactly once each.

Exactly-once per (notice, target) rests on the delivery document, not on JetStream:
1. claim   pending -> sending with a fresh claim token and a lease (one `update_many` per batch);
2. send    through the Zalo client, while a heartbeat extends the lease and the JetStream ack wait;
3. record  sending -> sent / awaiting_confirmation / pending (retry) / failed, only if the claim is
           still ours; then ack. A redelivered message for a finished delivery is just acked.
A worker killed between 1 and 3 leaves a `sending` delivery whose lease runs out: it is *in doubt*
(Zalo may or may not have posted). The next worker first looks for Zalo's echo of the post
(`oa_send_group_*` webhook, recorded from `zalo.event.oa_message`); with an echo the delivery is
recorded as sent, without one it waits `echo_grace` seconds and then sends again. See
docs/broadcast.md for the residual window.

Run `python -m services.broadcast.sender` for worker-only replicas.
"""

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from services.broadcast.domain import (
    Channel,
    DeliveryState,
    Notice,
    NoticeStatus,
    group_text,
    officer_text,
    retry_delay,
)
from services.broadcast.settings import BroadcastSettings
from services.broadcast.store import DeliveryStore, NoticeStore
from shared.events.broadcast import DeliveryDeadLettered, DeliveryOutcomeRecorded
from shared.subjects import (
    BROADCAST_DEAD_LETTER,
    BROADCAST_SENDER_DURABLE,
    BROADCAST_WORK_STREAM,
    broadcast_outcome_subject,
)
from shared.zalo.client import ZaloClient
from shared.zalo.errors import RateLimited, ZaloError, ZaloHttpError
from shared.zalo.models import BroadcastTarget

log = logging.getLogger(__name__)
Doc = dict[str, Any]


@dataclass
class Verdict:
    """What became of one delivery in this round: fields to store, and how to answer NATS."""

    fields: Doc
    nak_delay: float | None = None  # None = ack
    dead_error: str | None = None
    publish: bool = False  # publish an outcome event
    finish: bool = True  # False: Zalo may have acted, leave the claim in doubt
    message_id: str | None = None  # Zalo's id of the accepted message


@dataclass
class Claimed:
    """A delivery this worker holds attempt `k` of (claim document `claim_id`)."""

    msg: Msg
    doc: Doc
    claim_id: str
    k: int


@dataclass
class Batch:
    worker: str  # the worker id the claims of this batch carry
    claimed: list[Claimed] = field(default_factory=list)


class Outcomes:
    """Publishes outcome and dead-letter events (deduplicated by their event ids)."""

    def __init__(self, js: JetStreamContext) -> None:
        self.js = js

    async def outcome(self, doc: Doc) -> None:
        state = str(doc["state"])
        event = DeliveryOutcomeRecorded(
            event_id=f"{doc['_id']}:{state}:{doc.get('claims', 0)}",
            occurred_at=datetime.now(UTC),
            notice_id=doc["notice_id"],
            delivery_id=doc["_id"],
            msg_type=doc.get("msg_type", "Alert"),
            category=doc.get("category", "other"),
            target_kind=doc["target_kind"],
            target_id=doc["target"],
            ward=doc.get("ward"),
            channel=doc.get("channel") or "oa",
            state=state,
            attempts=int(doc.get("claims", 0)),
            error=doc.get("last_error"),
            test_mode=bool(doc.get("test_mode")),
        )
        await self.js.publish(
            broadcast_outcome_subject(state),
            event.model_dump_json().encode(),
            headers={"Nats-Msg-Id": event.event_id},
        )

    async def dead_letter(self, doc: Doc, error: str) -> None:
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
        await self.js.publish(
            BROADCAST_DEAD_LETTER,
            event.model_dump_json().encode(),
            headers={"Nats-Msg-Id": event.event_id},
        )


class Sender:
    def __init__(
        self,
        settings: BroadcastSettings,
        js: JetStreamContext,
        notices: NoticeStore,
        deliveries: DeliveryStore,
        zalo: ZaloClient,
    ) -> None:
        self.s, self.js, self.notices, self.deliveries, self.zalo = (
            settings,
            js,
            notices,
            deliveries,
            zalo,
        )
        self.outcomes = Outcomes(js)
        self.worker = uuid.uuid4().hex[:8]
        self._notices: dict[str, tuple[float, Notice]] = {}
        self._slots = asyncio.Semaphore(settings.sender_concurrency)
        self.alive_until = datetime.now(UTC)  # set by keep_alive before any claim

    @property
    def durable(self) -> str:
        return BROADCAST_SENDER_DURABLE

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and handle batches until `stop` is set (one loop; a process may run several)."""
        psub = await self.js.pull_subscribe_bind(self.durable, BROADCAST_WORK_STREAM.name)
        try:
            while not stop.is_set():
                try:
                    msgs = await psub.fetch(
                        self.s.sender_batch, timeout=self.s.sender_fetch_timeout
                    )
                except NatsTimeoutError:
                    continue
                await self.handle(msgs)
        finally:
            with contextlib.suppress(Exception):
                await psub.unsubscribe()

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
        now = datetime.now(UTC)
        batch = Batch(worker=self.worker)
        ids = [m.data.decode() for m in msgs]
        docs = await self.deliveries.get_many(ids)
        settle: list[Awaitable[None]] = []
        wanted: list[tuple[Msg, Doc, int]] = []
        for msg, did in zip(msgs, ids, strict=True):
            doc = docs.get(did)
            if doc is None:
                log.warning("unknown delivery, dropped", extra={"delivery_id": did})
                settle.append(msg.term())
            elif doc["state"] != DeliveryState.PENDING:
                settle.append(self._finished(msg, doc))
            elif _aware(doc["not_before"]) > now:
                settle.append(msg.nak(delay=_seconds_until(doc["not_before"], now, 0.2)))
            elif doc.get("doubt") is not None:
                settle.append(self._contested(msg, doc, int(doc["doubt"]), batch))
            else:
                wanted.append((msg, doc, int(doc.get("claims", 0)) + 1))
        claims = [self._claim_doc(doc, k, batch, now) for _, doc, k in wanted]
        taken = await self.deliveries.insert_claims(claims)
        for (msg, doc, k), claim in zip(wanted, claims, strict=True):
            if claim["_id"] in taken:
                settle.append(self._contested(msg, doc, k, batch))
            else:
                batch.claimed.append(Claimed(msg, doc, claim["_id"], k))
        beat = asyncio.create_task(self._progress(batch))
        try:
            await asyncio.gather(*settle)
            if batch.claimed:
                await self._send_claimed(batch)
        finally:
            beat.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await beat

    def _claim_doc(self, doc: Doc, k: int, batch: Batch, now: datetime) -> Doc:
        return {
            "_id": f"{doc['_id']}#{k}",
            "delivery_id": doc["_id"],
            "notice_id": doc["notice_id"],
            "worker": batch.worker,
            "k": k,
            "created_at": now,
        }

    async def _finished(self, msg: Msg, doc: Doc) -> None:
        """Re-publish the outcome (the first worker may have died before it), then ack."""
        await self.outcomes.outcome(doc)
        await msg.ack()

    async def _contested(self, msg: Msg, doc: Doc, k: int, batch: Batch) -> None:
        """Attempt `k` is claimed already: follow it, wait for it, or take it over.

        Attempt k is over when the delivery's `claims` reached k; it is in doubt when the
        delivery says so (`doubt` = k: Zalo may have acted) or its worker stopped beating."""
        for _ in range(20):
            now = datetime.now(UTC)
            fresh = await self.deliveries.get(doc["_id"])
            if fresh is None or fresh["state"] != DeliveryState.PENDING:
                await (msg.term() if fresh is None else self._finished(msg, fresh))
                return
            claim = await self.deliveries.get_claim(f"{doc['_id']}#{k}")
            since = await self._doubt_since(fresh, claim, k, now)
            if claim is None or int(fresh.get("claims", 0)) >= k:
                k = max(k, int(fresh.get("claims", 0))) + (0 if claim is None else 1)
            elif since is None:
                await msg.nak(delay=max(0.5, self.s.claim_lease / 2))
                return
            elif not await self._in_doubt_may_resend(msg, fresh, k, since):
                return
            else:
                k += 1
            mine = self._claim_doc(fresh, k, batch, now)
            if not await self.deliveries.insert_claims([mine]):
                if since is not None:
                    log.warning("in-doubt delivery sent again", extra={"delivery_id": doc["_id"]})
                batch.claimed.append(Claimed(msg, fresh, mine["_id"], k))
                return
        await msg.nak(delay=1.0)

    async def _doubt_since(
        self, fresh: Doc, claim: Doc | None, k: int, now: datetime
    ) -> datetime | None:
        """Since when attempt k is in doubt, or None while its worker is alive and sending."""
        if fresh.get("doubt") == k:
            return _aware(fresh.get("doubt_at") or now)
        if claim is None or claim.get("worker") == "cancel":
            return None  # a cancel is being written: its result follows at once
        until = await self.deliveries.alive_until(str(claim.get("worker")))
        if until is not None and _aware(until) > now:
            return None
        return _aware(until) if until is not None else _aware(claim["created_at"])

    async def _in_doubt_may_resend(self, msg: Msg, doc: Doc, k: int, since: datetime) -> bool:
        """Zalo's echo of the post proves attempt k went out; without one, wait
        `echo_grace` after the doubt began, then the caller sends again."""
        now = datetime.now(UTC)
        if doc["target_kind"] == "group" and doc.get("channel") == Channel.OA:
            echo = await self.deliveries.echo_seen(doc["target"], doc["code"])
            if echo is not None:
                fields: Doc = {
                    "state": DeliveryState.SENT.value,
                    "sent_at": now,
                    "resolved_by": "echo",
                    "zalo_message_id": echo.get("message_id"),
                    "claims": k,
                    "doubt": None,
                }
                await self.deliveries.record([(doc["_id"], fields)])
                await self.outcomes.outcome({**doc, **fields})
                await msg.ack()
                return False
        waited = (now - since).total_seconds()
        if waited < self.s.echo_grace:
            await msg.nak(delay=max(0.5, self.s.echo_grace - waited))
            return False
        return True

    async def _send_claimed(self, batch: Batch) -> None:
        started = time.monotonic()
        verdicts = await asyncio.gather(*(self._send_one(c.doc, batch) for c in batch.claimed))
        sent_in = time.monotonic() - started
        now = datetime.now(UTC)
        receipts = []
        for c, v in zip(batch.claimed, verdicts, strict=True):
            # `claims` = k closes attempt k; an attempt in doubt stays open with `doubt` = k,
            # so the next worker goes through the echo check.
            if v.finish:
                v.fields.update(claims=c.k, doubt=None)
            else:
                v.fields.update(claims=c.k - 1, doubt=c.k, doubt_at=now)
            if v.message_id:
                receipts.append({"delivery_id": c.doc["_id"], "message_id": v.message_id})
            if "sent_at" in v.fields:
                v.fields["sent_at"] = now  # one timestamp per batch: one update for all
        await self.deliveries.record(
            [(c.doc["_id"], v.fields) for c, v in zip(batch.claimed, verdicts, strict=True)]
        )
        recorded_in = time.monotonic() - started - sent_in
        await self.deliveries.record_receipts(f"{batch.worker}-{uuid.uuid4().hex}", receipts)
        await asyncio.gather(
            *(self._settle(c.msg, c.doc, v) for c, v in zip(batch.claimed, verdicts, strict=True))
        )
        log.info(
            "batch done",
            extra={
                "claimed": len(batch.claimed),
                "send_s": round(sent_in, 3),
                "record_s": round(recorded_in, 3),
                "total_s": round(time.monotonic() - started, 3),
            },
        )

    async def _settle(self, msg: Msg, doc: Doc, verdict: Verdict) -> None:
        final = {**doc, **verdict.fields}
        if verdict.dead_error is not None:
            await self.outcomes.dead_letter(final, verdict.dead_error)
        if verdict.publish:
            await self.outcomes.outcome(final)
        if verdict.nak_delay is None:
            await msg.ack()
        else:
            await msg.nak(delay=verdict.nak_delay)

    async def _progress(self, batch: Batch) -> None:
        """Tell JetStream the batch's messages are being worked on (no redelivery meanwhile)."""
        period = max(0.2, self.s.sender_ack_wait / 3)
        while True:
            await asyncio.sleep(period)
            with contextlib.suppress(Exception):
                await asyncio.gather(*(c.msg.in_progress() for c in list(batch.claimed)))

    async def _send_one(self, doc: Doc, batch: Batch) -> Verdict:
        async with self._slots:
            notice = await self._notice(doc["notice_id"])
            now = datetime.now(UTC)
            if batch.worker != self.worker or now >= self.alive_until:
                # Our lease may have run out (a stalled process): another worker may take this
                # attempt over after the echo grace, so we must not send. Nothing was sent.
                return Verdict({"last_error": "claim lease ran out before sending"}, 0.2)
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
                return self._failure(doc, exc)

    async def _deliver(self, doc: Doc, notice: Notice) -> Verdict:
        now = datetime.now(UTC)
        if doc["target_kind"] == "followers":
            return await self._broadcast(doc, notice)
        if doc.get("channel") == Channel.MANUAL:
            sent = await self.zalo.send_text(
                str(doc["officer_id"]), officer_text(notice, doc.get("group_name") or "", False)
            )
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
        fields = {"state": DeliveryState.SENT.value, "sent_at": now}
        return Verdict(fields, publish=True, message_id=sent.message_id)

    async def _broadcast(self, doc: Doc, notice: Notice) -> Verdict:
        """Followers: the broadcast API sends only articles, so publish one, then broadcast it."""
        article_id = doc.get("article_id")
        if not article_id:
            created = await self.zalo.create_article(
                notice.title,
                group_text(notice),
                author="Công an TP Đồng Hới",
                cover_url=notice.image_url,
            )
            article_id = await self.zalo.article_id_for(created.token)
            await self.deliveries.set_fields(doc["_id"], {"article_id": article_id})
        targeting = notice.targets.follower_targeting
        target = BroadcastTarget.model_validate(targeting.model_dump()) if targeting else None
        sent = await self.zalo.broadcast_article(str(article_id), target)
        now = datetime.now(UTC)
        fields = {"state": DeliveryState.SENT.value, "sent_at": now}
        return Verdict(fields, publish=True, message_id=sent.message_id)

    def _failure(self, doc: Doc, exc: ZaloError) -> Verdict:
        now = datetime.now(UTC)
        fields: Doc
        error = f"{type(exc).__name__}: {exc}"
        failures = int(doc.get("failures", 0)) + 1
        in_doubt = isinstance(exc, ZaloHttpError) and exc.maybe_delivered
        if in_doubt and failures < self.s.max_attempts:
            # Zalo may have posted: leave it in doubt (lease ended) for the echo check.
            fields = {"last_error": error, "failures": failures}
            return Verdict(fields, nak_delay=self.s.echo_grace, finish=False)
        if isinstance(exc, RateLimited):
            delay = exc.retry_after or self.s.retry_base_delay
            later = now + timedelta(seconds=delay)
            pending: Doc = {"state": DeliveryState.PENDING.value, "last_error": error}
            return Verdict({**pending, "not_before": later}, nak_delay=delay)
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
        fields = {
            "state": DeliveryState.PENDING.value,
            "failures": failures,
            "last_error": error,
            "not_before": now + timedelta(seconds=delay),
        }
        return Verdict(fields, nak_delay=delay)

    async def _notice(self, notice_id: str) -> Notice | None:
        """The notice, cached for a second (a cancel must be seen quickly)."""
        now = time.monotonic()
        cached = self._notices.get(notice_id)
        if cached is None or now - cached[0] > 1.0:
            fresh = await self.notices.get(notice_id)
            if fresh is None:
                return None
            if len(self._notices) > 1000:
                self._notices.clear()
            self._notices[notice_id] = cached = (now, fresh)
        return cached[1]

    def lease(self, now: datetime) -> datetime:
        return now + timedelta(seconds=self.s.claim_lease)


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _seconds_until(when: datetime, now: datetime, minimum: float) -> float:
    return max(minimum, (_aware(when) - now).total_seconds())


if __name__ == "__main__":
    from services.broadcast.runtime import run_sender_process

    run_sender_process()
