"""Notice lifecycle: create (idempotent), approve, schedule, update, cancel, import CAP."""

import logging
import uuid
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo

from pymongo.errors import DuplicateKeyError

from services.broadcast import cap
from services.broadcast.approval import needs_approval
from services.broadcast.domain import (
    BroadcastError,
    MsgType,
    Notice,
    NoticeDraft,
    NoticeStatus,
    Targets,
    Urgency,
    cancel_body,
    check_expiry,
    fold,
    parse_clock,
    release_time,
)
from services.broadcast.groups import WARDS
from services.broadcast.planner import Planner
from services.broadcast.settings import BroadcastSettings
from services.broadcast.store import AuditStore, DeliveryStore, NoticeStore
from shared.auth import Role, StaffUser
from shared.verification import new_verification_code

log = logging.getLogger(__name__)
OPEN = [NoticeStatus.PENDING_APPROVAL, NoticeStatus.SCHEDULED, NoticeStatus.READY]


class NoticeService:
    def __init__(
        self,
        settings: BroadcastSettings,
        notices: NoticeStore,
        deliveries: DeliveryStore,
        planner: Planner,
        audit: AuditStore,
    ) -> None:
        self.s, self.notices, self.deliveries, self.planner = settings, notices, deliveries, planner
        self.audit = audit
        self.tz = ZoneInfo(settings.timezone)

    def _quiet(self) -> tuple[time, time] | None:
        if not self.s.quiet_hours_enabled:
            return None
        return parse_clock(self.s.quiet_hours_start), parse_clock(self.s.quiet_hours_end)

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
        now = datetime.now(UTC)
        check_expiry(draft, now)
        notice_id = uuid.uuid4().hex
        if draft.idempotency_key:
            notice_id = await self.notices.claim_key(draft.idempotency_key, notice_id)
            existing = await self.notices.get(notice_id)
            if existing is not None:
                return existing, False
        roster = await self.planner.groups.roster()
        held = needs_approval(msg_type, draft.targets, draft.test_mode, roster, original)
        release = release_time(draft, now, self._quiet(), self.tz)
        if held:
            status = NoticeStatus.PENDING_APPROVAL
        else:
            status = NoticeStatus.READY if release <= now else NoticeStatus.SCHEDULED
        for _ in range(5):
            notice = Notice(
                **draft.model_dump(),
                id=notice_id,
                msg_type=msg_type,
                references=original.id if original else None,
                status=status,
                verification_code=new_verification_code(self.s.verification_prefix),
                created_by=user.id,
                created_at=now,
                release_at=release,
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
        log.info("notice created", extra={"notice_id": notice.id, "status": status.value})
        if status == NoticeStatus.READY:
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
        if notice.status != NoticeStatus.PENDING_APPROVAL:
            raise BroadcastError("Thông báo không ở trạng thái chờ duyệt.", 409)
        if user.id == notice.created_by:
            raise BroadcastError("Người soạn không được tự duyệt; cần người thứ hai duyệt.", 403)
        if not user.has_any(Role.APPROVER):
            raise BroadcastError("Cần vai trò người duyệt (approver).", 403)
        now = datetime.now(UTC)
        check_expiry(notice, now)
        release = release_time(notice, now, self._quiet(), self.tz)
        status = NoticeStatus.READY if release <= now else NoticeStatus.SCHEDULED
        approved = await self.notices.transition(
            notice_id,
            [NoticeStatus.PENDING_APPROVAL],
            status,
            approved_by=user.id,
            release_at=release,
        )
        if approved is None:
            raise BroadcastError("Thông báo vừa được người khác xử lý.", 409)
        await self.audit.record("approved", user.id, notice_id=notice_id)
        if status == NoticeStatus.READY:
            await self.planner.request(notice_id, "approved")
        return approved

    async def release_due(self, now: datetime) -> int:
        """Scheduled notices whose time came (and quiet hours ended) go out."""
        released = 0
        for notice_id in await self.notices.due(now):
            notice = await self.notices.transition(
                notice_id, [NoticeStatus.SCHEDULED], NoticeStatus.READY
            )
            if notice is None:
                continue
            if notice.expires_at is not None and notice.expires_at <= now:
                await self.notices.transition(notice_id, [NoticeStatus.READY], NoticeStatus.EXPIRED)
                continue
            await self.planner.request(notice_id, "approved" if notice.approved_by else "")
            released += 1
        return released

    async def update(self, original_id: str, draft: NoticeDraft, user: StaffUser) -> Notice:
        """An update (CAP msgType Update): goes to exactly the targets the original reached."""
        original = await self._dispatched(original_id)
        notice, _ = await self.create(
            draft.model_copy(update={"targets": original.targets, "test_mode": original.test_mode}),
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
            original_id, [*OPEN, NoticeStatus.DISPATCHED], NoticeStatus.CANCELLED
        )
        if cancelled is None:
            raise BroadcastError("Thông báo đã bị thu hồi hoặc đã hết hạn.", 409)
        dropped = await self.deliveries.cancel_open(original_id, datetime.now(UTC))
        # A cancel needs no second person (withdrawing must be fast), so it is audited.
        await self.audit.record("cancelled", user.id, notice_id=original_id, was=was.value)
        log.info("notice cancelled", extra={"notice_id": original_id, "dropped": dropped})
        if was not in (NoticeStatus.READY, NoticeStatus.DISPATCHED):
            return cancelled, None
        draft = NoticeDraft(
            title=f"Thu hồi: {original.title}"[:200],
            body=cancel_body(original.title, original.verification_code),
            category=original.category,
            severity=original.severity,
            urgency=Urgency.IMMEDIATE,  # a withdrawal is not held by quiet hours
            certainty=original.certainty,
            targets=original.targets,
            test_mode=original.test_mode,
        )
        notice, _ = await self.create(draft, user, msg_type=MsgType.CANCEL, original=original)
        return cancelled, notice

    async def _dispatched(self, notice_id: str) -> Notice:
        notice = await self.get(notice_id)
        if notice.status != NoticeStatus.DISPATCHED:
            raise BroadcastError("Chỉ cập nhật được thông báo đã gửi đi.", 409)
        return notice

    async def import_cap(self, data: bytes, user: StaffUser, followers: bool) -> Notice:
        """Relay a CAP 1.2 alert: Update/Cancel of an alert we relayed act on it."""
        alert = cap.parse_cap(data)
        if alert.status not in ("Actual", "Test", "Exercise"):
            raise BroadcastError(f"CAP status «{alert.status}» không được chuyển tiếp.")
        original = await self._cap_original(alert)
        if original is not None and alert.msg_type == MsgType.CANCEL:
            _, follow = await self.cancel(original.id, user)
            return follow or await self.get(original.id)
        draft = self._cap_draft(alert, followers, original)
        msg_type = alert.msg_type if original is not None else MsgType.ALERT
        if original is not None and original.status != NoticeStatus.DISPATCHED:
            msg_type, original = MsgType.ALERT, None
        notice, _ = await self.create(
            draft,
            user,
            msg_type=msg_type,
            original=original,
            cap_xml=data.decode("utf-8"),
            cap_key=alert.reference_key,
        )
        return notice

    async def _cap_original(self, alert: cap.CapAlert) -> Notice | None:
        for ref in alert.references:
            parts = ref.split(",")
            if len(parts) >= 2:
                found = await self.notices.get_by_cap_key(f"{parts[0]},{parts[1]}")
                if found is not None:
                    return found
        return None

    def _cap_draft(
        self, alert: cap.CapAlert, followers: bool, original: Notice | None
    ) -> NoticeDraft:
        wards = sorted({slug for area in alert.areas for slug in _wards_in(area)})
        targets = (
            original.targets
            if original
            else Targets(all_groups=not wards, wards=wards, followers=followers)
        )
        body = "\n\n".join(p for p in (alert.description, alert.instruction) if p)
        try:
            return NoticeDraft(
                title=(alert.headline or alert.event)[:200],
                body=body or alert.event,
                category=alert.category,
                severity=alert.severity,
                urgency=alert.urgency,
                certainty=alert.certainty,
                targets=targets,
                expires_at=alert.expires,
                test_mode=alert.status != "Actual",
                idempotency_key=f"cap:{alert.reference_key}"[:128],
            )
        except ValueError as exc:
            raise BroadcastError(f"CAP không chuyển thành thông báo được: {exc}") from exc

    async def export_cap(self, notice_id: str) -> bytes:
        notice = await self.get(notice_id)
        stored = await self.notices.cap_xml(notice_id)
        if stored is not None:
            tree = cap.parse_cap(stored.encode("utf-8")).tree
        else:
            original = await self.notices.get(notice.references) if notice.references else None
            areas = self._areas(notice)
            tree = cap.notice_tree(notice, self.s.cap_sender, original, areas)
        return cap.export_xml(tree)

    @staticmethod
    def _areas(notice: Notice) -> list[str]:
        if notice.targets.all_groups:
            return []
        return [f"Phường/xã {WARDS[w]}, TP Đồng Hới" for w in notice.targets.wards if w in WARDS]


def _wards_in(area: str) -> list[str]:
    """Ward slugs named in a CAP areaDesc (matched without diacritics)."""
    folded = f" {' '.join(fold(area).replace(',', ' ').split())} "
    return [slug for slug, name in WARDS.items() if f" {fold(name)} " in folded]
