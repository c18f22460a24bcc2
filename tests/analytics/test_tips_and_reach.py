"""Tip counts, response times, outcomes and notice reach, from the other services' events."""

import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from services.analytics.settings import AnalyticsSettings
from services.analytics.tips import percentile
from shared.events.broadcast import DeliveryOutcomeRecorded
from shared.events.envelope import Event
from shared.events.tips import (
    CaseStatus,
    TipCategory,
    TipKind,
    TipPriority,
    TipTriaged,
    TipUpdated,
)
from shared.jetstream import connect
from shared.places import DEMO_CROSSWALK_FILE
from tests.analytics.conftest import (
    ANALYST_TOKEN,
    NAM_LY_ANALYST_TOKEN,
    announce_groups,
    running,
    units_file,
)
from tests.analytics.test_api import GROUPS, HOUSEHOLDS

AUTH = {"Authorization": f"Bearer {ANALYST_TOKEN}"}
T0 = datetime(2026, 11, 10, 2, 0, tzinfo=UTC)  # 09:00 in Vietnam


class TestPercentile:
    def test_median_and_p90_interpolate(self) -> None:
        values = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0, 90.0, 100.0]
        assert percentile(values, 0.5) == 55.0
        assert percentile(values, 0.9) == pytest.approx(91.0)
        assert percentile([7.0], 0.9) == 7.0
        assert percentile([], 0.5) is None


def triaged(case: str, ward: str, category: TipCategory, at: datetime) -> TipTriaged:
    return TipTriaged(
        event_id=f"t-{case}",
        occurred_at=at,
        case_id=case,
        ref=case[-4:],
        kind=TipKind.TIP,
        category=category,
        priority=TipPriority.NORMAL,
        ward=ward,
        reasons=(),
        tipster="p-x",
        channel="oa",
        narrative="…",
    )


def updated(
    case: str,
    ward: str,
    change: str,
    at: datetime,
    status: CaseStatus,
    detail: str | None = None,
    actor: str = "officer-1",
) -> TipUpdated:
    return TipUpdated(
        event_id=f"u-{uuid.uuid4().hex}",
        occurred_at=at,
        case_id=case,
        ref=case[-4:],
        change=change,
        ward=ward,
        status=status,
        category=TipCategory.FRAUD,
        priority=TipPriority.NORMAL,
        kind=TipKind.TIP,
        actor=actor,
        detail=detail,
    )


def delivery(
    notice: str, target: str, state: str, at: datetime, ward: str
) -> DeliveryOutcomeRecorded:
    return DeliveryOutcomeRecorded(
        event_id=f"{notice}:{target}:{state}",
        occurred_at=at,
        notice_id=notice,
        delivery_id=f"{notice}:{target}",
        msg_type="text",
        category="fraud_warning",
        target_kind="group",
        target_id=target,
        ward=ward,
        channel="group",
        state=state,
        attempts=1,
    )


async def publish(
    settings: AnalyticsSettings, prefix: str, events: list[tuple[str, Event]]
) -> None:
    nc = await connect(settings.nats_url, name="tests-tips")
    try:
        js = nc.jetstream()
        for subject, event in events:
            await js.publish(
                f"{prefix}.{subject}",
                event.model_dump_json().encode(),
                headers={"Nats-Msg-Id": event.event_id},
            )
    finally:
        await nc.close()


def tip_events() -> list[tuple[str, Event]]:
    events: list[tuple[str, Event]] = []
    for i, minutes in enumerate([10, 20, 30, 40, 100]):
        case = f"case-{i}"
        start = T0 + timedelta(hours=i)
        events.append(("triaged.bac-ly.normal", triaged(case, "bac-ly", TipCategory.FRAUD, start)))
        events.append(
            (
                "updated.bac-ly",
                updated(
                    case,
                    "bac-ly",
                    "message_added",
                    start + timedelta(minutes=1),
                    CaseStatus.NEW,
                    actor="system",
                ),
            )
        )
        events.append(
            (
                "updated.bac-ly",
                updated(
                    case,
                    "bac-ly",
                    "replied",
                    start + timedelta(minutes=minutes),
                    CaseStatus.ASSIGNED,
                ),
            )
        )
    events.append(
        (
            "updated.bac-ly",
            updated(
                "case-0",
                "bac-ly",
                "status_changed",
                T0 + timedelta(hours=2),
                CaseStatus.RESOLVED,
                detail="referred",
            ),
        )
    )
    events.append(
        (
            "updated.bac-ly",
            updated(
                "case-1", "bac-ly", "status_changed", T0 + timedelta(hours=3), CaseStatus.DUPLICATE
            ),
        )
    )
    events.append(
        (
            "triaged.nam-ly.normal",
            triaged("case-9", "nam-ly", TipCategory.THEFT, T0 + timedelta(days=20)),
        )
    )
    return events


