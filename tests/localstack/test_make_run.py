"""`make run`'s stack: everything starts on loopback, answers, takes a webhook, and stops
cleanly on Ctrl-C (SIGINT)."""

import asyncio
from pathlib import Path

import httpx
import pytest

from tests.system.stack import OFFSETS, running_stack
from tools.zalo_sim.__main__ import run as simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def test_whole_system_runs_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    with running_stack(tmp_path) as stack:
        assert f"NATS JetStream      {stack.nats_url}" in stack.banner
        monitor = stack.banner.split("NATS monitoring", 1)[1].split()[0]
        assert monitor.startswith("http://127.0.0.1:")
        assert httpx.get(f"{monitor}/healthz?js-enabled-only=true", timeout=5).status_code == 200
        for service in OFFSETS:
            assert stack.url(service) in stack.banner
            ready = httpx.get(f"{stack.url(service)}/readyz", timeout=5)
            assert ready.status_code == 200, (service, ready.text)
        statuses, sent = asyncio.run(
            simulate(f"{stack.url('ingest')}/webhooks/zalo", 50.0, 10, ["user_send_text"], 1)
        )
        assert statuses == {"200 published": 10}
        assert sent["cases"] == 10
