"""Every service's `/metrics` moves by exactly a known workload, on the stack `make run` starts:
signed tips through ingest, triaged by reports, counted by analytics, and one notice to every
OA group sent by broadcast through the Zalo API."""

import asyncio
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest

from shared.subjects import (
    ANALYTICS_BROADCAST_DURABLE,
    ANALYTICS_REGISTRY_DURABLE,
    ANALYTICS_SNAPSHOTS_DURABLE,
    ANALYTICS_TIPS_DURABLE,
    ANALYTICS_ZALO_DURABLE,
)
from tests.shared.prometheus import sample
from tests.system.stack import Stack, running_stack
from tests.system.test_whole_system import RATE_LIMITS, eventually, notice_to_all_groups
from tools.demo_world import World
from tools.zalo_sim.__main__ import run as simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]

TIPS = 12
SERVICES = ("ingest", "reports", "broadcast", "analytics")
COUNTED_STREAMS = ("ZALO_EVENTS", "TIPS", "BROADCAST_EVENTS", "ANALYTICS_SNAPSHOTS")
ANALYTICS_DURABLES = {  # durable -> the stream it reads
    ANALYTICS_ZALO_DURABLE: "ZALO_EVENTS",
    ANALYTICS_TIPS_DURABLE: "TIPS",
    ANALYTICS_BROADCAST_DURABLE: "BROADCAST_EVENTS",
    ANALYTICS_REGISTRY_DURABLE: "BROADCAST_EVENTS",
    ANALYTICS_SNAPSHOTS_DURABLE: "ANALYTICS_SNAPSHOTS",
}


async def scrape_all(http: httpx.AsyncClient, stack: Stack) -> dict[str, str]:
    pages = {}
    for service in SERVICES:
        response = await http.get(f"{stack.url(service)}/metrics")
        assert response.status_code == 200, service
        pages[service] = response.text
    return pages


def moved(
    before: dict[str, str], after: dict[str, str], service: str, name: str, **labels: str
) -> float:
    return sample(after[service], name, **labels) - sample(before[service], name, **labels)


def workload_done(sent: dict[str, Any], oa_groups: int, stored: dict[str, int]):  # type: ignore[no-untyped-def]
    """The counters, by name, and how far each must move. `stored`: messages each stream
    gained meanwhile; analytics counts every one of them once (the tips stream holds the new
    cases and, say, a suggested duplicate's update; the broadcast stream the outcomes)."""
    return {
        (
            "ingest",
            "binhyen_ingest_webhook_requests_total",
            (("status", "200"), ("outcome", "published")),
        ): TIPS,
        ("reports", "binhyen_reports_tips_triaged_total", ()): sent["cases"],
        ("reports", "binhyen_reports_messages_triaged_total", ()): TIPS,
        ("analytics", "binhyen_analytics_events_total", (("result", "counted"),)): sum(
            stored.values()
        ),
        ("broadcast", "binhyen_broadcast_notices_planned_total", ()): 1,
        ("broadcast", "binhyen_broadcast_deliveries_total", (("state", "sent"),)): oa_groups,
        (
            "broadcast",
            "binhyen_broadcast_zalo_api_calls_total",
            (("endpoint", "/v3.0/oa/group/message"), ("code", "0")),
        ): oa_groups,
    }


def test_counters_move_by_exactly_the_workload(tmp_path: Path) -> None:
    # Quiet hours off: the notice must go now, whatever the time in Vietnam.
    with running_stack(
        tmp_path, ZALO_RATE_LIMITS=RATE_LIMITS, QUIET_HOURS_ENABLED="false"
    ) as stack:
        asyncio.run(drive(stack))


async def drive(stack: Stack) -> None:
    oa_groups = sum(1 for g in World.load().groups if g.channel == "oa")
    async with httpx.AsyncClient(timeout=10) as http:
        nc = await nats.connect(stack.nats_url)
        js = nc.jetstream()

        async def last_seqs() -> dict[str, int]:
            return {name: (await js.stream_info(name)).state.last_seq for name in COUNTED_STREAMS}

        async def quiet() -> dict[str, int] | None:
            """The streams' heads once analytics has counted everything up to them (start-up
            announcements included) and nothing new came for a second."""
            seqs = await last_seqs()
            for durable, stream in ANALYTICS_DURABLES.items():
                info = await js.consumer_info(stream, durable)
                if info.num_pending or info.num_ack_pending:
                    return None
            await asyncio.sleep(1)
            return seqs if seqs == await last_seqs() else None

        seqs_before = await eventually(quiet)
        before = await scrape_all(http, stack)
        url = f"{stack.url('ingest')}/webhooks/zalo"
        statuses, sent = await simulate(url, 20, TIPS, ["user_send_text"], seed=7)
        assert statuses == {"200 published": TIPS}
        assert sent["cases"] > 0
        await notice_to_all_groups(http, stack)

        async def stored() -> dict[str, int]:
            now = await last_seqs()
            return {name: now[name] - seqs_before[name] for name in now}

        last: dict[Any, float] = {}

        async def reached() -> tuple[dict[Any, int], dict[str, str]] | None:
            nonlocal last
            expected = workload_done(sent, oa_groups, await stored())
            after = await scrape_all(http, stack)
            last = {k: moved(before, after, k[0], k[1], **dict(k[2])) for k in expected}
            return (expected, after) if last == expected else None

        try:
            await eventually(reached, timeout=120)
        except AssertionError:
            raise AssertionError(
                f"moved {last}, expected {workload_done(sent, oa_groups, await stored())}"
            ) from None
        await asyncio.sleep(3)  # anything counted twice would show by now
        final = await reached()
        assert final is not None, last
        _, after = final
        assert (await stored())["ZALO_EVENTS"] == TIPS
        await nc.close()
        assert moved(before, after, "broadcast", "binhyen_broadcast_dead_letters_total") == 0
