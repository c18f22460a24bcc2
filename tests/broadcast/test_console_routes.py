"""The staff routes the console's notice pages use, on real NATS, FerretDB and the fake Zalo:
an approver sends a held notice back with a reason; a draft is previewed without storing; a
ward officer confirms a forward into a personal group, as «đã đăng» through the OA would."""

import pytest

from tests.broadcast.builders import (
    APPROVER,
    EDITOR,
    OFFICER,
    add_groups,
    notice_body,
    progress,
)
from tests.polling import eventually

pytestmark = pytest.mark.integration
WARD_OFFICER = {"Authorization": "Bearer ward-officer-token"}


async def test_an_approver_sends_a_held_notice_back_with_a_reason(broadcast) -> None:
    h = await broadcast()
    await add_groups(h, 1)
    body = notice_body(targets={"all_groups": True})
    created = (await h.http.post("/notices", json=body, headers=EDITOR)).json()
    url = f"/notices/{created['id']}/return"

    assert (await h.http.post(url, json={"reason": "x"}, headers=APPROVER)).status_code == 422
    editor = await h.http.post(url, json={"reason": "Sai giờ"}, headers=EDITOR)
    assert editor.status_code == 403
    returned = await h.http.post(url, json={"reason": "Ghi rõ  giờ áp dụng"}, headers=APPROVER)
    assert returned.status_code == 200, returned.text
    notice = returned.json()
    assert (notice["status"], notice["returned_by"]) == ("returned", "u-approver")
    assert notice["return_reason"] == "Ghi rõ giờ áp dụng"
    approve = await h.http.post(f"/notices/{created['id']}/approve", headers=APPROVER)
    assert approve.status_code == 409  # a returned notice is never sent
    assert h.fake.admin.messages("group") == []


async def test_a_preview_is_the_group_text_and_stores_nothing(broadcast) -> None:
    h = await broadcast()
    shown = await h.http.post("/notices/preview", json=notice_body(), headers=EDITOR)
    assert shown.status_code == 200, shown.text
    assert shown.json()["group_text"].startswith("Cảnh báo lừa đảo qua mạng\nĐối tượng")
    assert (await h.http.get("/notices", headers=EDITOR)).json()["total"] == 0
    refused = await h.http.post("/notices/preview", json=notice_body(), headers=OFFICER)
    assert refused.status_code == 403


async def test_a_ward_officer_confirms_a_forward_into_a_personal_group(broadcast) -> None:
    h = await broadcast()
    await add_groups(h, 1, prefix="6", channel="manual", officer_id="246845883529197921")
    await add_groups(
        h, 1, ward="bac-ly", prefix="6", channel="manual", officer_id="246845883529197921"
    )
    body = notice_body(targets={"wards": ["dong-hai", "bac-ly"]})
    created = (await h.http.post("/notices", json=body, headers=EDITOR)).json()

    async def waiting() -> list[dict[str, object]]:
        rows: list[dict[str, object]] = (await h.http.get("/forwards", headers=WARD_OFFICER)).json()
        return rows

    rows = await eventually(waiting)
    assert [r["notice_id"] for r in rows] == [created["id"]]  # not bac-ly's group
    assert "Mã xác thực: " + created["verification_code"] in str(rows[0]["text"])
    assert (await h.http.get("/forwards", headers=OFFICER)).json() == []  # no wards: none
    other = await h.http.post(f"/forwards/{rows[0]['delivery_id']}/confirm", headers=OFFICER)
    assert other.status_code == 404

    done = await h.http.post(f"/forwards/{rows[0]['delivery_id']}/confirm", headers=WARD_OFFICER)
    assert done.json() == {"confirmed": 1}
    counts = (await progress(h, created["id"]))["progress"]["counts"]
    assert counts == {"sent": 1, "awaiting_confirmation": 1}
    assert await waiting() == []
    again = await h.http.post(f"/forwards/{rows[0]['delivery_id']}/confirm", headers=WARD_OFFICER)
    assert again.status_code == 404
