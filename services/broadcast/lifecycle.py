"""The notice lifecycle as plain functions: which status a notice takes, who may approve it,
what a withdrawal, an update or a relayed CAP alert becomes. No I/O here: `NoticeService`
(notices.py) loads, calls these, and stores or plans what they return.

    new ──held──▶ pending_approval ──approved──▶ scheduled or ready
    new ──not held──▶ scheduled (quiet hours, a release time) or ready
    scheduled ──due──▶ ready ──planned──▶ dispatched; a notice past its expiry ──▶ expired
    pending_approval ──sent back (reason)──▶ returned (its editor writes a new notice)
    pending_approval, scheduled, ready, dispatched ──cancel──▶ cancelled (+ a withdrawal
    notice to the targets when it had been released)
"""

from dataclasses import dataclass
from datetime import datetime, time
from zoneinfo import ZoneInfo

from services.broadcast import cap
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
    release_time,
)
from services.broadcast.groups import WARDS
from shared.auth import Role, StaffUser
from shared.places.text import fold

# Statuses a notice can be withdrawn from.
CANCELLABLE = (
    NoticeStatus.PENDING_APPROVAL,
    NoticeStatus.SCHEDULED,
    NoticeStatus.READY,
    NoticeStatus.DISPATCHED,
)
# Relayed CAP statuses; others (System, Draft) are refused.
RELAYED_CAP_STATUSES = ("Actual", "Test", "Exercise")


@dataclass(frozen=True, slots=True)
class Clock:
    """What time it is and when notices may go out (quiet hours in the city's time zone)."""

    now: datetime
    quiet: tuple[time, time] | None
    tz: ZoneInfo


@dataclass(frozen=True, slots=True)
class Release:
    """A notice leaves its hold: `status` is ready (plan it now) or scheduled."""

    status: NoticeStatus
    release_at: datetime

    @property
    def plan_now(self) -> bool:
        return self.status == NoticeStatus.READY


def release(draft: NoticeDraft, clock: Clock) -> Release:
    """When a notice that needs no (more) approval goes out; an expired one is refused."""
    check_expiry(draft, clock.now)
    at = release_time(draft, clock.now, clock.quiet, clock.tz)
    status = NoticeStatus.READY if at <= clock.now else NoticeStatus.SCHEDULED
    return Release(status, at)


def created(draft: NoticeDraft, held: bool, clock: Clock) -> Release:
    """The first status of a new notice: held for a second person, or released."""
    out = release(draft, clock)
    return Release(NoticeStatus.PENDING_APPROVAL, out.release_at) if held else out


def check_second_person(notice: Notice, approver: StaffUser) -> None:
    """Who may decide on a held notice: a second person, with the approver role."""
    if notice.status != NoticeStatus.PENDING_APPROVAL:
        raise BroadcastError("Thông báo không ở trạng thái chờ duyệt.", 409)
    if approver.id == notice.created_by:
        raise BroadcastError("Người soạn không được tự duyệt; cần người thứ hai duyệt.", 403)
    if not approver.has_any(Role.APPROVER):
        raise BroadcastError("Cần vai trò người duyệt (approver).", 403)


def approve(notice: Notice, approver: StaffUser, clock: Clock) -> Release:
    """The two-person rule: a second person, with the approver role, releases a held notice."""
    check_second_person(notice, approver)
    return release(notice, clock)


def send_back(notice: Notice, approver: StaffUser, reason: str) -> str:
    """An approver returns a held notice to its editor; the same people who may approve it may
    send it back, and only with a reason the editor can act on. Returns the reason, trimmed."""
    check_second_person(notice, approver)
    reason = " ".join(reason.split())
    if len(reason) < 3:
        raise BroadcastError("Hãy ghi lý do trả lại để người soạn biết cần sửa gì.", 422)
    return reason


def due(notice: Notice, now: datetime) -> NoticeStatus:
    """A scheduled notice whose time came: ready to plan, or expired meanwhile."""
    if notice.expires_at is not None and notice.expires_at <= now:
        return NoticeStatus.EXPIRED
    return NoticeStatus.READY


