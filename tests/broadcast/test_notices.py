"""Notice rules end to end on real NATS, FerretDB and the fake Zalo server."""

from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.broadcast.builders import (
    APPROVER,
    EDITOR,
    add_groups,
    group_row,
    group_texts,
    groups_csv,
    notice_body,
    progress,
    wait_for,
    wait_settled,
)

pytestmark = pytest.mark.integration
EDITOR2 = {"Authorization": "Bearer editor-token-2"}


class TestApproval:
    async def test_all_ward_notice_waits_for_a_second_person(self, broadcast) -> None:
        h = await broadcast()
        groups = await add_groups(h, 2) + await add_groups(h, 1, ward="bac-ly")
        body = notice_body(targets={"all_groups": True})
        created = (await h.http.post("/notices", json=body, headers=APPROVER)).json()
        assert created["status"] == "pending_approval"

        own = await h.http.post(f"/notices/{created['id']}/approve", headers=APPROVER)
        assert own.status_code == 403
        assert "người thứ hai" in own.json()["detail"]
        editor = await h.http.post(f"/notices/{created['id']}/approve", headers=EDITOR)
        assert editor.status_code == 403
        assert h.fake.admin.messages("group") == []

        # a second approver (the test directory has one approver: make the editor the creator)
        body2 = notice_body(targets={"wards": sorted(_all_wards())})
        second = (await h.http.post("/notices", json=body2, headers=EDITOR)).json()
        assert second["status"] == "pending_approval"
        approved = await h.http.post(f"/notices/{second['id']}/approve", headers=APPROVER)
        assert approved.status_code == 200, approved.text
        assert approved.json()["approved_by"] == "u-approver"
        await wait_settled(h, second["id"], 3)
        assert sorted(g for g, _ in group_texts(h)) == sorted(groups)
        again = await h.http.post(f"/notices/{second['id']}/approve", headers=APPROVER)
        assert again.status_code == 409

    async def test_ward_notice_goes_out_at_once(self, broadcast) -> None:
        h = await broadcast()
        await add_groups(h, 2)
        created = (await h.http.post("/notices", json=notice_body(), headers=EDITOR)).json()
        assert created["status"] == "ready"
        assert await wait_settled(h, created["id"], 2) == {"sent": 2}


def _all_wards() -> set[str]:
    from services.broadcast.groups import WARD_SLUGS

    return set(WARD_SLUGS)


class TestQuietHours:
    async def test_non_urgent_held_until_the_end_urgent_not(self, broadcast) -> None:
        vn = datetime.now(ZoneInfo("Asia/Ho_Chi_Minh"))
        start = (vn - timedelta(hours=1)).strftime("%H:%M")
        end = (vn + timedelta(hours=1)).strftime("%H:%M")
        h = await broadcast(quiet_hours_enabled=True, quiet_hours_start=start, quiet_hours_end=end)
        await add_groups(h, 1)
        held = (await h.http.post("/notices", json=notice_body(), headers=EDITOR)).json()
        assert held["status"] == "scheduled"
        release = datetime.fromisoformat(held["release_at"])
        assert timedelta(minutes=50) < release - datetime.now(UTC) <= timedelta(hours=1)

        urgent = notice_body(urgency="Immediate", title="Khẩn: truy tìm đối tượng")
        sent = (await h.http.post("/notices", json=urgent, headers=EDITOR)).json()
        assert sent["status"] == "ready"
        await wait_settled(h, sent["id"], 1)
        assert (await progress(h, held["id"]))["progress"]["counts"] == {}

        released = await h.runtime.service.release_due(release + timedelta(seconds=1))
        assert released == 1
        await wait_settled(h, held["id"], 1)
        assert len(group_texts(h)) == 2


class TestIdempotency:
    async def test_same_key_creates_one_notice(self, broadcast) -> None:
        h = await broadcast()
        await add_groups(h, 2)
        key = {"Idempotency-Key": "bao-dong-2026-11-29-001"}
        first = await h.http.post("/notices", json=notice_body(), headers=EDITOR | key)
        second = await h.http.post("/notices", json=notice_body(), headers=EDITOR | key)
        assert (first.status_code, second.status_code) == (201, 200)
        assert first.json()["id"] == second.json()["id"]
        await wait_settled(h, first.json()["id"], 2)
        listed = (await h.http.get("/notices", headers=EDITOR)).json()
        assert listed["total"] == 1
        assert len(group_texts(h)) == 2


class TestUpdateAndCancel:
    async def test_update_reaches_exactly_the_original_targets(self, broadcast) -> None:
        h = await broadcast()
        reached = await add_groups(h, 3)
        h.fake.admin.seed(groups=[{"group_id": "799000001", "expired": True}])
        csv = groups_csv([group_row("799000001")])
        await h.http.post("/groups/import", content=csv, headers=EDITOR)
        original = (await h.http.post("/notices", json=notice_body(), headers=EDITOR)).json()
        assert await wait_settled(h, original["id"], 4) == {"sent": 3, "failed": 1}
        late = await add_groups(h, 2, prefix="8")  # joined the ward after the original

        change = {"title": "Cập nhật: thủ đoạn mới", "body": "Đối tượng nay gọi qua Zalo video."}
        update = await h.http.post(f"/notices/{original['id']}/update", json=change, headers=EDITOR)
        assert update.status_code == 201, update.text
        assert update.json()["msg_type"] == "Update"
        await wait_settled(h, update.json()["id"], 3)
        updated = [g for g, text in group_texts(h) if text.startswith("[CẬP NHẬT]")]
        assert sorted(updated) == sorted(reached)
        assert not set(updated) & set(late)

    async def test_cancel_mid_flight(self, broadcast) -> None:
        h = await broadcast(sender_concurrency=2, sender_batch=4)
        # Enough slow sends that the cancel always lands mid-flight, even on a fast run.
        groups = await add_groups(h, 60)
        h.fake.admin.set_latency(0.1)
        original = (await h.http.post("/notices", json=notice_body(), headers=EDITOR)).json()

        async def some_sent() -> bool:
            return len(group_texts(h)) >= 4

        await wait_for(some_sent)
        cancel = await h.http.post(f"/notices/{original['id']}/cancel", headers=EDITOR)
        assert cancel.status_code == 200, cancel.text
        withdrawal = cancel.json()["withdrawal"]
        counts = await wait_settled(h, original["id"], 60)
        assert counts.get("cancelled", 0) > 0
        assert counts["sent"] + counts["cancelled"] == 60
        await wait_settled(h, withdrawal["id"], counts["sent"])
        texts = group_texts(h)
        got_original = Counter(g for g, t in texts if not t.startswith("[THU HỒI]"))
        told = sorted(g for g, t in texts if t.startswith("[THU HỒI]"))
        assert max(got_original.values()) == 1
        assert told == sorted(got_original)
        assert set(got_original) < set(groups)
        view = await progress(h, original["id"])
        assert view["notice"]["status"] == "cancelled"


class TestTestMode:
    async def test_only_test_groups_receive(self, broadcast) -> None:
        h = await broadcast()
        await add_groups(h, 2)
        test_groups = await add_groups(h, 1, prefix="9", is_test="1")
        body = notice_body(test_mode=True)
        created = (await h.http.post("/notices", json=body, headers=EDITOR)).json()
        await wait_settled(h, created["id"], 1)
        assert [g for g, _ in group_texts(h)] == test_groups
