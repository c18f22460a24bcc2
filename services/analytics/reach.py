"""Notice reach and notice effect, from delivery outcomes (producer: broadcast)."""

from collections.abc import Iterable, Mapping
from datetime import date, datetime, timedelta
from typing import Any

from services.analytics.buckets import Grain, bucket_label, local
from services.analytics.increments import Fact, Increment, dims
from shared.events.broadcast import DeliveryOutcomeRecorded

DELIVERIES = "deliveries"  # facts collection and counter metric
STATES = ("sent", "awaiting_confirmation", "failed", "cancelled")
EFFECT_DAYS = 14

# Which tip categories a notice category warns about (the two services name them differently).
WARNED_TIP_CATEGORIES: Mapping[str, tuple[str, ...]] = {
    "fraud_warning": ("fraud",),
    "security_warning": (
        "theft",
        "robbery",
        "violence",
        "public_disorder",
        "suspicious",
        "drugs",
        "gambling",
    ),
    "wanted_missing": ("suspicious",),
}


def delivery_effects(event: DeliveryOutcomeRecorded) -> tuple[list[Increment], list[Fact]]:
    """Outcomes per day and state, and the delivery's earliest time in each state."""
    if event.test_mode or event.state not in STATES:
        return [], []
    at = event.occurred_at
    fact = Fact(
        DELIVERIES,
        event.delivery_id,
        {
            "notice": event.notice_id,
            "category": event.category,
            "target_kind": event.target_kind,
            "target_id": event.target_id,
            "ward": event.ward,
        },
        {f"{event.state}_at": at},
    )
    return [Increment(DELIVERIES, "n", at, dims(state=event.state))], [fact]


def notice_reach(
    deliveries: Iterable[Mapping[str, Any]], members: Mapping[str, int]
) -> list[dict[str, Any]]:
    """Per notice: targets, sent, failed, awaiting officer confirmation, members reached."""
    notices: dict[str, dict[str, Any]] = {}
    for d in deliveries:
        row = notices.setdefault(
            d["notice"],
            {
                "notice": d["notice"],
                "category": d.get("category"),
                "first_at": None,
                "wards": set(),
                "targets": 0,
                "sent": 0,
                "failed": 0,
                "awaiting_confirmation": 0,
                "cancelled": 0,
                "members_reached": 0,
            },
        )
        row["targets"] += 1
        state = delivery_state(d)
        if state:
            row[state] += 1
        if state == "sent" and d.get("target_kind") == "group":
            row["members_reached"] += members.get(d.get("target_id", ""), 0)
        if d.get("ward"):
            row["wards"].add(d["ward"])
        times = [d[f"{s}_at"] for s in STATES if d.get(f"{s}_at")]
        if times and (row["first_at"] is None or min(times) < row["first_at"]):
            row["first_at"] = min(times)
    rows = sorted(notices.values(), key=lambda r: r["first_at"] or datetime.min, reverse=True)
    return [
        {
            **r,
            "wards": sorted(r["wards"]),
            "first_at": r["first_at"].isoformat() if r["first_at"] else None,
            "day": local(r["first_at"]).date().isoformat() if r["first_at"] else None,
        }
        for r in rows
    ]


def outcome_series(
    deliveries: Iterable[Mapping[str, Any]], grain: Grain, labels: Iterable[str]
) -> list[dict[str, Any]]:
    """Delivery outcomes per bucket, counted from delivery facts: for staff scoped to some
    wards, whose counts must not include other wards (the counters are city-wide)."""
    counts = {label: dict.fromkeys(STATES, 0) for label in labels}
    for d in deliveries:
        for state in STATES:
            at = d.get(f"{state}_at")
            row = counts.get(bucket_label(at, grain)) if isinstance(at, datetime) else None
            if row is not None:
                row[state] += 1
    return [{"bucket": label, **row} for label, row in counts.items()]


def delivery_state(delivery: Mapping[str, Any]) -> str | None:
    """Where a delivery ended: sent beats failed beats awaiting beats cancelled."""
    for state in ("sent", "failed", "awaiting_confirmation", "cancelled"):
        if delivery.get(f"{state}_at"):
            return state
    return None


def notice_effect(
    notice: Mapping[str, Any], tips_per_day: Mapping[tuple[str, str, str], int]
) -> dict[str, Any]:
    """Tips of the warned categories in the targeted wards, 14 days before and after."""
    start = local(datetime.fromisoformat(notice["first_at"])).date()
    categories = WARNED_TIP_CATEGORIES.get(notice.get("category") or "", ())
    wards = set(notice["wards"])

    def count(first: date, last: date) -> int:
        return sum(
            n
            for (day, ward, category), n in tips_per_day.items()
            if category in categories
            and (not wards or ward in wards)
            and first.isoformat() <= day <= last.isoformat()
        )

    before = count(start - timedelta(days=EFFECT_DAYS), start - timedelta(days=1))
    after = count(start, start + timedelta(days=EFFECT_DAYS - 1))
    return {
        "notice": notice["notice"],
        "category": notice.get("category"),
        "tip_categories": list(categories),
        "wards": sorted(wards),
        "day": start.isoformat(),
        "tips_before": before,
        "tips_after": after,
        "change": after - before,
    }
