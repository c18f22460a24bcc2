"""Residents checking verification codes; officers confirming manual posts; escalation."""

import pytest

from shared.verification import new_verification_code
from tests.broadcast.builders import (
    EDITOR,
    add_groups,
    notice_body,
    progress,
    publish_zalo_event,
    wait_settled,
)
from tests.polling import eventually

pytestmark = pytest.mark.integration
RESIDENT = "246845883529197920"
OFFICER_ID = "246845883529197921"
SUPERVISOR = "246845883529197922"


def cs_texts(h, user_id: str) -> list[str]:
    return [m.get("text", "") for m in h.fake.admin.messages("cs") if m["user_id"] == user_id]


class TestVerificationCode:
    async def test_genuine_and_forged_codes(self, broadcast) -> None:
        h = await broadcast()
        await add_groups(h, 1)
        created = (await h.http.post("/notices", json=notice_body(), headers=EDITOR)).json()
        await wait_settled(h, created["id"], 1)
        code = created["verification_code"]
        js = h.service.js
        loose = code.lower().replace("-", " ")
        await publish_zalo_event(js, "user_message", "user_send_text", user_id=RESIDENT, text=loose)
        forged = new_verification_code("CA")
        await publish_zalo_event(
            js, "user_message", "user_send_text", user_id=RESIDENT, text=f"Mã {forged} đúng không?"
        )

        async def both_answered() -> list[str] | None:
            texts = cs_texts(h, RESIDENT)
            return texts if len(texts) == 2 else None

        answers = await eventually(both_answered)
        genuine = next(t for t in answers if code in t)
        fake = next(t for t in answers if forged in t)
        assert "THẬT" in genuine
        assert "Cảnh báo lừa đảo qua mạng" in genuine
        assert "KHÔNG do Công an" in fake

    async def test_ordinary_message_is_not_answered(self, broadcast) -> None:
        h = await broadcast()
        await publish_zalo_event(
            h.service.js, "user_message", "user_send_text", user_id=RESIDENT, text="Xin chào"
        )
        marker = new_verification_code("CA")
        await publish_zalo_event(
            h.service.js, "user_message", "user_send_text", user_id=RESIDENT, text=marker
        )
        await eventually(lambda: _async(len(cs_texts(h, RESIDENT)) == 1))
        assert marker in cs_texts(h, RESIDENT)[0]


async def _async(value: bool) -> bool:
    return value


class TestManualGroups:
    async def test_confirmation_reminder_and_escalation(self, broadcast) -> None:
        h = await broadcast(
            manual_reminder_after=0.5,
            manual_escalate_after=1.5,
            escalation_user_ids=[SUPERVISOR],
        )
        manual = await add_groups(
            h, 2, prefix="6", channel="manual", officer_id=OFFICER_ID, officer_name="Đại úy Hùng"
        )
        automatic = await add_groups(h, 1)
        created = (await h.http.post("/notices", json=notice_body(), headers=EDITOR)).json()
        code = created["verification_code"]

        async def awaiting() -> bool:
            counts = (await progress(h, created["id"]))["progress"]["counts"]
            return counts == {"sent": 1, "awaiting_confirmation": 2}

        await eventually(awaiting)
        assert [m["group_id"] for m in h.fake.admin.messages("group")] == automatic
        first = cs_texts(h, OFFICER_ID)
        assert len(first) == 2  # one text per manual group
        assert all(code in t and "đã đăng" in t for t in first)

        async def reminded_and_escalated() -> bool:
            officer = [t for t in cs_texts(h, OFFICER_ID) if t.startswith("NHẮC LẠI")]
            return len(officer) == 2 and len(cs_texts(h, SUPERVISOR)) == 2

        await eventually(reminded_and_escalated, timeout=15)
        assert "Đại úy Hùng" in cs_texts(h, SUPERVISOR)[0]

        await publish_zalo_event(
            h.service.js, "user_message", "user_send_text", user_id=OFFICER_ID, text="da dang"
        )
        counts = await wait_settled(h, created["id"], 3)
        assert counts == {"sent": 3}
        assert cs_texts(h, OFFICER_ID)[-1].startswith("Đã ghi nhận: 2 nhóm")
        assert len(manual) == 2
