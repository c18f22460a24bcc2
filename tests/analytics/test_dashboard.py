"""The dashboard in headless Chromium, against the running service with seeded events."""

import asyncio
import re
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from services.analytics.app import create_app
from services.analytics.settings import AnalyticsSettings
from shared.events.tips import CaseStatus, TipCategory
from shared.events.zalo import ZaloEventKind
from shared.web import CONTENT_SECURITY_POLICY
from tests.analytics.builders import zalo_event
from tests.analytics.conftest import (
    ANALYST_TOKEN,
    announce_groups,
    drop_database,
    publish_events,
    units_file,
)
from tests.analytics.test_api import GROUPS, HOUSEHOLDS
from tests.analytics.test_tips_and_reach import delivery, publish, triaged, updated
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tools.localstack.servers import REPO_ROOT, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.usefixtures("stream_cleanup")]

CHART_JS = REPO_ROOT / ".local/npm/node_modules/chart.js/dist/chart.umd.min.js"
FLAGS = [*CHROMIUM_FLAGS, "--virtual-time-budget=10000"]


def canvas_attributes(dom: str, chart: str) -> dict[str, str]:
    tag = re.search(rf'<canvas[^>]*id="{chart}"[^>]*>', dom)
    assert tag, f"no canvas {chart} in the page"
    return dict(re.findall(r'data-([a-z]+)="([^"]*)"', tag.group(0)))


async def dump_dom(url: str) -> str:
    assert CHROMIUM
    with tempfile.TemporaryDirectory(prefix="chromium-") as profile:
        process = await asyncio.create_subprocess_exec(
            CHROMIUM,
            *FLAGS,
            f"--user-data-dir={profile}",
            "--dump-dom",
            url,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.DEVNULL,
        )
        try:
            out, _ = await asyncio.wait_for(process.communicate(), timeout=60)
        except TimeoutError:
            process.kill()
            await process.wait()
            raise
    return out.decode()


@asynccontextmanager
async def served(app: Any, settings: AnalyticsSettings) -> AsyncIterator[None]:
    """The app on its HTTP port (uvicorn, as in production) until the block ends."""
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=settings.http_port, log_config=None, access_log=False
        )
    )
    serving = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.wait([serving], timeout=0.05)
            assert not serving.done(), "the server did not start"
        yield
    finally:
        server.should_exit = True
        await serving
        await drop_database(settings)


def dashboard_settings(
    settings: AnalyticsSettings, fake_zalo: Any, tmp_path: Path
) -> AnalyticsSettings:
    return settings.model_copy(
        update={
            "chart_js_file": str(CHART_JS),
            "http_port": free_port(),
            "snapshot_interval": 3600.0,
            "places_units_file": units_file(tmp_path, HOUSEHOLDS),
            **fake_zalo.settings().model_dump(),
        }
    )


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: run `make browser`")
@pytest.mark.skipif(not CHART_JS.exists(), reason="no chart.js: run `make dashboard-assets`")
async def test_dashboard_renders_real_numbers(
    settings: AnalyticsSettings, fake_zalo: Any, tmp_path: Path
) -> None:
    fake_zalo.admin.add_article(title="Cảnh giác lừa đảo qua mạng", views=4321, shares=17)
    settings = dashboard_settings(settings, fake_zalo, tmp_path)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    events = [zalo_event(ZaloEventKind.FOLLOW, yesterday + timedelta(minutes=i)) for i in range(7)]
    events += [zalo_event(ZaloEventKind.UNFOLLOW, yesterday) for _ in range(2)]
    events += [zalo_event(ZaloEventKind.GROUP_MESSAGE, yesterday, group_id="g1") for _ in range(4)]
    app = create_app(settings)
    async with served(app, settings):
        await announce_groups(app, settings, GROUPS)
        await publish_events(settings, events)
        tips = [
            ("triaged.bac-ly.normal", triaged(f"c{i}", "bac-ly", TipCategory.FRAUD, yesterday))
            for i in range(3)
        ]
        tips += [
            (
                "updated.bac-ly",
                updated(
                    "c0",
                    "bac-ly",
                    "replied",
                    yesterday + timedelta(minutes=12),
                    CaseStatus.ASSIGNED,
                ),
            )
        ]
        await publish(settings, settings.tips_subject_filter.removesuffix(".>"), tips)
        sent = [
            ("sent", delivery("notice-1", g, "sent", yesterday, "bac-ly")) for g in ("g1", "g2")
        ]
        await publish(settings, settings.broadcast_subject_filter.removesuffix(".>"), sent)
        # and the poller's first snapshot, and the registry's groups
        total = len(events) + len(tips) + len(sent) + 1 + len(GROUPS)
        await app.state.service.writer.pipeline.wait_until(lambda s: s.counted >= total, timeout=20)

        url = f"http://127.0.0.1:{settings.http_port}/dashboard#token={ANALYST_TOKEN}"
        dom = await dump_dom(url)

    assert 'data-loaded="1"' in dom, "the page did not finish loading its data"
    assert "Người quan tâm theo thời gian" in dom
    followers = canvas_attributes(dom, "chart-followers")
    assert (followers["rendered"], followers["total"], followers["points"]) == ("1", "7", "30")
    messages = canvas_attributes(dom, "chart-messages")
    assert (messages["rendered"], messages["total"]) == ("1", "4")
    coverage = canvas_attributes(dom, "chart-coverage")
    assert (coverage["rendered"], coverage["total"]) == ("1", "910")  # 450 + 400 + 60
    assert "45%" in dom  # the coverage table under the chart
    assert "100%" in dom
    assert "dữ liệu minh hoạ (DEMO)" in dom
    tips = canvas_attributes(dom, "chart-tips")
    assert (tips["rendered"], tips["total"]) == ("1", "3")
    response = canvas_attributes(dom, "chart-response")
    assert (response["rendered"], response["total"]) == ("1", "3")  # cases
    assert "<td>12</td>" in dom  # the one response, 12 minutes after triage
    reach = canvas_attributes(dom, "chart-reach")
    assert (reach["rendered"], reach["total"]) == ("1", "750")  # members of g1 and g2
    articles = canvas_attributes(dom, "chart-articles")
    assert articles["rendered"] == "1"
    assert int(articles["total"]) >= 4321  # every article's views, ours included
    assert "Cảnh giác lừa đảo qua mạng" in dom


