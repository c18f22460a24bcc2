"""The planner: one notice becomes one delivery per target on the work queue."""

import json
import logging
from datetime import UTC, datetime
from typing import Any

from nats.aio.client import Client as NatsClient

from services.broadcast import metrics
from services.broadcast.approval import may_send
from services.broadcast.domain import (
    FOLLOWERS_TARGET,
    DeliveryState,
    MsgType,
    Notice,
    NoticeStatus,
    delivery_id,
)
from services.broadcast.groups import RosterEntry, select_targets
from services.broadcast.records import TARGET_FIELDS, Delivery
from services.broadcast.store import AuditStore, DeliveryStore, GroupStore, NoticeStore
from shared.jetstream import publish_all
from shared.subjects import BROADCAST_DELIVER, BROADCAST_PLAN

log = logging.getLogger(__name__)
PAGE = 500  # deliveries per stored page and per pipelined publish
PUBLISH_TIMEOUT = 30.0  # seconds for a page's acknowledgements


def _delivery(notice: Notice, target: str, **fields: Any) -> Delivery:
    return Delivery(
        id=delivery_id(notice.id, target),
        notice_id=notice.id,
        target=target,
        code=notice.verification_code,
        msg_type=notice.msg_type.value,
        category=notice.category.value,
        test_mode=notice.test_mode,
        **fields,
    )


def group_delivery(notice: Notice, group: RosterEntry) -> Delivery:
    """The delivery to one group (ward and officer copied for progress and reminders)."""
    return _delivery(
        notice,
        group.group_id,
        target_kind="group",
        ward=group.ward,
        channel=group.channel,
        group_name=group.name,
        officer_id=group.officer_id,
        officer_name=group.officer_name,
    )


def follower_delivery(notice: Notice) -> Delivery:
    return _delivery(notice, FOLLOWERS_TARGET, target_kind="followers", channel="broadcast")


class PlanLater(Exception):
    """The plan cannot be made yet; the command is retried after a short delay."""


class Planner:
    def __init__(
        self,
        nc: NatsClient,
        notices: NoticeStore,
        groups: GroupStore,
        deliveries: DeliveryStore,
        audit: AuditStore,
    ) -> None:
        self.nc, self.js = nc, nc.jetstream()
        self.notices, self.groups, self.deliveries = notices, groups, deliveries
        self.audit = audit

    async def request(self, notice_id: str, stage: str = "") -> None:
        """Queue the plan command (deduplicated by notice id and `stage`: a notice held at send
        time is planned again once approved, within the duplicate window of its first)."""
        body = json.dumps({"notice_id": notice_id}).encode()
        msg_id = f"plan:{notice_id}:{stage}" if stage else f"plan:{notice_id}"
        await self.js.publish(BROADCAST_PLAN, body, headers={"Nats-Msg-Id": msg_id})

    async def plan(self, notice_id: str) -> int:
        """Create and enqueue the deliveries of a notice, page by page (senders start on the
        first); safe to run again after a crash, and alongside another planner of it."""
        notice = await self.notices.get(notice_id)
        if notice is None or notice.status not in (NoticeStatus.READY, NoticeStatus.DISPATCHED):
            return 0
        now = datetime.now(UTC)
        roster = await self.groups.roster()
        if not await self._may_send(notice, roster):
            return 0
        pages = await self.deliveries.planned(notice_id)
        done: set[str] = set()
        for page in pages:  # a run that crashed may not have published them all
            await self.enqueue(page)
            done.update(d.id for d in page)
        wanted = await self._deliveries_for(notice, roster, now)
        remaining = [d for d in wanted if d.id not in done]
        number, planned = len(pages), len(done)
        while remaining:
            page = remaining[:PAGE]
            stored = await self.deliveries.plan_page(notice_id, number, page)  # before messages
            if stored is None:
                remaining = remaining[PAGE:]
            else:  # another planner stored this page first: publish its page, plan the rest
                page = stored
                taken = {d.id for d in stored}
                remaining = [d for d in remaining if d.id not in taken]
            await self.enqueue(page)
            number, planned = number + 1, planned + len(page)
        metrics.planned(planned)
        await self.notices.transition(
            notice_id, [NoticeStatus.READY], NoticeStatus.DISPATCHED, dispatched_at=now
        )
        log.info("notice planned", extra={"notice_id": notice_id, "deliveries": planned})
        return planned

    async def enqueue(self, deliveries: list[Delivery]) -> None:
        """Publish one work-queue message per delivery (`Nats-Msg-Id` = delivery id) carrying
        its static fields, so a sender needs no read; pipelined, chunk by chunk."""
        for start in range(0, len(deliveries), PAGE):
            chunk = deliveries[start : start + PAGE]
            messages = [(BROADCAST_DELIVER, d.message(), d.id) for d in chunk]
            await publish_all(self.nc, messages, timeout=PUBLISH_TIMEOUT)

    async def _may_send(self, notice: Notice, roster: list[RosterEntry]) -> bool:
        """The two-person rule again, on the registry as it is now: groups moved or imported
        since the notice was created can make it reach every ward. Such a notice goes back to
        wait for approval instead of out."""
        original = await self.notices.get(notice.references) if notice.references else None
        if may_send(notice, roster, original):
            return True
        held = await self.notices.transition(
            notice.id, [NoticeStatus.READY], NoticeStatus.PENDING_APPROVAL
        )
        if held is not None:
            await self.audit.record("held_for_approval", "system", notice_id=notice.id)
            log.warning("notice held for approval at send time", extra={"notice_id": notice.id})
        return False

    async def _deliveries_for(
        self, notice: Notice, roster: list[RosterEntry], now: datetime
    ) -> list[Delivery]:
        """Every delivery of a notice: its groups from the registry's roster (or, for an update
        or a cancel, the original's reached targets), then the followers."""
        if notice.msg_type != MsgType.ALERT and notice.references:
            return await self._follow_up(notice, now)
        deliveries = [
            group_delivery(notice, group)
            for group in select_targets(roster, notice.targets, notice.test_mode)
        ]
        if notice.targets.followers and not notice.test_mode:
            deliveries.append(follower_delivery(notice))
        return deliveries

    async def _follow_up(self, notice: Notice, now: datetime) -> list[Delivery]:
        """An update or a cancel goes to exactly the targets the original reached. A cancel
        waits until the original's sends in flight have finished, so it sees all of them."""
        original = notice.references or ""
        if notice.msg_type == MsgType.CANCEL and await self.deliveries.in_flight(original, now):
            raise PlanLater(f"sends of {original} still in flight")
        reached = await self.deliveries.of_notice(original, [DeliveryState.SENT])
        return [
            follower_delivery(notice)
            if old.delivery.target_kind == "followers"
            else _delivery(
                notice,
                old.delivery.target,
                **{key: getattr(old.delivery, key) for key in TARGET_FIELDS},
            )
            for old in reached
        ]
