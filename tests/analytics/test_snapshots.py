"""Follower and article snapshots polled from the (fake) Zalo API, stored and reconciled."""

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.analytics.settings import AnalyticsSettings
from services.analytics.snapshots import article_series, follower_series
from shared.events.zalo import ZaloEventKind
from tests.analytics.builders import zalo_event
from tests.analytics.conftest import ANALYST_TOKEN, publish_events, running


def snap(day: str, at: datetime, followers: int, views: int | None) -> dict[str, Any]:
    return {
        "day": day,
        "at": at,
        "followers": followers,
        "articles": [
            {"article_id": "a1", "title": "Cảnh giác lừa đảo", "views": views, "shares": None}
        ],
    }


class TestSeries:
    def test_last_snapshot_of_each_day_and_the_increase(self) -> None:
        t = datetime(2026, 11, 20, tzinfo=UTC)
        snaps = [
            snap("2026-11-20", t, 100, 10),
            snap("2026-11-20", t + timedelta(hours=5), 104, 30),
            snap("2026-11-21", t + timedelta(days=1), 110, 55),
        ]
        assert follower_series(snaps) == [
            {"day": "2026-11-20", "followers": 104, "increase": None},
            {"day": "2026-11-21", "followers": 110, "increase": 6},
        ]
        rows = article_series(snaps)
        assert [(r["day"], r["views"], r["views_increase"]) for r in rows] == [
            ("2026-11-20", 30, None),
            ("2026-11-21", 55, 25),
        ]
        assert rows[1]["shares_increase"] is None  # the API gave no share count


@pytest.mark.integration
@pytest.mark.usefixtures("stream_cleanup")
async def test_poller_snapshot_is_stored_and_reconciled(
    settings: AnalyticsSettings, fake_zalo: Any
) -> None:
    fake_zalo.admin.add_article(title="Cảnh giác lừa đảo qua mạng", views=120, shares=7)
    zalo = fake_zalo.settings().model_dump()
    settings = settings.model_copy(update={**zalo, "snapshot_interval": 3600.0})
    async with running(settings) as app:
        await publish_events(settings, [zalo_event(ZaloEventKind.FOLLOW, datetime.now(UTC))])
        await app.state.service.writer.pipeline.wait_until(lambda s: s.counted >= 2, timeout=20)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://a",
            headers={"Authorization": f"Bearer {ANALYST_TOKEN}"},
        ) as http:
            followers = (await http.get("/metrics/followers")).json()
            articles = (await http.get("/metrics/articles")).json()
    oa_total = followers["current_from_snapshots"]
    assert oa_total == 3  # the fake's demo followers
    assert followers["current_from_events"] == 1
    assert followers["difference"] == 2
    assert [s["followers"] for s in followers["snapshots"]] == [3]
    top = {a["title"]: (a["views"], a["shares"]) for a in articles["top"]}
    assert top["Cảnh giác lừa đảo qua mạng"] == (120, 7)
