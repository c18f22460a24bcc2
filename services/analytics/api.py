"""Metrics endpoints: JSON with from/to/interval, or CSV with `format=csv`."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request
from fastapi.responses import JSONResponse, Response

from services.analytics import metrics
from services.analytics.buckets import Grain, day_labels, local
from services.analytics.increments import FOLLOWERS, GROUP_MEMBERS, ZALO_EVENTS
from services.analytics.reach import (
    DELIVERIES,
    EFFECT_DAYS,
    STATES,
    notice_effect,
    notice_reach,
    outcome_series,
)
from services.analytics.registry import coverage, regroup, wards_of
from services.analytics.snapshots import article_series, follower_series
from services.analytics.store import MetricsStore
from services.analytics.tips import OUTCOMES, TIPS, response_times
from shared.auth import Role, StaffUser, require_roles
from shared.places import UNKNOWN_WARD, Gazetteer

# Every metric answers JSON, or CSV with `format=csv` (documented, so clients may rely on it).
_CSV: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/csv": {"schema": {"type": "string"}}}}
}
router = APIRouter(prefix="/metrics", tags=["metrics"], responses=_CSV)

Analyst = Annotated[StaffUser, Depends(require_roles(Role.ANALYST))]
Format = Annotated[Literal["json", "csv"], Query(alias="format")]


def get_store(request: Request) -> MetricsStore:
    store: MetricsStore = request.app.state.service.store
    return store


StoreDep = Annotated[MetricsStore, Depends(get_store)]


class Period:
    """`from`/`to` (Vietnam days, inclusive) and `interval`; 30 days up to today by default."""

    def __init__(
        self,
        start: Annotated[date | None, Query(alias="from")] = None,
        end: Annotated[date | None, Query(alias="to")] = None,
        interval: Grain = Grain.DAY,
    ) -> None:
        first, last = metrics.default_period(local(datetime.now()).date())
        self.first, self.last, self.grain = start or first, end or last, interval
        if start and not end:
            self.last = max(self.first, last)
        self.labels = metrics.period_labels(self.first, self.last, self.grain)  # or PeriodError

    def describe(self) -> dict[str, str]:
        return {
            "from": self.first.isoformat(),
            "to": self.last.isoformat(),
            "interval": str(self.grain),
        }


PeriodDep = Annotated[Period, Depends()]


def respond(body: dict[str, Any], rows: list[dict[str, Any]], fmt: str, name: str) -> Response:
    if fmt == "csv":
        headers = {"Content-Disposition": f'attachment; filename="{name}.csv"'}
        return Response(metrics.to_csv(rows), media_type="text/csv; charset=utf-8", headers=headers)
    return JSONResponse(body)


def get_gazetteer(request: Request) -> Gazetteer:
    gazetteer: Gazetteer = request.app.state.service.gazetteer
    return gazetteer


GazetteerDep = Annotated[Gazetteer, Depends(get_gazetteer)]
UnitSet = Annotated[
    Literal["2020", "2025"] | None,
    Query(description="Report wards in the pre-2025 unit set (2020) or the current one (2025)."),
]


def unit_name(gazetteer: Gazetteer, slug: str) -> str:
    unit = gazetteer.units.get(slug)
    return unit.name if unit else slug


def in_unit_set(gazetteer: Gazetteer, ward: str, unit_set: str | None) -> str:
    if unit_set is None:
        return ward
    return gazetteer.in_set(ward, unit_set) or UNKNOWN_WARD


@router.get("/followers")
async def followers(
    _: Analyst, store: StoreDep, period: PeriodDep, fmt: Format = "json"
) -> Response:
    """Follows, unfollows and net growth per bucket; the current count from the events."""
    docs = await store.counters(
        FOLLOWERS, period.grain, period.first.isoformat(), period.last.isoformat()
    )
    rows = metrics.followers_series(docs, period.labels)
    current = metrics.net_total(await store.counters(FOLLOWERS, Grain.DAY))
    latest = await store.latest_snapshot()
    from_api = None if latest is None else int(latest["followers"])
    first, last = period.first.isoformat(), period.last.isoformat()
    body = {
        **period.describe(),
        "current_from_events": current,
        "series": rows,
        "totals": {k: sum(r[k] for r in rows) for k in ("follows", "unfollows", "net")},
        # The API's total also counts followers from before the webhook was connected, and
        # misses nothing the webhook missed: the difference is shown as it is, not hidden.
        "current_from_snapshots": from_api,
        "difference": None if from_api is None else from_api - current,
        "snapshots": follower_series(await store.snapshots(first, last)),
    }
    return respond(body, rows, fmt, "followers")


@router.get("/messages")
async def messages(
    _: Analyst, store: StoreDep, period: PeriodDep, fmt: Format = "json"
) -> Response:
    """Messages per bucket by kind (citizen 1:1, group, OA)."""
    docs = await store.counters(
        ZALO_EVENTS, period.grain, period.first.isoformat(), period.last.isoformat()
    )
    rows = metrics.messages_series(docs, period.labels)
    return respond({**period.describe(), "series": rows}, rows, fmt, "messages")


@router.get("/coverage")
async def coverage_by_ward(
    user: Analyst,
    store: StoreDep,
    period: PeriodDep,
    gazetteer: GazetteerDep,
    fmt: Format = "json",
    ward: str | None = None,
    unit_set: UnitSet = None,
) -> Response:
    """Groups, members and households covered per ward against the ward's households."""
    member_docs = await store.counters(
        GROUP_MEMBERS, Grain.DAY, period.first.isoformat(), period.last.isoformat()
    )
    joined = metrics.per_dim(member_docs, "group", "joined")
    left = metrics.per_dim(member_docs, "group", "left")
    changes = {g: joined.get(g, 0) - left.get(g, 0) for g in joined.keys() | left.keys()}
    wards = [w for w in wards_of(gazetteer) if user.can_see_ward(w.slug)]
    groups = await store.groups()
    if unit_set is not None:
        wards, groups = regroup(
            wards,
            groups,
            lambda w: in_unit_set(gazetteer, w, unit_set),
            lambda w: unit_name(gazetteer, w),
        )
    rows = [
        row.model_dump()
        for row in coverage(wards, groups, changes)
        if ward is None or row.ward == ward
    ]
    body = {
        **period.describe(),
        "unit_set": unit_set,
        "demo_registry": gazetteer.demo,
        "wards": rows,
    }
    return respond(body, rows, fmt, "coverage")


