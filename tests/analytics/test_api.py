"""Metrics endpoints on real NATS and FerretDB: coverage from a seeded registry, series, CSV."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from services.analytics.registry import Group, Ward, coverage, regroup
from services.analytics.settings import AnalyticsSettings
from shared.events.zalo import ZaloEventKind
from shared.places import DEMO_CROSSWALK_FILE
from tests.analytics.builders import zalo_event
from tests.analytics.conftest import (
    ANALYST_TOKEN,
    OFFICER_TOKEN,
    announce_groups,
    publish_events,
    running,
    units_file,
)

WARDS = (
    Ward(slug="bac-ly", name="Bắc Lý", households=1000),
    Ward(slug="nam-ly", name="Nam Lý", households=400),
    Ward(slug="bao-ninh", name="Bảo Ninh", households=None),
)
HOUSEHOLDS = {w.slug: w.households for w in WARDS}
GROUPS = [
    Group(id="g1", name="TDP 1", ward="bac-ly", members=500, households=300),
    Group(id="g2", name="TDP 2", ward="bac-ly", members=250, households=150),
    Group(id="g3", name="TDP 3", ward="nam-ly", members=700, households=500),
    Group(id="g4", name="Thôn 1", ward="bao-ninh", members=90, households=60),
]
AUTH = {"Authorization": f"Bearer {ANALYST_TOKEN}"}


class TestCoverageDomain:
    def test_regroup_into_the_new_wards_adds_households(self) -> None:
        wards, groups = regroup(WARDS[:2], GROUPS, lambda _: "dong-hoi", lambda _: "Đồng Hới")
        (row,) = coverage(wards, [g for g in groups if g.id != "g4"], {})
        assert (row.households_total, row.households_covered, row.percent) == (1400, 950, 67.9)

    def test_percentages_against_the_ward_households(self) -> None:
        rows = {r.ward: r for r in coverage(WARDS, GROUPS, {"g1": 5, "g2": -2})}
        assert (rows["bac-ly"].groups, rows["bac-ly"].members) == (2, 750)
        assert (rows["bac-ly"].households_covered, rows["bac-ly"].percent) == (450, 45.0)
        assert rows["bac-ly"].members_change == 3
        assert (rows["nam-ly"].households_covered, rows["nam-ly"].percent) == (400, 100.0)  # capped
        assert (rows["bao-ninh"].households_total, rows["bao-ninh"].percent) == (None, None)


def client(app) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://analytics")


@pytest.mark.integration
@pytest.mark.usefixtures("stream_cleanup")
class TestEndpoints:
    async def test_coverage_from_the_registry_events(
        self, settings: AnalyticsSettings, tmp_path: Path
    ) -> None:
        settings = settings.model_copy(
            update={
                "places_crosswalk_file": DEMO_CROSSWALK_FILE,
                "places_units_file": units_file(tmp_path, HOUSEHOLDS),
            }
        )
        async with running(settings) as app, client(app) as http:
            await announce_groups(app, settings, GROUPS)
            response = await http.get("/metrics/coverage", headers=AUTH)
            assert response.status_code == 200
            body = response.json()
            assert body["demo_registry"] is True
            percents = {w["ward"]: w["percent"] for w in body["wards"] if w["groups"]}
            assert percents == {"bac-ly": 45.0, "bao-ninh": None, "nam-ly": 100.0}
            assert len(body["wards"]) == 15  # every former unit, with or without groups
            settings_set = await http.get(
                "/metrics/coverage", headers=AUTH, params={"unit_set": "2025"}
            )
            (merged,) = [w for w in settings_set.json()["wards"] if w["groups"]]
            assert (merged["ward"], merged["groups"], merged["households_total"]) == (
                "dong-hoi",
                4,
                None,
            )  # Bảo Ninh's total is unknown, so the sum is too
            csv = await http.get(
                "/metrics/coverage", params={"format": "csv", "ward": "bac-ly"}, headers=AUTH
            )
            assert csv.headers["content-type"].startswith("text/csv")
            assert csv.text.splitlines()[1].startswith("bac-ly,Bắc Lý,2,750,0,450,1000,45.0")

    async def test_followers_series_and_overview(self, settings: AnalyticsSettings) -> None:
        day = datetime(2026, 11, 20, 3, tzinfo=UTC)  # 10:00 in Vietnam
        events = [zalo_event(ZaloEventKind.FOLLOW, day + timedelta(minutes=i)) for i in range(7)]
        events += [zalo_event(ZaloEventKind.UNFOLLOW, day + timedelta(days=1)) for _ in range(2)]
        events += [zalo_event(ZaloEventKind.USER_MESSAGE, day) for _ in range(3)]
        async with running(settings) as app, client(app) as http:
            await publish_events(settings, events)
            await app.state.service.writer.pipeline.wait_until(
                lambda s: s.counted >= len(events), timeout=20
            )
            params = {"from": "2026-11-19", "to": "2026-11-22"}
            body = (await http.get("/metrics/followers", params=params, headers=AUTH)).json()
            assert body["current_from_events"] == 5
            assert [(r["bucket"], r["follows"], r["unfollows"]) for r in body["series"]] == [
                ("2026-11-19", 0, 0),
                ("2026-11-20", 7, 0),
                ("2026-11-21", 0, 2),
                ("2026-11-22", 0, 0),
            ]
            hourly = (
                await http.get(
                    "/metrics/followers",
                    headers=AUTH,
                    params={"from": "2026-11-20", "to": "2026-11-20", "interval": "hour"},
                )
            ).json()
            assert [r["follows"] for r in hourly["series"] if r["follows"]] == [7]
            assert hourly["series"][10]["bucket"] == "2026-11-20T10"
            overview = (await http.get("/metrics/overview", params=params, headers=AUTH)).json()
            assert (overview["follows"], overview["unfollows"], overview["messages"]) == (7, 2, 3)

    async def test_staff_login_and_roles(self, settings: AnalyticsSettings) -> None:
        async with running(settings) as app, client(app) as http:
            assert (await http.get("/metrics/overview")).status_code == 401
            officer = {"Authorization": f"Bearer {OFFICER_TOKEN}"}
            forbidden = await http.get("/metrics/overview", headers=officer)
            assert forbidden.status_code == 403
            assert "vai trò" in forbidden.json()["detail"]

    async def test_bad_periods_are_refused_in_vietnamese(self, settings: AnalyticsSettings) -> None:
        async with running(settings) as app, client(app) as http:
            reversed_ = await http.get(
                "/metrics/followers",
                headers=AUTH,
                params={"from": "2026-11-20", "to": "2026-11-01"},
            )
            assert reversed_.status_code == 422
            assert "phải trước" in reversed_.json()["detail"]
            too_long = await http.get(
                "/metrics/messages",
                headers=AUTH,
                params={"from": "2026-01-01", "to": "2026-11-01", "interval": "hour"},
            )
            assert too_long.status_code == 422
