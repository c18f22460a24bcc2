"""Notice lifecycle orchestration: create (idempotent), approve, schedule, update, cancel,
import CAP. The decisions are `lifecycle`'s plain functions; this module loads, calls them,
and stores, audits and plans what they return."""

import logging
import uuid
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from pymongo.errors import DuplicateKeyError

from services.broadcast import cap, lifecycle
from services.broadcast.approval import needs_approval
from services.broadcast.domain import (
    BroadcastError,
    MsgType,
    Notice,
    NoticeDraft,
    NoticeStatus,
    check_expiry,
    parse_clock,
)
from services.broadcast.lifecycle import CancelOriginal, Clock
from services.broadcast.planner import Planner
from services.broadcast.settings import BroadcastSettings
from services.broadcast.store import AuditStore, DeliveryStore, NoticeStore
from shared.auth import StaffUser
from shared.verification import new_verification_code

log = logging.getLogger(__name__)


class NoticeService:
    def __init__(
        self,
        settings: BroadcastSettings,
        notices: NoticeStore,
        deliveries: DeliveryStore,
        planner: Planner,
        audit: AuditStore,
    ) -> None:
        self.settings, self.notices, self.deliveries = settings, notices, deliveries
        self.planner, self.audit = planner, audit
        self.tz = ZoneInfo(settings.timezone)

    def _quiet(self) -> tuple[time, time] | None:
        if not self.settings.quiet_hours_enabled:
            return None
        return parse_clock(self.settings.quiet_hours_start), parse_clock(
            self.settings.quiet_hours_end
        )

    def _clock(self) -> Clock:
        return Clock(datetime.now(UTC), self._quiet(), self.tz)

    async def create(
        self,
        draft: NoticeDraft,
        user: StaffUser,
        *,
        msg_type: MsgType = MsgType.ALERT,
        original: Notice | None = None,
        cap_xml: str | None = None,
        cap_key: str | None = None,
    ) -> tuple[Notice, bool]:
        """Store a notice and start it (or hold it); the same idempotency key gives one notice."""
        clock = self._clock()
        check_expiry(draft, clock.now)
        notice_id = uuid.uuid4().hex
        if draft.idempotency_key:
            notice_id = await self.notices.claim_key(draft.idempotency_key, notice_id)
            existing = await self.notices.get(notice_id)
            if existing is not None:
                return existing, False
        roster = await self.planner.groups.roster()
        held = needs_approval(msg_type, draft.targets, draft.test_mode, roster, original)
        start = lifecycle.created(draft, held, clock)
        for _ in range(5):
            notice = Notice(
                **draft.model_dump(),
                id=notice_id,
                msg_type=msg_type,
                references=original.id if original else None,
                status=start.status,
                verification_code=new_verification_code(self.settings.verification_prefix),
                created_by=user.id,
                created_by_name=user.name,
                created_at=clock.now,
                release_at=start.release_at,
            )
            try:
                inserted = await self.notices.insert(notice, cap_xml=cap_xml, cap_key=cap_key)
            except DuplicateKeyError:
                continue  # the random verification code was taken: draw another
            if not inserted:  # a concurrent request with the same key won
                stored = await self.notices.get(notice_id)
                if stored is not None:
                    return stored, False
            break
        else:
            raise BroadcastError("Không tạo được mã xác thực, thử lại.", 503)
        log.info("notice created", extra={"notice_id": notice.id, "status": start.status.value})
        if start.plan_now:
            await self.planner.request(notice.id)
        return notice, True

    async def get(self, notice_id: str) -> Notice:
        notice = await self.notices.get(notice_id)
        if notice is None:
            raise BroadcastError("Không tìm thấy thông báo.", 404)
        return notice

    async def approve(self, notice_id: str, user: StaffUser) -> Notice:
        """A second person with the approver role releases an all-ward notice."""
        notice = await self.get(notice_id)
        out = lifecycle.approve(notice, user, self._clock())
        approved = await self.notices.transition(
            notice_id,
            [NoticeStatus.PENDING_APPROVAL],
            out.status,
            approved_by=user.id,
            approved_by_name=user.name,
            release_at=out.release_at,
        )
        if approved is None:
            raise BroadcastError("Thông báo vừa được người khác xử lý.", 409)
        await self.audit.record("approved", user.id, notice_id=notice_id)
        if out.plan_now:
            await self.planner.request(notice_id, "approved")
        return approved

    async def send_back(self, notice_id: str, user: StaffUser, reason: str) -> Notice:
        """An approver returns a held notice to its editor with a reason (never sent)."""
        reason = lifecycle.send_back(await self.get(notice_id), user, reason)
        returned = await self.notices.transition(
            notice_id,
            [NoticeStatus.PENDING_APPROVAL],
            NoticeStatus.RETURNED,
            returned_by=user.id,
            returned_by_name=user.name,
            return_reason=reason,
        )
        if returned is None:
            raise BroadcastError("Thông báo vừa được người khác xử lý.", 409)
        await self.audit.record("returned", user.id, notice_id=notice_id)
        return returned

    async def release_due(self, now: datetime) -> int:
        """Scheduled notices whose time came (and quiet hours ended) go out."""
        released = 0
        for notice_id in await self.notices.due(now):
            notice = await self.notices.transition(
                notice_id, [NoticeStatus.SCHEDULED], NoticeStatus.READY
            )
            if notice is None:
                continue
            if lifecycle.due(notice, now) == NoticeStatus.EXPIRED:
                await self.notices.transition(notice_id, [NoticeStatus.READY], NoticeStatus.EXPIRED)
                continue
            await self.planner.request(notice_id, lifecycle.plan_stage(notice))
            released += 1
        return released

    async def update(self, original_id: str, draft: NoticeDraft, user: StaffUser) -> Notice:
        """An update (CAP msgType Update): goes to exactly the targets the original reached."""
        original = await self.get(original_id)
        notice, _ = await self.create(
            lifecycle.update_draft(draft, original),
            user,
            msg_type=MsgType.UPDATE,
            original=original,
        )
        return notice

    async def cancel(self, original_id: str, user: StaffUser) -> tuple[Notice, Notice | None]:
        """Withdraw a notice: undelivered deliveries are dropped, reached groups are told."""
        original = await self.get(original_id)
        was = original.status
        cancelled = await self.notices.transition(
            original_id, list(lifecycle.CANCELLABLE), NoticeStatus.CANCELLED
        )
        if cancelled is None:
            raise BroadcastError("Thông báo đã bị thu hồi hoặc đã hết hạn.", 409)
        dropped = await self.deliveries.cancel_open(original_id, datetime.now(UTC))
        # A cancel needs no second person (withdrawing must be fast), so it is audited.
        await self.audit.record("cancelled", user.id, notice_id=original_id, was=was.value)
        log.info("notice cancelled", extra={"notice_id": original_id, "dropped": dropped})
        draft = lifecycle.withdrawal(original, was)
        if draft is None:
            return cancelled, None
        notice, _ = await self.create(draft, user, msg_type=MsgType.CANCEL, original=original)
        return cancelled, notice

    async def import_cap(self, data: bytes, user: StaffUser, followers: bool) -> Notice:
        """Relay a CAP 1.2 alert: Update/Cancel of an alert we relayed act on it."""
        alert = cap.parse_cap(data)
        original = await self._cap_original(alert)
        action = lifecycle.relay_cap(alert, original, followers)
        if isinstance(action, CancelOriginal):
            _, follow = await self.cancel(action.original.id, user)
            return follow or await self.get(action.original.id)
        notice, _ = await self.create(
            action.draft,
            user,
            msg_type=action.msg_type,
            original=action.original,
            cap_xml=data.decode("utf-8"),
            cap_key=alert.reference_key,
        )
        return notice

    async def _cap_original(self, alert: cap.CapAlert) -> Notice | None:
        for key in lifecycle.cap_references(alert):
            found = await self.notices.get_by_cap_key(key)
            if found is not None:
                return found
        return None

    async def export_cap(self, notice_id: str) -> bytes:
        notice = await self.get(notice_id)
        stored = await self.notices.cap_xml(notice_id)
        if stored is not None:
            tree = cap.parse_cap(stored.encode("utf-8")).tree
        else:
            original = await self.notices.get(notice.references) if notice.references else None
            areas = lifecycle.cap_areas(notice)
            tree = cap.notice_tree(notice, self.settings.cap_sender, original, areas)
        return cap.export_xml(tree)