def plan_stage(notice: Notice) -> str:
    """The plan command's stage: an approved notice is planned again after a hold at send time."""
    return "approved" if notice.approved_by else ""


def update_draft(draft: NoticeDraft, original: Notice) -> NoticeDraft:
    """An update (CAP msgType Update) of a dispatched notice goes to exactly its targets."""
    if original.status != NoticeStatus.DISPATCHED:
        raise BroadcastError("Chỉ cập nhật được thông báo đã gửi đi.", 409)
    return draft.model_copy(update={"targets": original.targets, "test_mode": original.test_mode})


def withdrawal(original: Notice, was: NoticeStatus) -> NoticeDraft | None:
    """The notice that tells the reached targets a notice is withdrawn; None when it had not
    been released (nobody can have received it)."""
    if was not in (NoticeStatus.READY, NoticeStatus.DISPATCHED):
        return None
    return NoticeDraft(
        title=f"Thu hồi: {original.title}"[:200],
        body=cancel_body(original.title, original.verification_code),
        category=original.category,
        severity=original.severity,
        urgency=Urgency.IMMEDIATE,  # a withdrawal is not held by quiet hours
        certainty=original.certainty,
        targets=original.targets,
        test_mode=original.test_mode,
    )


@dataclass(frozen=True, slots=True)
class CancelOriginal:
    """A CAP Cancel of an alert we relayed: withdraw our notice of it."""

    original: Notice


@dataclass(frozen=True, slots=True)
class CreateNotice:
    """A relayed CAP alert becomes a notice of `msg_type` (an update of `original`)."""

    draft: NoticeDraft
    msg_type: MsgType
    original: Notice | None


def cap_references(alert: cap.CapAlert) -> list[str]:
    """The keys (`sender,identifier`) of the alerts a CAP alert refers to, in order."""
    parts = [ref.split(",") for ref in alert.references]
    return [f"{p[0]},{p[1]}" for p in parts if len(p) >= 2]


def relay_cap(
    alert: cap.CapAlert, original: Notice | None, followers: bool
) -> CancelOriginal | CreateNotice:
    """What a CAP 1.2 alert does: an Update or Cancel of an alert we relayed acts on our
    notice of it; anything else (or an update of a notice not yet sent) is a new alert."""
    if alert.status not in RELAYED_CAP_STATUSES:
        raise BroadcastError(f"CAP status «{alert.status}» không được chuyển tiếp.")
    if original is not None and alert.msg_type == MsgType.CANCEL:
        return CancelOriginal(original)
    draft = cap_draft(alert, followers, original)
    if original is None or original.status != NoticeStatus.DISPATCHED:
        return CreateNotice(draft, MsgType.ALERT, None)
    return CreateNotice(draft, alert.msg_type, original)


def cap_draft(alert: cap.CapAlert, followers: bool, original: Notice | None) -> NoticeDraft:
    wards = sorted({slug for area in alert.areas for slug in wards_in(area)})
    targets = (
        original.targets
        if original
        else Targets(all_groups=not wards, wards=wards, followers=followers)
    )
    body = "\n\n".join(p for p in (alert.description, alert.instruction) if p)
    try:
        return NoticeDraft(
            # one line: a CAP headline may wrap, a notice title may not
            title=" ".join((alert.headline or alert.event).split())[:200],
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


def wards_in(area: str) -> list[str]:
    """Ward slugs named in a CAP areaDesc (matched without diacritics)."""
    folded = f" {' '.join(fold(area).replace(',', ' ').split())} "
    return [slug for slug, name in WARDS.items() if f" {fold(name)} " in folded]


def cap_areas(notice: Notice) -> list[str]:
    """The areaDesc lines of an exported notice (none: the whole city)."""
    if notice.targets.all_groups:
        return []
    return [f"Phường/xã {WARDS[w]}, TP Đồng Hới" for w in notice.targets.wards if w in WARDS]