@router.get("/overview")
async def overview(
    user: Analyst, store: StoreDep, period: PeriodDep, gazetteer: GazetteerDep
) -> dict[str, Any]:
    """The headline numbers of the period."""
    first, last = period.first.isoformat(), period.last.isoformat()
    follow_rows = metrics.followers_series(
        await store.counters(FOLLOWERS, Grain.DAY, first, last),
        day_labels(period.first, period.last),
    )
    message_rows = metrics.messages_series(
        await store.counters(ZALO_EVENTS, Grain.DAY, first, last),
        day_labels(period.first, period.last),
    )
    cover = [
        r
        for r in coverage(wards_of(gazetteer), await store.groups(), {})
        if user.can_see_ward(r.ward)
    ]
    covered = sum(r.households_covered for r in cover if r.households_total)
    total = sum(r.households_total or 0 for r in cover)
    return {
        **period.describe(),
        "followers": metrics.net_total(await store.counters(FOLLOWERS, Grain.DAY)),
        "follows": sum(r["follows"] for r in follow_rows),
        "unfollows": sum(r["unfollows"] for r in follow_rows),
        "messages": sum(r["total"] for r in message_rows),
        "groups": sum(r.groups for r in cover),
        "tips": sum(
            int(d["n"].get("n", 0))
            for d in await store.counters(TIPS, Grain.DAY, first, last)
            if user.can_see_ward(d["d"].get("ward", ""))
        ),
        "notices": len(
            [
                n
                for n in notice_reach(await store.deliveries(), {})
                if n["day"] and first <= n["day"] <= last
            ]
        ),
        "coverage_percent": round(100.0 * covered / total, 1) if total else None,
        "demo_registry": gazetteer.demo,
    }


@router.get("/tips")
async def tips(
    user: Analyst,
    store: StoreDep,
    period: PeriodDep,
    gazetteer: GazetteerDep,
    fmt: Format = "json",
    unit_set: UnitSet = None,
    ward: str | None = None,
) -> Response:
    """Tips per bucket, and per ward, category and priority over the period."""
    docs = await store.counters(
        TIPS, period.grain, period.first.isoformat(), period.last.isoformat()
    )
    docs = [d for d in docs if user.can_see_ward(d["d"].get("ward", ""))]
    totals: dict[tuple[str, str, str], int] = {}
    per_bucket: dict[str, int] = {}
    for doc in docs:
        place = in_unit_set(gazetteer, doc["d"].get("ward", UNKNOWN_WARD), unit_set)
        if ward and place != ward:
            continue
        key = (place, doc["d"].get("category", ""), doc["d"].get("priority", ""))
        totals[key] = totals.get(key, 0) + int(doc["n"].get("n", 0))
        per_bucket[doc["b"]] = per_bucket.get(doc["b"], 0) + int(doc["n"].get("n", 0))
    rows = [
        {"ward": w, "category": c, "priority": p, "tips": n}
        for (w, c, p), n in sorted(totals.items())
    ]
    body = {
        **period.describe(),
        "unit_set": unit_set,
        "rows": rows,
        "series": [{"bucket": b, "tips": per_bucket.get(b, 0)} for b in period.labels],
    }
    return respond(body, rows, fmt, "tips")