@pytest.mark.integration
@pytest.mark.usefixtures("stream_cleanup")
async def test_tips_response_times_outcomes_and_reach(
    settings: AnalyticsSettings, tmp_path: Path
) -> None:
    settings = settings.model_copy(
        update={
            "places_crosswalk_file": DEMO_CROSSWALK_FILE,
            "places_units_file": units_file(tmp_path, HOUSEHOLDS),
        }
    )
    tips = tip_events()
    notice_at = T0 + timedelta(days=3)
    deliveries: list[tuple[str, Event]] = [
        ("sent", delivery("n1", "g1", "sent", notice_at, "bac-ly")),
        ("failed", delivery("n1", "g2", "failed", notice_at, "bac-ly")),
        (
            "awaiting_confirmation",
            delivery("n1", "g3", "awaiting_confirmation", notice_at, "nam-ly"),
        ),
        ("sent", delivery("n1", "g3", "sent", notice_at + timedelta(hours=1), "nam-ly")),
    ]
    tips_prefix = settings.tips_subject_filter.removesuffix(".tips.>") + ".tips"
    outcome_prefix = settings.broadcast_subject_filter.removesuffix(".>")
    async with running(settings) as app:
        await announce_groups(app, settings, GROUPS)
        await publish(settings, tips_prefix, tips)
        await publish(settings, outcome_prefix, deliveries)
        await app.state.service.writer.pipeline.wait_until(
            lambda s: s.counted >= len(tips) + len(deliveries) + len(GROUPS), timeout=20
        )
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://analytics", headers=AUTH
        ) as http:
            period = {"from": "2026-11-01", "to": "2026-11-30"}
            got: Any = (await http.get("/metrics/tips", params=period)).json()
            assert {(r["ward"], r["category"], r["tips"]) for r in got["rows"]} == {
                ("bac-ly", "fraud", 5),
                ("nam-ly", "theft", 1),
            }
            rolled = (await http.get("/metrics/tips", params={**period, "unit_set": "2025"})).json()
            assert {r["ward"] for r in rolled["rows"]} == {"dong-hoi"}  # demo crosswalk
            assert sum(r["tips"] for r in rolled["rows"]) == 6

            times = (await http.get("/metrics/response-times", params=period)).json()["wards"]
            bac_ly = next(r for r in times if r["ward"] == "bac-ly")
            assert (bac_ly["cases"], bac_ly["responded"], bac_ly["closed"]) == (5, 5, 2)
            assert bac_ly["response_median_min"] == 30.0  # system messages are not responses
            assert bac_ly["response_p90_min"] == 76.0
            assert bac_ly["closure_median_min"] == 120.0  # both closed two hours after triage

            outcomes = (await http.get("/metrics/outcomes", params=period)).json()["rows"]
            assert {(r["outcome"], r["cases"]) for r in outcomes} == {
                ("referred", 1),
                ("duplicate", 1),
            }

            reach = (await http.get("/metrics/broadcasts", params=period)).json()
            (n1,) = reach["notices"]
            assert (n1["targets"], n1["sent"], n1["failed"], n1["awaiting_confirmation"]) == (
                3,
                2,
                1,
                0,
            )
            assert n1["members_reached"] == 500 + 700  # g1 and g3 from the registry
            effect = (await http.get("/metrics/notice-effect")).json()["notices"]
            assert (effect[0]["tips_before"], effect[0]["tips_after"]) == (5, 0)

            # Finding 10: a leader of one ward sees that ward's deliveries and tips only
            nam_ly = {"Authorization": f"Bearer {NAM_LY_ANALYST_TOKEN}"}
            scoped = (await http.get("/metrics/broadcasts", params=period, headers=nam_ly)).json()
            (n1,) = scoped["notices"]
            assert (n1["targets"], n1["sent"], n1["failed"], n1["wards"]) == (1, 1, 0, ["nam-ly"])
            assert sum(row["failed"] for row in scoped["series"]) == 0  # bac-ly's failure
            assert sum(row["sent"] for row in scoped["series"]) == 1
            assert sum(row["sent"] for row in reach["series"]) == 2  # city-wide: counters
            effect = (await http.get("/metrics/notice-effect", headers=nam_ly)).json()["notices"]
            assert (effect[0]["tips_before"], effect[0]["tips_after"]) == (0, 0)  # bac-ly fraud
