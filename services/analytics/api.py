"""Metrics endpoints: JSON with from/to/interval, or CSV with `format=csv`."""

from datetime import date, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, HTTPException, Query, Request, status
from fastapi.responses import JSONResponse, Response

from services.analytics import metrics
from services.analytics.buckets import Grain, day_labels, local
from services.analytics.increments import FOLLOWERS, GROUP_MEMBERS, ZALO_EVENTS
from services.analytics.registry import coverage
from services.analytics.store import MetricsStore
from shared.auth import Role, StaffUser, require_roles

router = APIRouter(prefix="/metrics", tags=["metrics"])

Analyst = Annotated[StaffUser, Depends(require_roles(Role.ANALYST))]
Format = Annotated[Literal["json", "csv"], Query(alias="format")]


def get_store(request: Request) -> MetricsStore:
    store: MetricsStore = request.app.state.store
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
        try:
            self.labels = metrics.period_labels(self.first, self.last, self.grain)
        except metrics.PeriodError as exc:
            raise HTTPException(status.HTTP_422_UNPROCESSABLE_CONTENT, detail=str(exc)) from exc

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
    body = {
        **period.describe(),
        "current_from_events": current,
        "series": rows,
        "totals": {k: sum(r[k] for r in rows) for k in ("follows", "unfollows", "net")},
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
    fmt: Format = "json",
    ward: str | None = None,
) -> Response:
    """Groups, members and households covered per ward against the ward's households."""
    member_docs = await store.counters(
        GROUP_MEMBERS, Grain.DAY, period.first.isoformat(), period.last.isoformat()
    )
    joined = metrics.per_dim(member_docs, "group", "joined")
    left = metrics.per_dim(member_docs, "group", "left")
    changes = {g: joined.get(g, 0) - left.get(g, 0) for g in joined.keys() | left.keys()}
    rows = [
        row.model_dump()
        for row in coverage(await store.wards(), await store.groups(), changes)
        if user.can_see_ward(row.ward) and (ward is None or row.ward == ward)
    ]
    body = {**period.describe(), "demo_registry": await store.registry_is_demo(), "wards": rows}
    return respond(body, rows, fmt, "coverage")


@router.get("/overview")
async def overview(user: Analyst, store: StoreDep, period: PeriodDep) -> dict[str, Any]:
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
        for r in coverage(await store.wards(), await store.groups(), {})
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
        "coverage_percent": round(100.0 * covered / total, 1) if total else None,
        "demo_registry": await store.registry_is_demo(),
    }