@router.get("/response-times")
async def response_time(
    user: Analyst,
    store: StoreDep,
    period: PeriodDep,
    gazetteer: GazetteerDep,
    fmt: Format = "json",
    unit_set: UnitSet = None,
) -> Response:
    """Minutes to first response and to closure per ward: median and 90th percentile."""
    cases = [
        {**case, "ward": in_unit_set(gazetteer, case.get("ward", UNKNOWN_WARD), unit_set)}
        for case in await store.cases(period.first.isoformat(), period.last.isoformat())
        if user.can_see_ward(case.get("ward", ""))
    ]
    rows = response_times(cases)
    return respond(
        {**period.describe(), "unit_set": unit_set, "wards": rows}, rows, fmt, "response-times"
    )


@router.get("/outcomes")
async def outcomes(
    user: Analyst,
    store: StoreDep,
    period: PeriodDep,
    gazetteer: GazetteerDep,
    fmt: Format = "json",
    unit_set: UnitSet = None,
) -> Response:
    """Closed cases per ward and category by outcome (referred, false report, duplicate...)."""
    docs = await store.counters(
        OUTCOMES, Grain.DAY, period.first.isoformat(), period.last.isoformat()
    )
    totals: dict[tuple[str, str, str], int] = {}
    for doc in docs:
        if not user.can_see_ward(doc["d"].get("ward", "")):
            continue
        place = in_unit_set(gazetteer, doc["d"].get("ward", UNKNOWN_WARD), unit_set)
        for outcome, n in doc["n"].items():
            key = (place, doc["d"].get("category", ""), outcome)
            totals[key] = totals.get(key, 0) + int(n)
    rows = [
        {"ward": w, "category": c, "outcome": o, "cases": n}
        for (w, c, o), n in sorted(totals.items())
    ]
    return respond({**period.describe(), "unit_set": unit_set, "rows": rows}, rows, fmt, "outcomes")


def _scoped(user: StaffUser) -> bool:
    return not user.can_see_ward("")  # "" is no ward: only unscoped staff and admins see it


def _visible(user: StaffUser, deliveries: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Deliveries in the user's wards (a follower broadcast has none: city-wide staff only)."""
    if not _scoped(user):
        return deliveries
    return [d for d in deliveries if user.can_see_ward(d.get("ward") or "")]


@router.get("/broadcasts")
async def broadcasts(
    user: Analyst, store: StoreDep, period: PeriodDep, fmt: Format = "json"
) -> Response:
    """Reach per notice (targets, sent, failed, awaiting confirmation, members reached) and
    delivery outcomes per bucket; staff scoped to wards see their wards' deliveries only."""
    members = {g.id: g.members for g in await store.groups()}
    first, last = period.first.isoformat(), period.last.isoformat()
    deliveries = _visible(user, await store.deliveries())
    notices = [
        n for n in notice_reach(deliveries, members) if n["day"] and first <= n["day"] <= last
    ]
    if _scoped(user):
        series = outcome_series(deliveries, period.grain, period.labels)
    else:  # the whole city: the counters, cheaper than every fact
        docs = await store.counters(DELIVERIES, period.grain, first, last)
        per_bucket: dict[str, dict[str, int]] = {}
        for doc in docs:
            row = per_bucket.setdefault(doc["b"], {})
            state = doc["d"].get("state", "")
            row[state] = row.get(state, 0) + int(doc["n"].get("n", 0))
        series = [
            {"bucket": b, **{s: per_bucket.get(b, {}).get(s, 0) for s in STATES}}
            for b in period.labels
        ]
    rows = [{k: v for k, v in n.items() if k != "wards"} for n in notices]
    return respond(
        {**period.describe(), "notices": notices, "series": series}, rows, fmt, "broadcasts"
    )


@router.get("/notice-effect")
async def notice_effects(user: Analyst, store: StoreDep, fmt: Format = "json") -> Response:
    """For each notice: tips of the warned categories in its wards, 14 days before and after
    (for staff scoped to wards: their wards only)."""
    deliveries = _visible(user, await store.deliveries())
    notices = [n for n in notice_reach(deliveries, {}) if n["first_at"]]
    per_day: dict[tuple[str, str, str], int] = {}
    for doc in await store.counters(TIPS, Grain.DAY):
        if not user.can_see_ward(doc["d"].get("ward", "")):
            continue
        key = (doc["b"], doc["d"].get("ward", ""), doc["d"].get("category", ""))
        per_day[key] = per_day.get(key, 0) + int(doc["n"].get("n", 0))
    rows = [notice_effect(n, per_day) for n in notices]
    return respond({"days": EFFECT_DAYS, "notices": rows}, rows, fmt, "notice-effect")


@router.get("/articles")
async def articles(
    _: Analyst, store: StoreDep, period: PeriodDep, fmt: Format = "json"
) -> Response:
    """Views and shares per article and day (from snapshots), and the top articles."""
    rows = article_series(await store.snapshots(period.first.isoformat(), period.last.isoformat()))
    latest: dict[str, dict[str, Any]] = {}
    for row in rows:
        latest[row["article_id"]] = row
    top = sorted(latest.values(), key=lambda r: r["views"] or 0, reverse=True)[:10]
    return respond({**period.describe(), "top": top, "series": rows}, rows, fmt, "articles")
