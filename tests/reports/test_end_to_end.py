"""The whole path a citizen's tip takes: a signed Zalo webhook → ingest → JetStream →
reports → a dispatcher's durable consumer on `tips.triaged.<ward>.>`, on the real servers."""

from pathlib import Path

import pytest

from shared.events.tips import TipTriaged
from tests.ingest.builders import fixture_body, ingest_settings, post, running_ingest
from tests.reports.builders import CITIZEN
from tests.reports.conftest import Harness
from tests.reports.test_flow import Start, desk

pytestmark = pytest.mark.integration


async def test_signed_webhook_tip_reaches_the_ward_dispatcher(
    reports: Start, nats_url: str, tmp_path: Path, unique: str
) -> None:
    ingest = ingest_settings(nats_url, tmp_path / "spool")
    async with running_ingest(ingest) as webhook:  # ingest owns and declares ZALO_EVENTS
        harness: Harness = await reports(declare_zalo_stream=False)
        dispatcher = await desk(harness, "bac-ly", unique)
        tip = fixture_body("user_send_text")  # "...nghi trộm chó, tổ dân phố 3 phường Bắc Lý"
        response = await post(webhook, tip)
        assert (response.status_code, response.json()["status"]) == (200, "published")
        assert (await post(webhook, tip)).json()["status"] == "duplicate"  # Zalo's retry

        [msg] = await dispatcher.fetch(1, timeout=15)
        triaged = TipTriaged.model_validate_json(msg.data)
        assert msg.subject == f"tips.triaged.bac-ly.{triaged.priority}"
        assert triaged.ward == "bac-ly"
        assert triaged.category in {"theft", "suspicious"}
        assert triaged.reasons
        assert triaged.tipster.startswith("p-")
        assert CITIZEN.encode() not in msg.data
        await msg.ack()
        await dispatcher.unsubscribe()
        assert len(await harness.cases()) == 1
