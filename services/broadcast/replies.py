"""What the OA answers people: officers confirming a manual post, residents checking a code;
and the reminders and escalations of manual groups nobody confirmed."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

from services.broadcast.domain import (
    Notice,
    escalation_text,
    is_posted_confirmation,
    officer_text,
    verification_reply,
)
from services.broadcast.records import Delivery, DeliveryView
from services.broadcast.settings import BroadcastSettings
from services.broadcast.store import DeliveryStore, NoticeStore
from shared.logging import pseudonymize
from shared.verification import find_verification_code
from shared.zalo.client import ZaloClient

log = logging.getLogger(__name__)
FAR_FUTURE = timedelta(days=3650)
OutcomePublisher = Callable[[DeliveryView], Awaitable[None]]


class Replies:
    def __init__(
        self,
        settings: BroadcastSettings,
        notices: NoticeStore,
        deliveries: DeliveryStore,
        zalo: ZaloClient,
        publish_outcome: OutcomePublisher,
    ) -> None:
        self.settings, self.notices, self.deliveries, self.zalo = (
            settings,
            notices,
            deliveries,
            zalo,
        )
        self.publish_outcome = publish_outcome
        self.tz = ZoneInfo(settings.timezone)

    async def on_user_text(self, user_id: str, text: str) -> str | None:
        """Answer an officer's "đã đăng" or a resident's verification code; None = not ours."""
        if is_posted_confirmation(text):
            pending = await self.deliveries.awaiting_for_officer(user_id)
            if pending:
                return await self._confirm(user_id, text, pending)
        code = find_verification_code(text, self.settings.verification_prefix)
        if code is None:
            return None
        notice = await self.notices.get_by_code(code)
        reply = verification_reply(code, notice, self.tz)
        await self.zalo.send_text(user_id, reply)
        log.info(
            "verification code answered",
            extra={"genuine": notice is not None, "user": self._pseudo(user_id)},
        )
        return reply

    async def _confirm(self, officer_id: str, text: str, pending: list[DeliveryView]) -> str:
        code = find_verification_code(text, self.settings.verification_prefix)
        codes = {v.delivery.code for v in pending}
        if code is None and len(codes) == 1:
            code = next(iter(codes))
        if code not in codes:
            reply = (
                "Đồng chí đang có nhiều thông báo chờ xác nhận; vui lòng trả lời kèm mã, "
                f"ví dụ «đã đăng {sorted(codes)[0]}»."
                if code is None
                else f"Mã {code} không có nhóm nào chờ đồng chí xác nhận."
            )
            await self.zalo.send_text(officer_id, reply)
            return reply
        confirmed = await self.confirm([v for v in pending if v.delivery.code == code])
        reply = f"Đã ghi nhận: {confirmed} nhóm đã đăng thông báo mã {code}. Cảm ơn đồng chí."
        await self.zalo.send_text(officer_id, reply)
        log.info("manual post confirmed", extra={"groups": confirmed, "code": code})
        return reply

    async def confirm(self, views: list[DeliveryView]) -> int:
        """Mark manual deliveries posted (once each) and publish their outcomes: an officer's
        «đã đăng» through the OA and a «đã chuyển tiếp» in the console both end here."""
        now, confirmed = datetime.now(UTC), 0
        for view in views:
            sent = await self.deliveries.confirm(view, now)
            if sent is not None:
                confirmed += 1
                await self.publish_outcome(sent)
        return confirmed

    async def chase_unconfirmed(self, now: datetime) -> int:
        """Re-send to officers who did not confirm, then escalate (once each, any replica)."""
        handled = 0
        for view in await self.deliveries.manual_due(now):
            delivery, awaiting, result = view.delivery, view.awaiting, view.result
            notice = await self.notices.get(delivery.notice_id)
            if notice is None or awaiting is None or result is None:
                continue
            notified = result.outcome.notified_at or now
            if awaiting.reminders < 1:
                if not await self.deliveries.take_step(delivery.id, "remind", now):
                    continue
                text = officer_text(notice, str(delivery.group_name), True)
                await self.zalo.send_text(str(delivery.officer_id), text)
                escalate_at = notified + timedelta(seconds=self.settings.manual_escalate_after)
                await self.deliveries.set_awaiting(
                    replace(awaiting, reminders=1, next_action_at=escalate_at)
                )
                log.info("manual reminder sent", extra={"delivery_id": delivery.id})
            else:
                if not await self.deliveries.take_step(delivery.id, "escalate", now):
                    continue
                await self._escalate(delivery, notice)
                await self.deliveries.set_awaiting(
                    replace(awaiting, escalated_at=now, next_action_at=now + FAR_FUTURE)
                )
            handled += 1
        return handled

    async def _escalate(self, delivery: Delivery, notice: Notice) -> None:
        label = delivery.officer_name or self._pseudo(str(delivery.officer_id))
        text = escalation_text(notice, str(delivery.group_name), label)
        for supervisor in self.settings.escalation_user_ids:
            await self.zalo.send_text(supervisor, text)
        log.warning("manual delivery escalated", extra={"delivery_id": delivery.id})

    def _pseudo(self, user_id: str) -> str:
        return pseudonymize(user_id, self.settings.pseudonym_key)
