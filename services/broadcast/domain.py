"""Notices and deliveries: states, validation, quiet hours, texts. No I/O here."""

import unicodedata
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta
from enum import StrEnum
from typing import Annotated
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.errors import ServiceError
from shared.places.text import words
from shared.text import SafeLine, SafeText

ZALO_TEXT_LIMIT = 2000
FOLLOWERS_TARGET = "followers"


class BroadcastError(ServiceError):
    """A request the broadcast service refuses (`status`: the HTTP status it answers with)."""


class Category(StrEnum):
    SECURITY_WARNING = "security_warning"
    FRAUD_WARNING = "fraud_warning"
    PROCEDURE = "procedure"
    WANTED_MISSING = "wanted_missing"
    HEALTH_ADVISORY = "health_advisory"
    OTHER = "other"


class Severity(StrEnum):
    EXTREME = "Extreme"
    SEVERE = "Severe"
    MODERATE = "Moderate"
    MINOR = "Minor"
    UNKNOWN = "Unknown"


class Urgency(StrEnum):
    IMMEDIATE = "Immediate"
    EXPECTED = "Expected"
    FUTURE = "Future"
    PAST = "Past"
    UNKNOWN = "Unknown"


class Certainty(StrEnum):
    OBSERVED = "Observed"
    LIKELY = "Likely"
    POSSIBLE = "Possible"
    UNLIKELY = "Unlikely"
    UNKNOWN = "Unknown"


class MsgType(StrEnum):
    """CAP 1.2 `msgType`: an update or cancel is a notice of its own referencing the original."""

    ALERT = "Alert"
    UPDATE = "Update"
    CANCEL = "Cancel"


class NoticeStatus(StrEnum):
    PENDING_APPROVAL = "pending_approval"
    RETURNED = "returned"  # sent back to its editor by an approver, with a reason
    SCHEDULED = "scheduled"  # waits for its schedule time or the end of quiet hours
    READY = "ready"  # a plan command is on its way
    DISPATCHED = "dispatched"  # every delivery is planned
    CANCELLED = "cancelled"
    EXPIRED = "expired"


class Channel(StrEnum):
    OA = "oa"  # OA-owned GMF group: the API posts there
    MANUAL = "manual"  # ordinary group: the responsible officer posts by hand


class DeliveryState(StrEnum):
    PENDING = "pending"
    SENT = "sent"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    FAILED = "failed"
    CANCELLED = "cancelled"


Code = Annotated[int, Field(ge=0, le=10_000)]
WardSlug = Annotated[str, Field(pattern=r"^[a-z0-9-]{1,60}$")]
GroupId = Annotated[str, Field(pattern=r"^[0-9A-Za-z_-]{1,40}$")]


@dataclass(frozen=True, slots=True)
class NoticeQuery:
    """Which notices a staff list shows (None: any)."""

    status: NoticeStatus | None = None
    category: Category | None = None
    msg_type: MsgType | None = None
    test_mode: bool | None = None


class FollowerTargeting(BaseModel):
    """Zalo broadcast targeting codes (reference §5.1); empty lists mean everyone."""

    model_config = ConfigDict(frozen=True)

    # Zalo's codes are small numbers; bounds keep 2**70 from reaching the client (OverflowError).
    ages: list[Code] = Field(default_factory=list, max_length=20)
    gender: int | None = Field(default=None, ge=0, le=2)
    locations: list[Code] = Field(default_factory=list, max_length=100)
    cities: list[Code] = Field(default_factory=list, max_length=100)


class Targets(BaseModel):
    """Who a notice reaches: every group, some wards, some groups, and/or the followers."""

    model_config = ConfigDict(frozen=True)

    all_groups: bool = False
    wards: list[WardSlug] = Field(default_factory=list, max_length=100)
    groups: list[GroupId] = Field(default_factory=list, max_length=50_000)
    followers: bool = False
    follower_targeting: FollowerTargeting | None = None

    @model_validator(mode="after")
    def _not_empty(self) -> "Targets":
        if not (self.all_groups or self.wards or self.groups or self.followers):
            raise ValueError("Thông báo phải có ít nhất một đối tượng nhận.")
        return self

    def reaches_every_ward(self, known_wards: frozenset[str]) -> bool:
        """True for all groups, or a ward list that covers every ward: approval needed."""
        return self.all_groups or (bool(known_wards) and known_wards <= set(self.wards))


def normalize_text(text: str) -> str:
    """NFC, trimmed: Zalo's 2,000-character limit counts NFC code points."""
    return unicodedata.normalize("NFC", text).strip()


class NoticeDraft(BaseModel):
    """What an editor submits (or a CAP alert maps to)."""

    model_config = ConfigDict(frozen=True)

    title: SafeLine = Field(min_length=1, max_length=200)
    body: SafeText = Field(min_length=1, max_length=20_000)  # Zalo's 2,000 is checked after NFC
    category: Category
    severity: Severity
    urgency: Urgency
    certainty: Certainty
    targets: Targets
    scheduled_at: datetime | None = None
    expires_at: datetime | None = None
    image_url: SafeLine | None = Field(default=None, pattern=r"^https?://", max_length=2000)
    test_mode: bool = False
    idempotency_key: SafeLine | None = Field(default=None, min_length=8, max_length=128)

    @field_validator("title", "body")
    @classmethod
    def _nfc(cls, value: str) -> str:
        return normalize_text(value)

    @field_validator("scheduled_at", "expires_at")
    @classmethod
    def _aware(cls, value: datetime | None) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("Thời điểm phải có múi giờ (ví dụ +07:00).")
        return value

    @model_validator(mode="after")
    def _fits(self) -> "NoticeDraft":
        if len(self.body) > ZALO_TEXT_LIMIT:
            raise ValueError(
                f"Nội dung dài {len(self.body)} ký tự, vượt giới hạn {ZALO_TEXT_LIMIT} của Zalo."
            )
        if self.scheduled_at and self.expires_at and self.expires_at <= self.scheduled_at:
            raise ValueError("Thời điểm hết hạn phải sau thời điểm gửi.")
        return self

    @property
    def is_urgent(self) -> bool:
        return self.urgency == Urgency.IMMEDIATE


