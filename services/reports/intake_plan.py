"""What intake reads and what it decides, as typed models: no I/O and no decisions here.

A batch's `Arrival`s and the `Snapshot` of what the store held go into `IntakeCore`
(`intake_core.py`); a `Plan` of what to write and publish comes out, which `intake.py` performs.
"""

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.reports.cases import Case, CaseMessage, WardSource
from services.reports.duplicates import Fingerprint
from services.reports.outgoing import StagedEvent
from services.reports.triage import Triage
from shared.events.tips import Reason, TipCategory, TipKind, TipPriority
from shared.events.zalo import MessageType, ZaloEventReceived


@dataclass(frozen=True)
class IntakeConfig:
    group_window: timedelta
    duplicate_window: timedelta
    duplicate_threshold: float
    ref_prefix: str
    group_wards: dict[str, str]
    location_max_km: float = 3.0
    verification_prefix: str = "CA"


class IntakeRecord(BaseModel):
    """The intake ledger's entry for a handled event (`_id` = event id)."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    case_id: str | None
    outcome: str
    at: datetime


class TipsterState(BaseModel):
    """A tipster's newest open case and when they last wrote (the grouping window)."""

    model_config = ConfigDict(frozen=True)

    pseudonym: str
    open_case_id: str | None = None
    last_message_at: datetime | None = None


@dataclass(frozen=True)
class Arrival:
    """A citizen's message as intake reads it: the event, its sender's pseudonym, the message,
    and the message's own triage when it was read ahead (`IntakeCore.read`)."""

    event: ZaloEventReceived
    tipster: str
    message: "CaseMessage"
    triage: Triage | None = None

    @classmethod
    def of(cls, event: ZaloEventReceived, tipster: str) -> "Arrival":
        return cls(event, tipster, case_message(event))


@dataclass(frozen=True)
class Snapshot:
    """What the store held for a batch. `cases` maps an id to None when it is known absent."""

    seen: dict[str, IntakeRecord] = field(default_factory=dict)
    tipsters: dict[str, TipsterState] = field(default_factory=dict)
    cases: dict[str, Case | None] = field(default_factory=dict)
    fingerprints: tuple[Fingerprint, ...] = ()
    taken_refs: frozenset[str] = frozenset()

    def adding(
        self, cases: dict[str, Case | None], taken_refs: frozenset[str] = frozenset()
    ) -> "Snapshot":
        return Snapshot(
            seen=self.seen,
            tipsters=self.tipsters,
            cases={**self.cases, **cases},
            fingerprints=self.fingerprints,
            taken_refs=self.taken_refs | taken_refs,
        )


@dataclass(frozen=True)
class Retriage:
    kind: TipKind
    category: TipCategory
    priority: TipPriority


@dataclass(frozen=True)
class Reroute:
    ward: str
    ward_source: WardSource
    places: list[str]


@dataclass(frozen=True)
class Join:
    """Add `message` to the case once (the store skips it if the case already has it)."""

    case_id: str
    message: CaseMessage
    last_message_at: datetime
    retriage: Retriage | None = None
    reroute: Reroute | None = None
    reasons: tuple[Reason, ...] | None = None  # replaces the case's reasons when set

    def fields(self) -> dict[str, Any]:
        """The case's fields the join sets, besides adding the message."""
        changes: dict[str, Any] = {"last_message_at": self.last_message_at}
        if self.retriage is not None:
            changes |= {
                "kind": self.retriage.kind,
                "category": self.retriage.category,
                "priority": self.retriage.priority,
            }
        if self.reroute is not None:
            changes |= {
                "ward": self.reroute.ward,
                "ward_source": self.reroute.ward_source,
                "places": self.reroute.places,
            }
        if self.reasons is not None:
            changes["reasons"] = list(self.reasons)
        return changes


@dataclass(frozen=True)
class TipsterNote:
    """Remember a tipster's newest open case; `first` keeps their sealed id (a new case)."""

    pseudonym: str
    case_id: str
    at: datetime
    first: bool


@dataclass(frozen=True)
class SlaWatch:
    case_id: str
    since: datetime


@dataclass
class IntakeResult:
    """What happened, and what the handler still has to send to the citizen."""

    outcome: str
    case_id: str | None = None
    reply: str | None = None
    reply_key: str | None = None
    reasons: list[str] = field(default_factory=list)


@dataclass
class Plan:
    """Every effect of a batch, in the order the messages were decided."""

    results: list[IntakeResult] = field(default_factory=list)
    new_cases: list[Case] = field(default_factory=list)
    joins: list[Join] = field(default_factory=list)
    tipsters: list[TipsterNote] = field(default_factory=list)
    fingerprints: list[Fingerprint] = field(default_factory=list)
    sla: list[SlaWatch] = field(default_factory=list)
    staged: list[StagedEvent] = field(default_factory=list)
    records: list[IntakeRecord] = field(default_factory=list)
    missing: set[str] = field(default_factory=set)


def case_message(event: ZaloEventReceived) -> CaseMessage:
    photos = tuple(
        a.url for a in event.attachments if a.type in (MessageType.IMAGE, MessageType.GIF) and a.url
    )
    location = next(
        (a for a in event.attachments if a.type == MessageType.LOCATION and a.latitude is not None),
        None,
    )
    return CaseMessage(
        event_id=event.event_id,
        at=event.received_at,
        message_type=event.message_type,
        text=(event.text or "").strip() or None,
        photos=photos,
        latitude=location.latitude if location else None,
        longitude=location.longitude if location else None,
    )
