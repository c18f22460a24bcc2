"""The tip events reports publishes, built from a case (no I/O)."""

import json
from datetime import datetime
from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict

from services.reports.cases import Case
from shared.events.envelope import Event
from shared.events.tips import TipTriaged, TipUpdated
from shared.text import mask_phones


class StagedEvent(BaseModel):
    """A tip event kept in the outbox until it is published (`_id` = event id)."""

    model_config = ConfigDict(frozen=True)

    event_id: str
    case_id: str | None
    subject: str
    payload: dict[str, Any]

    @classmethod
    def of(cls, event: Event, subject: str, case_id: str | None) -> "StagedEvent":
        return cls(
            event_id=event.event_id,
            case_id=case_id,
            subject=subject,
            payload=event.model_dump(mode="json"),
        )

    @cached_property
    def wire(self) -> bytes:
        """The event as it goes on the stream, compact UTF-8 JSON as `event_bytes` writes it;
        made once, for the outbox (as text) and for the publish."""
        return json.dumps(self.payload, ensure_ascii=False, separators=(",", ":")).encode()


def triaged_event(case: Case, ward: str, info_only: bool = False) -> TipTriaged:
    """The dispatch card of a case, for `ward` (its own, or another's as information)."""
    return TipTriaged(
        event_id=f"tt-{case.id}-{ward}",
        occurred_at=case.created_at,
        case_id=case.id,
        ref=case.ref,
        kind=case.kind,
        category=case.category,
        priority=case.priority,
        ward=ward,
        reasons=tuple(case.reasons),
        tipster=case.tipster,
        channel=case.channel,
        narrative=mask_phones(case.text),
        photos=case.photos,
        has_location=case.location is not None,
        assignee=case.assignee,
        duplicate_of=case.duplicate_of,
        info_only=info_only,
    )


def updated_event(
    case: Case,
    change: str,
    actor: str,
    event_id: str,
    at: datetime,
    previous_ward: str | None = None,
    detail: str | None = None,
) -> TipUpdated:
    return TipUpdated.model_validate(
        {
            "event_id": event_id,
            "occurred_at": at,
            "case_id": case.id,
            "ref": case.ref,
            "change": change,
            "ward": case.ward,
            "status": case.status,
            "category": case.category,
            "priority": case.priority,
            "kind": case.kind,
            "actor": actor,
            "previous_ward": previous_ward,
            "duplicate_of": case.duplicate_of or case.merged_into,
            "detail": detail,
        }
    )