class Notice(NoticeDraft):
    """A stored notice."""

    id: str
    msg_type: MsgType = MsgType.ALERT
    references: str | None = None  # the original notice of an update or cancel
    status: NoticeStatus
    verification_code: str
    created_by: str
    created_at: datetime
    approved_by: str | None = None
    returned_by: str | None = None  # the approver who sent it back, and why
    return_reason: str | None = None
    # The people's names as they were when they acted: the console shows who wrote, approved or
    # returned a notice, and editors and approvers may not read identity's accounts.
    created_by_name: str | None = None
    approved_by_name: str | None = None
    returned_by_name: str | None = None
    release_at: datetime | None = None
    dispatched_at: datetime | None = None
    sender: str = "conganthanhpho.donghoi@quangbinh.gov.vn"


def check_expiry(draft: NoticeDraft, now: datetime) -> None:
    """Refuse a notice that expired before it could go out."""
    if draft.expires_at is not None and draft.expires_at <= now:
        raise BroadcastError("Thông báo đã hết hạn trước khi gửi.")


def parse_clock(value: str) -> time:
    hours, minutes = value.split(":")
    return time(int(hours), int(minutes))


def quiet_hours_end(now: datetime, start: time, end: time, tz: ZoneInfo) -> datetime | None:
    """When the quiet period containing `now` ends (UTC), or None outside quiet hours."""
    local = now.astimezone(tz)
    clock = local.time()
    inside = (start <= clock or clock < end) if start > end else (start <= clock < end)
    if not inside:
        return None
    day = local.date() if clock < end else local.date() + timedelta(days=1)
    return datetime.combine(day, end, tzinfo=tz).astimezone(UTC)


def release_time(
    draft: NoticeDraft, now: datetime, quiet: tuple[time, time] | None, tz: ZoneInfo
) -> datetime:
    """When a notice may go out: its schedule time, moved past quiet hours unless urgent."""
    due = max(draft.scheduled_at or now, now)
    if quiet is None or draft.is_urgent:
        return due
    return quiet_hours_end(due, quiet[0], quiet[1], tz) or due


def is_posted_confirmation(text: str) -> bool:
    """An officer's "đã đăng" (with or without diacritics, optionally with the code)."""
    return words(text)[:2] == ["da", "dang"]


def group_text(notice: Notice) -> str:
    """The text posted in a group, with the verification code residents can check."""
    head = {
        MsgType.ALERT: "",
        MsgType.UPDATE: "[CẬP NHẬT] ",
        MsgType.CANCEL: "[THU HỒI] ",
    }[notice.msg_type]
    footer = f"\n\nCông an TP Đồng Hới. Mã xác thực: {notice.verification_code}"
    room = ZALO_TEXT_LIMIT - len(head) - len(notice.title) - 1 - len(footer)
    body = notice.body if len(notice.body) <= room else notice.body[: room - 1] + "…"
    return f"{head}{notice.title}\n{body}{footer}"


def cancel_body(original_title: str, original_code: str) -> str:
    return (
        f"Thông báo «{original_title}» (mã {original_code}) đã được THU HỒI. "
        "Đề nghị bà con không chia sẻ tiếp nội dung này."
    )


def officer_text(notice: Notice, group_name: str, reminder: bool) -> str:
    """What the responsible officer of a manual group receives through the OA."""
    lead = "NHẮC LẠI: " if reminder else ""
    return (
        f"{lead}Đề nghị đồng chí đăng thông báo sau vào nhóm «{group_name}». "
        f"Đăng xong, trả lời «đã đăng {notice.verification_code}».\n\n{group_text(notice)}"
    )


def escalation_text(notice: Notice, group_name: str, officer_label: str) -> str:
    return (
        f"Nhóm «{group_name}» chưa được đăng thông báo «{notice.title}» "
        f"(mã {notice.verification_code}); cán bộ phụ trách {officer_label} chưa xác nhận."
    )


def verification_reply(code: str, notice: Notice | None, tz: ZoneInfo) -> str:
    """The automatic answer to a resident who sent a verification code."""
    if notice is None:
        return (
            f"CẢNH BÁO: mã {code} KHÔNG do Công an TP Đồng Hới cấp. Tin nhắn bạn nhận được có "
            "thể là giả mạo công an để lừa đảo. Không chuyển tiền, không cung cấp mã OTP; "
            "gọi 113 hoặc công an phường nếu cần."
        )
    sent = notice.dispatched_at or notice.created_at
    when = sent.astimezone(tz).strftime("%H:%M ngày %d/%m/%Y")
    withdrawn = " Thông báo này đã bị thu hồi." if notice.status == NoticeStatus.CANCELLED else ""
    return (
        f"Mã {code} là THẬT: thông báo «{notice.title}» do Công an TP Đồng Hới gửi lúc "
        f"{when}.{withdrawn}"
    )


def retry_delay(attempt: int, base: float, cap: float) -> float:
    """Exponential backoff between attempts of one delivery (1 s, 2 s, 4 s ... capped)."""
    return float(min(cap, base * 2 ** max(0, attempt - 1)))


def delivery_id(notice_id: str, target: str) -> str:
    """One delivery per (notice, target): the id is the exactly-once key."""
    return f"{notice_id}:{target}"