# Finding 2: hostile strings from the API are shown as text and nothing in them runs.
PWN = "document.body.setAttribute('data-pwned', '{}')"
HOSTILE_TITLES = [
    f'<img src=x onerror="{PWN.format("img")}">',
    f"<script>{PWN.format('script')}</script>",
    f'<svg onload="{PWN.format("svg")}"></svg>',
    f'"><iframe srcdoc="<script>parent.{PWN.format("iframe")}</script>"></iframe>',
    f'<a href="javascript:{PWN.format("href")}" id="click-me">x</a>',
]


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium: run `make browser`")
@pytest.mark.skipif(not CHART_JS.exists(), reason="no chart.js: run `make dashboard-assets`")
async def test_hostile_titles_and_ids_render_as_text(
    settings: AnalyticsSettings, fake_zalo: Any, tmp_path: Path
) -> None:
    for n, title in enumerate(HOSTILE_TITLES):
        fake_zalo.admin.add_article(title=title, views=100 + n, shares=n)
    settings = dashboard_settings(settings, fake_zalo, tmp_path)
    yesterday = datetime.now(UTC) - timedelta(days=1)
    notice = f'<img src=y onerror="{PWN.format("notice")}">'
    sent = [("sent", delivery(notice, "g1", "sent", yesterday, "bac-ly"))]
    app = create_app(settings)
    async with served(app, settings):
        await publish(settings, settings.broadcast_subject_filter.removesuffix(".>"), sent)
        await app.state.service.writer.pipeline.wait_until(lambda s: s.counted >= 2, timeout=20)
        url = f"http://127.0.0.1:{settings.http_port}/dashboard#token={ANALYST_TOKEN}"
        dom = await dump_dom(url)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.http_port}") as http:
            page = await http.get("/dashboard")
            swagger = await http.get("/docs")

    assert page.headers["content-security-policy"] == CONTENT_SECURITY_POLICY
    assert swagger.status_code == 404  # Swagger UI needs inline and CDN script: off
    assert 'data-loaded="1"' in dom, "the page did not finish loading its data"
    assert not re.search(r"<body[^>]*data-pwned", dom), "hostile markup ran"
    body = dom[dom.index("<body") :]
    assert "<img" not in body
    assert "<iframe" not in body
    assert "<svg" not in body
    assert '<a href="javascript' not in body
    assert "&lt;img src=x onerror=" in body  # the title, shown as written
    assert "&lt;img src=y onerror=" in body  # the notice id in the reach table
