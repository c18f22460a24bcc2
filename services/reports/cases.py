"""Cases: the model, the status workflow, reference codes and narrative hygiene (no I/O)."""

import base64
import hashlib
from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from shared.errors import ServiceError
from shared.events.tips import (
    CaseStatus,
    Outcome,
    Reason,
    TipCategory,
    TipKind,
    TipPriority,
)
from shared.text import mask_phones

OPEN_STATUSES = (CaseStatus.NEW, CaseStatus.ASSIGNED, CaseStatus.VERIFYING)

TRANSITIONS: dict[CaseStatus, frozenset[CaseStatus]] = {
    CaseStatus.NEW: frozenset(
        {CaseStatus.ASSIGNED, CaseStatus.VERIFYING, CaseStatus.REJECTED, CaseStatus.DUPLICATE}
    ),
    CaseStatus.ASSIGNED: frozenset(
        {CaseStatus.VERIFYING, CaseStatus.RESOLVED, CaseStatus.REJECTED, CaseStatus.DUPLICATE}
    ),
    CaseStatus.VERIFYING: frozenset(
        {CaseStatus.RESOLVED, CaseStatus.REJECTED, CaseStatus.DUPLICATE}
    ),
    CaseStatus.RESOLVED: frozenset(),
    CaseStatus.REJECTED: frozenset(),
    CaseStatus.DUPLICATE: frozenset(),
}

STATUS_LABELS = {
    CaseStatus.NEW: "mới",
    CaseStatus.ASSIGNED: "đã phân công",
    CaseStatus.VERIFYING: "đang xác minh",
    CaseStatus.RESOLVED: "đã giải quyết",
    CaseStatus.REJECTED: "đã từ chối",
    CaseStatus.DUPLICATE: "trùng (đã gộp)",
}

WardSource = Literal["group", "text", "location", "staff", "unknown"]

_REF_ALPHABET = str.maketrans("", "", "=")


class CaseError(ServiceError):
    """A request on a case that the workflow refuses (409 unless said); `detail` is Vietnamese
    for staff. Answered with the one error body by `shared.web`."""

    def __init__(self, detail: str, status_code: int = 409) -> None:
        super().__init__(detail, status_code)

    @property
    def status_code(self) -> int:
        return self.status


class CaseMessage(BaseModel):
    """One citizen message joined to a case. Text and coordinates are personal data."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    at: datetime
    message_type: str | None = None
    text: str | None = None
    photos: tuple[str, ...] = ()
    latitude: float | None = None
    longitude: float | None = None


class Note(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    author: str
    text: str


class HistoryEntry(BaseModel):
    model_config = ConfigDict(frozen=True)

    at: datetime
    actor: str
    change: str
    detail: str | None = None


class Case(BaseModel):
    """A case as stored (`_id` = `id`)."""

    model_config = ConfigDict(populate_by_name=True)

    id: str = Field(alias="_id")
    ref: str
    kind: TipKind
    category: TipCategory
    priority: TipPriority
    ward: str
    ward_source: WardSource
    places: list[str] = []
    reasons: list[Reason] = []
    status: CaseStatus = CaseStatus.NEW
    outcome: Outcome | None = None
    tipster: str  # pseudonym
    channel: Literal["oa", "group"]
    group_id: str | None = None
    messages: list[CaseMessage] = []
    message_ids: list[str] = []
    created_at: datetime
    updated_at: datetime
    last_message_at: datetime
    assignee: str | None = None
    acknowledged_at: datetime | None = None
    escalated_at: datetime | None = None
    duplicate_of: str | None = None  # suggestion
    merged_into: str | None = None
    info_wards: list[str] = []
    notes: list[Note] = []
    history: list[HistoryEntry] = []

    @property
    def text(self) -> str:
        """Every text of the case, in order: what triage reads."""
        return "\n".join(m.text for m in self.messages if m.text)

    @property
    def photos(self) -> int:
        return sum(len(m.photos) for m in self.messages)

    @property
    def location(self) -> tuple[float, float] | None:
        for message in reversed(self.messages):
            if message.latitude is not None and message.longitude is not None:
                return message.latitude, message.longitude
        return None

    @property
    def is_open(self) -> bool:
        return self.status in OPEN_STATUSES

    def to_document(self) -> dict[str, object]:
        return self.model_dump(mode="python", by_alias=True)


def case_id_for(event_id: str) -> str:
    """The case an event opens: deterministic, so a redelivery finds the same case."""
    return "c" + hashlib.sha256(event_id.encode()).hexdigest()[:20]


def reference_code(case_id: str, prefix: str, length: int = 6) -> str:
    """A short code to read over the phone: `BY-K7Q2MX` (base32, no 0/1/8/9 confusion)."""
    digest = hashlib.sha256(case_id.encode()).digest()
    code = base64.b32encode(digest).decode().translate(_REF_ALPHABET)[:length]
    return f"{prefix}-{code}"


def check_transition(
    case: Case, target: CaseStatus, outcome: Outcome | None, merged_into: str | None
) -> None:
    """Raise `CaseError` unless `target` is a legal next status with what it needs."""
    if target not in TRANSITIONS[case.status]:
        raise CaseError(
            f"Không thể chuyển tin báo {case.ref} từ trạng thái '{STATUS_LABELS[case.status]}' "
            f"sang '{STATUS_LABELS[target]}'."
        )
    if target == CaseStatus.RESOLVED and outcome is None:
        raise CaseError("Cần mã kết quả (outcome) khi kết thúc tin báo.", 422)
    if target != CaseStatus.RESOLVED and outcome is not None:
        raise CaseError("Chỉ ghi mã kết quả khi tin báo được giải quyết.", 422)
    if target == CaseStatus.DUPLICATE and not merged_into:
        raise CaseError("Cần mã tin báo gốc (merged_into) khi gộp tin trùng.", 422)
    if merged_into and target != CaseStatus.DUPLICATE:
        raise CaseError("Chỉ ghi tin báo gốc khi gộp tin trùng.", 422)
    if merged_into == case.id:
        raise CaseError("Không thể gộp tin báo vào chính nó.", 422)


_ORDER = [TipPriority.LOW, TipPriority.NORMAL, TipPriority.HIGH, TipPriority.URGENT]


def higher_priority(left: TipPriority, right: TipPriority) -> TipPriority:
    return max(left, right, key=_ORDER.index)


def masked(case: Case) -> Case:
    """A case for readers who do not work it (leaders, other wards told for information):
    phone numbers masked in messages and notes, no coordinates."""
    messages = [
        m.model_copy(
            update={
                "text": mask_phones(m.text) if m.text else m.text,
                "latitude": None,
                "longitude": None,
            }
        )
        for m in case.messages
    ]
    notes = [n.model_copy(update={"text": mask_phones(n.text)}) for n in case.notes]
    return case.model_copy(update={"messages": messages, "notes": notes})


def check_reveal(case: Case | None, pseudonym: str) -> Case:
    """A reveal is justified only by an existing case that this tipster sent: any case id
    would let a reason be written for anyone."""
    if case is None:
        raise CaseError("Không tìm thấy tin báo làm căn cứ.", 404)
    if case.tipster != pseudonym:
        raise CaseError("Tin báo này không phải của người báo với bí danh này.", 422)
    return case
