import asyncio
import io
from collections.abc import Awaitable, Callable

import pytest

from services.reports.watch import format_event, watch
from tests.reports.builders import message
from tests.reports.conftest import Harness

Start = Callable[..., Awaitable[Harness]]


class TestFormat:
    def test_new_tip_line(self) -> None:
        line = format_event(
            {
                "type": "tip.triaged",
                "occurred_at": "2026-11-29T04:00:00+00:00",
                "ref": "BY-ABCDEF",
                "ward": "quang-phu",
                "priority": "urgent",
                "category": "robbery",
                "tipster": "p-0123",
                "narrative": "Cướp  có dao\nở chợ",
            }
        )
        assert line.endswith("người báo p-0123: Cướp có dao ở chợ")
        assert "!!! MỚI BY-ABCDEF quang-phu urgent/robbery" in line

    def test_a_residents_escape_sequences_reach_the_terminal_as_text(self) -> None:
        """Finding 3: titles, clearing, colours, OSC 52 and C1 controls are stripped from every
        field; a number the stream carried unmasked is masked here too."""
        hostile = "\x1b]0;owned\x07\x1b[2J\x1b]52;c;ZWNobyBwd25lZA==\x07\x9b31m\rgọi 0912/345/678"
        lines = [
            format_event(
                {
                    "type": "tip.triaged",
                    "ref": "BY-1\x1b[8m",
                    "ward": "quang-phu",
                    "priority": "urgent",
                    "category": "robbery",
                    "tipster": "p-1",
                    "narrative": hostile,
                }
            ),
            format_event(
                {"type": "tip.updated", "ref": "BY-1", "change": "note_added", "detail": hostile}
            ),
        ]
        for line in lines:
            assert not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in line), repr(line)
        assert lines[0].endswith(": ]0;owned[2J]52;c;ZWNobyBwd25lZA==31m gọi [số điện thoại]")

    def test_update_and_escalation_lines(self) -> None:
        update = format_event(
            {
                "type": "tip.updated",
                "ref": "BY-1",
                "ward": "w",
                "change": "merged",
                "status": "duplicate",
            }
        )
        assert "gộp tin trùng" in update
        escalation = format_event(
            {"type": "tip.escalated", "ref": "BY-1", "ward": "w", "waited_seconds": 600}
        )
        assert "QUÁ HẠN" in escalation
        assert "10 phút" in escalation


@pytest.mark.integration
async def test_watcher_replays_the_ward_queue(reports: Start, unique: str) -> None:
    harness = await reports()
    tip = message(text="Có trộm chó ở xã Quang Phú")
    other = message("246845883529197000", text="Có trộm chó ở phường Bắc Lý")
    for event in (tip, other):
        await harness.publish(event)
        await harness.processed(event.event_id)
    out = io.StringIO()
    shown = await asyncio.wait_for(
        watch(
            harness.settings.nats_url,
            ["quang-phu"],
            harness.settings.tips_stream,
            out,
            durable=f"desk-{unique}",
            replay=True,
            limit=1,
        ),
        timeout=15,
    )
    assert shown == 1
    assert "quang-phu" in out.getvalue()
    assert "bac-ly" not in out.getvalue()
