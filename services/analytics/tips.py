"""What tip lifecycle events (producer: reports) add: counts, outcomes and case timings."""

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import Annotated, Any

from pydantic import Field, TypeAdapter

from services.analytics.increments import Fact, Increment, dims
from shared.events.tips import CaseStatus, Outcome, TipEscalated, TipTriaged, TipUpdated

TIPS = "tips"
OUTCOMES = "outcomes"
ESCALATIONS = "escalations"
CASES = "tip_cases"

TipEvent = Annotated[TipTriaged | TipUpdated | TipEscalated, Field(discriminator="type")]
TIP_EVENT = TypeAdapter(TipEvent)

_CLOSED = {CaseStatus.RESOLVED, CaseStatus.REJECTED, CaseStatus.DUPLICATE}
_RESPONSES = {"replied", "assigned", "status_changed"}
_OUTCOME_CODES = {str(o) for o in Outcome}


def tip_effects(
    event: TipTriaged | TipUpdated | TipEscalated,
) -> tuple[list[Increment], list[Fact]]:
    """Counts per ward/category/priority, closures by outcome, and the case's timestamps."""
    at = event.occurred_at
    if isinstance(event, TipTriaged):
        if event.info_only:
            return [], []  # a copy for another ward, not a new tip
        tip = dims(ward=event.ward, category=event.category, priority=event.priority)
        fact = Fact(
            CASES,
            event.case_id,
            {"ward": event.ward, "category": str(event.category)},
            {"triaged_at": at},
        )
        return [Increment(TIPS, "n", at, tip)], [fact]
    if isinstance(event, TipEscalated):
        return [Increment(ESCALATIONS, "n", at, dims(ward=event.ward, priority=event.priority))], []
    earliest: dict[str, datetime] = {}
    increments = []
    if event.actor != "system" and event.change in _RESPONSES:
        earliest["first_response_at"] = at
    if event.change == "status_changed" and event.status in _CLOSED:
        earliest["closed_at"] = at
        outcome = outcome_of(event.status, event.detail)
        increments.append(
            Increment(OUTCOMES, outcome, at, dims(ward=event.ward, category=event.category))
        )
    facts = (
        [
            Fact(
                CASES,
                event.case_id,
                {"ward": event.ward, "category": str(event.category)},
                earliest,
            )
        ]
        if earliest
        else []
    )
    return increments, facts


def outcome_of(status: CaseStatus, detail: str | None) -> str:
    """`duplicate`, `rejected`, or the resolution's outcome code (`referred`, `false_report`...)."""
    if status is CaseStatus.RESOLVED and detail in _OUTCOME_CODES:
        return str(detail)
    return str(status)


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-quantile (0..1) by linear interpolation between closest ranks."""
    if not values:
        return None
    ordered = sorted(values)
    position = (len(ordered) - 1) * q
    low = int(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def response_times(cases: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per ward: cases, and median / 90th percentile minutes to first response and to closure."""
    by_ward: dict[str, dict[str, list[float]]] = {}
    for case in cases:
        row = by_ward.setdefault(
            case.get("ward", "unknown"), {"cases": [], "response": [], "closure": []}
        )
        row["cases"].append(1)
        start = case.get("triaged_at")
        for name, field_name in (("response", "first_response_at"), ("closure", "closed_at")):
            if start is not None and case.get(field_name) is not None:
                row[name].append((case[field_name] - start).total_seconds() / 60)
    return [
        {
            "ward": ward,
            "cases": len(row["cases"]),
            "responded": len(row["response"]),
            "closed": len(row["closure"]),
            "response_median_min": _round(percentile(row["response"], 0.5)),
            "response_p90_min": _round(percentile(row["response"], 0.9)),
            "closure_median_min": _round(percentile(row["closure"], 0.5)),
            "closure_p90_min": _round(percentile(row["closure"], 0.9)),
        }
        for ward, row in sorted(by_ward.items())
    ]


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 1)
