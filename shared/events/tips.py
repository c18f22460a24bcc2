"""Triaged citizens' tips and every later change to them (producer: reports).

Tipsters appear only as a pseudonym (a keyed hash of the Zalo user id); no raw Zalo id, phone
number or coordinates travel on these subjects.
"""

from datetime import datetime
from enum import StrEnum
from typing import Literal

from pydantic import BaseModel, ConfigDict

from shared.events.envelope import Event


class TipKind(StrEnum):
    TIP = "tip"  # báo tin, tố giác
    QUESTION = "question"  # thủ tục hành chính
    HELP = "help"  # a request for help that is not a crime report
    OTHER = "other"


class TipCategory(StrEnum):
    THEFT = "theft"
    ROBBERY = "robbery"
    DRUGS = "drugs"
    GAMBLING = "gambling"
    FRAUD = "fraud"
    VIOLENCE = "violence"
    DOMESTIC_VIOLENCE = "domestic_violence"
    PUBLIC_DISORDER = "public_disorder"
    TRAFFIC = "traffic"
    SUSPICIOUS = "suspicious"
    FIRE = "fire"
    OTHER = "other"


class TipPriority(StrEnum):
    URGENT = "urgent"
    HIGH = "high"
    NORMAL = "normal"
    LOW = "low"


class CaseStatus(StrEnum):
    NEW = "new"
    ASSIGNED = "assigned"
    VERIFYING = "verifying"
    RESOLVED = "resolved"
    REJECTED = "rejected"
    DUPLICATE = "duplicate"


class Outcome(StrEnum):
    VERIFIED_HANDLED = "verified_handled"
    REFERRED = "referred"
    FALSE_REPORT = "false_report"
    NO_EVIDENCE = "no_evidence"
    ANSWERED = "answered"  # a question case, answered by staff


class Reason(BaseModel):
    """Why triage decided something: the rule and the words that matched."""

    model_config = ConfigDict(frozen=True)

    rule: str  # e.g. "category.theft", "priority.danger", "ward.text"
    term: str  # the matched term as written in the rules, or the place name


class TipTriaged(Event):
    """A new case, on `tips.triaged.<ward>.<priority>`."""

    type: Literal["tip.triaged"] = "tip.triaged"
    v: Literal[1] = 1
    producer: str = "reports"

    case_id: str
    ref: str  # short human reference code, also given to the tipster
    kind: TipKind
    category: TipCategory
    priority: TipPriority
    ward: str  # ASCII slug, or "unknown"
    reasons: tuple[Reason, ...]
    tipster: str  # pseudonym, never the Zalo id
    channel: Literal["oa", "group"]
    narrative: str  # the citizen's text with phone numbers masked
    photos: int = 0
    has_location: bool = False
    assignee: str | None = None
    duplicate_of: str | None = None  # suggested open case of the same incident
    info_only: bool = False  # a copy for another ward's information


class TipUpdated(Event):
    """A change to a case, on `tips.updated.<ward>`."""

    type: Literal["tip.updated"] = "tip.updated"
    v: Literal[1] = 1
    producer: str = "reports"

    case_id: str
    ref: str
    change: Literal[
        "message_added",
        "retriaged",
        "status_changed",
        "assigned",
        "note_added",
        "rerouted",
        "duplicate_suggested",
        "merged",
        "replied",
        "info_copy",
    ]
    ward: str
    status: CaseStatus
    category: TipCategory
    priority: TipPriority
    kind: TipKind
    actor: str  # staff id, or "system"
    previous_ward: str | None = None
    duplicate_of: str | None = None
    detail: str | None = None  # short and free of personal data (e.g. an outcome code)


class TipEscalated(Event):
    """An urgent case nobody acknowledged in time, on `tips.escalated.<ward>`."""

    type: Literal["tip.escalated"] = "tip.escalated"
    v: Literal[1] = 1
    producer: str = "reports"

    case_id: str
    ref: str
    ward: str
    priority: TipPriority
    created_at: datetime
    waited_seconds: float
    assignee: str | None = None
