"""Notice rules end to end on real NATS, FerretDB and the fake Zalo server."""

import asyncio
from collections import Counter
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from tests.broadcast.builders import (
    ADMIN,
    APPROVER,
    EDITOR,
    REGISTRAR,
    add_groups,
    group_row,
    group_texts,
    groups_csv,
    notice_body,
    progress,
    wait_settled,
)
from tests.polling import eventually

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


async def _one_group_per_ward(h) -> dict[str, str]:
    """ward -> the id of its one group (imported at once)."""
    from services.broadcast.groups import WARDS

    ids = {ward: f"9{n:02d}000001" for n, ward in enumerate(sorted(WARDS))}
    h.fake.admin.seed(groups=[{"group_id": g, "name": f"Tổ {g}"} for g in ids.values()])
    rows = [group_row(g, ward=w) for w, g in ids.items()]
    response = await h.http.post("/groups/import", content=groups_csv(rows), headers=REGISTRAR)
    assert response.status_code == 200, response.text
    return ids


class TestTwoPersonRuleWhateverTheSpelling:
    """Finding 1: decided from the planned roster, re-checked at send time."""

    async def test_every_group_by_id_and_fourteen_wards_plus_one_id_wait(self, broadcast) -> None:
        h = await broadcast()
        ids = await _one_group_per_ward(h)
        last = sorted(ids)[-1]
        spellings = [
            {"groups": sorted(ids.values())},
            {"wards": sorted(set(ids) - {last}), "groups": [ids[last]]},
        ]
        for targets in spellings:
            created = await h.http.post(
                "/notices", json=notice_body(targets=targets), headers=EDITOR
            )
            assert created.status_code == 201, created.text
            assert created.json()["status"] == "pending_approval", targets
        assert h.fake.admin.messages("group") == []

    async def test_registry_change_before_sending_holds_the_notice(self, broadcast) -> None:
        h = await broadcast()
        ids = await _one_group_per_ward(h)
        last = sorted(ids)[-1]
        # 14 wards plus a group id the registry does not know yet: no approval at creation
        body = notice_body(
            targets={"wards": sorted(set(ids) - {last}), "groups": ["988000001"]},
            scheduled_at=(datetime.now(UTC) + timedelta(seconds=2)).isoformat(),
        )
        created = (await h.http.post("/notices", json=body, headers=EDITOR)).json()
        assert created["status"] == "scheduled"
        # ... then that group is registered in the 15th ward (a new group: a registrar may)
        h.fake.admin.seed(groups=[{"group_id": "988000001", "name": "Tổ mới"}])
        csv = groups_csv([group_row("988000001", ward=last)])
        assert (
            await h.http.post("/groups/import", content=csv, headers=REGISTRAR)
        ).status_code == 200

        async def held() -> bool:
            notice = (await progress(h, created["id"]))["notice"]
            return bool(notice["status"] == "pending_approval")

        await eventually(held, timeout=20)
        assert h.fake.admin.messages("group") == []
        audit = await h.service.audit.find(notice_id=created["id"])
        assert [a.action for a in audit] == ["held_for_approval"]
        approved = await h.http.post(f"/notices/{created['id']}/approve", headers=APPROVER)
        assert approved.status_code == 200, approved.text
        assert await wait_settled(h, created["id"], 15) == {"sent": 15}  # 14 wards + 1

    async def test_moving_groups_between_wards_needs_an_admin_and_is_audited(
        self, broadcast
    ) -> None:
        h = await broadcast()
        ids = await _one_group_per_ward(h)
        everyone = groups_csv([group_row(g, ward="dong-hai") for g in ids.values()])
        refused = await h.http.post("/groups/import", content=everyone, headers=REGISTRAR)
        assert refused.status_code == 403, refused.text
        put = group_row(ids["bac-ly"], ward="dong-hai") | {"active": True}
        moved_by_put = await h.http.put(f"/groups/{ids['bac-ly']}", json=put, headers=REGISTRAR)
        assert moved_by_put.status_code == 403
        allowed = await h.http.post("/groups/import", content=everyone, headers=ADMIN)
        assert allowed.status_code == 200, allowed.text
        writes = await h.service.audit.find(action="registry_written")
        assert [w.actor for w in writes] == ["u-registrar", "u-admin"]
        assert len(writes[-1].details["moves"]) == 14
        assert {"group_id": ids["bac-ly"], "from_ward": "bac-ly", "to_ward": "dong-hai"} in (
            writes[-1].details["moves"]
        )
        # every group now sits in one ward: a notice to that ward reaches every group, but no
        # longer every ward, and only an admin could have done it (audited above)

    async def test_update_of_an_approved_notice_waits_and_cancel_is_audited(
        self, broadcast
    ) -> None:
        h = await broadcast()
        ids = await _one_group_per_ward(h)
        body = notice_body(targets={"all_groups": True})
        original = (await h.http.post("/notices", json=body, headers=EDITOR)).json()
        await h.http.post(f"/notices/{original['id']}/approve", headers=APPROVER)
        assert await wait_settled(h, original["id"], len(ids)) == {"sent": len(ids)}

        change = {"title": "Cập nhật", "body": "Nội dung mới hoàn toàn."}
        update = await h.http.post(f"/notices/{original['id']}/update", json=change, headers=EDITOR)
        assert update.status_code == 201, update.text
        assert update.json()["status"] == "pending_approval"
        assert update.json()["approved_by"] is None
        await asyncio.sleep(0.5)
        assert not [g for g, text in group_texts(h) if text.startswith("[CẬP NHẬT]")]

        cancel = await h.http.post(f"/notices/{original['id']}/cancel", headers=EDITOR)
        assert cancel.status_code == 200, cancel.text
        audit = await h.service.audit.find(notice_id=original["id"])
        assert [(a.action, a.actor) for a in audit] == [
            ("approved", "u-approver"),
            ("cancelled", "u-editor"),
        ]


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

        released = await h.service.notice_service.release_due(release + timedelta(seconds=1))
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
        await h.http.post("/groups/import", content=csv, headers=REGISTRAR)
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

        await eventually(some_sent)
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
