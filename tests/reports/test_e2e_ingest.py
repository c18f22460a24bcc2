"""Signed Zalo webhook -> ingest -> ZALO_EVENTS -> reports -> a ward desk on the TIPS stream."""

from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from shared.events.tips import TipTriaged
from tests.ingest.builders import fixture_body, ingest_settings, post, running_ingest
from tests.reports.builders import CITIZEN
from tests.reports.conftest import Harness

pytestmark = pytest.mark.integration


async def test_signed_webhook_tip_reaches_the_ward_desk(
    reports: Callable[..., Awaitable[Harness]], nats_url: str, tmp_path: Path, unique: str
) -> None:
    settings = ingest_settings(nats_url, tmp_path / "spool", ledger_bucket=f"ingest_ids_{unique}")
    async with running_ingest(settings) as ingest:
        harness = await reports(declare_zalo_stream=False)
        desk = await harness.nc.jetstream().pull_subscribe(
            "tips.triaged.bac-ly.>", durable=f"desk-{unique}", stream=harness.settings.tips_stream
        )
        response = await post(ingest, fixture_body("user_send_text"))
        assert response.status_code == 200, response.text
        [msg] = await desk.fetch(1, timeout=15)
        tip = TipTriaged.model_validate_json(msg.data)
        assert msg.subject == f"tips.triaged.bac-ly.{tip.priority}"
        assert (tip.ward, tip.kind, tip.category, tip.priority) == (
            "bac-ly",
            "tip",
            "suspicious",
            "high",
        )
        rules = {reason.rule for reason in tip.reasons}
        assert {"category.suspicious", "priority.happening_now", "ward.unit"} <= rules
        assert CITIZEN not in msg.data.decode()
        await msg.ack()
        await desk.unsubscribe()
