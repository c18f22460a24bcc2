"""Staff re-triage teaches the model: a PATCH keeps the text with staff's labels in MongoDB,
and `python -m services.reports.train` trains on the corpus plus those corrections."""

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest

from services.reports.model import TriageModel
from services.reports.train import main
from tests.reports.builders import auth, message
from tests.reports.conftest import Harness
from tests.reports.test_train import write_corpus

pytestmark = pytest.mark.integration
Start = Callable[..., Awaitable[Harness]]


async def opened_case(harness: Harness, text: str) -> str:
    event = message(text=text)
    await harness.publish(event)
    case_id: str = (await harness.processed(event.event_id))["case_id"]
    return case_id


class TestCorrections:
    async def test_retriage_keeps_the_text_with_staffs_labels(self, reports: Start) -> None:
        harness = await reports()
        case_id = await opened_case(harness, "Có trộm ở xã Quang Phú, số nó 0912 345 678")
        changed = await harness.http.patch(
            f"/cases/{case_id}",
            json={"kind": "tip", "category": "robbery", "priority": "high"},
            headers=auth("t-qp"),
        )
        assert changed.status_code == 200, changed.text
        [kept] = await harness.reports.store.all_corrections()
        assert (kept["_id"], kept["kind"], kept["category"], kept["priority"]) == (
            case_id,
            "tip",
            "robbery",
            "high",
        )
        assert kept["ward"] == "quang-phu"
        assert kept["corrected_by"] == "d-qp"
        assert "Có trộm ở xã Quang Phú" in kept["text"]
        assert "345 678" not in kept["text"]

    async def test_copies_to_other_wards_are_not_corrections(self, reports: Start) -> None:
        harness = await reports()
        case_id = await opened_case(harness, "Có trộm ở xã Quang Phú")
        copied = await harness.http.patch(
            f"/cases/{case_id}", json={"info_wards": ["bac-ly"]}, headers=auth("t-qp")
        )
        assert copied.status_code == 200, copied.text
        assert await harness.reports.store.all_corrections() == []

    @pytest.mark.slow
    async def test_training_reads_the_corrections(
        self, reports: Start, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        harness = await reports()
        case_id = await opened_case(harness, "Có trộm ở xã Quang Phú")
        changed = await harness.http.patch(
            f"/cases/{case_id}", json={"category": "robbery"}, headers=auth("t-qp")
        )
        assert changed.status_code == 200, changed.text
        model = tmp_path / "triage-model.json"
        args = [
            *("--corpus", str(write_corpus(tmp_path / "corpus"))),
            *("--model", str(model)),
            *("--mongodb-url", harness.settings.mongodb_url),
            *("--mongodb-database", harness.settings.mongodb_database),
        ]
        assert await asyncio.to_thread(main, args) == 0
        assert "corrections: 1" in capsys.readouterr().out
        assert TriageModel.load(model).manifest["examples"]["corrections"] == 1
