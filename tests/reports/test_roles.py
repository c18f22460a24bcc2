"""Finding 10 in reports (docs/security.md): leaders read cases of their wards with phone
numbers masked and no coordinates; the live queue is for those who work cases."""

import pytest

from shared.text import PHONE_MASK
from tests.reports.builders import auth, location, message
from tests.reports.conftest import Harness

pytestmark = pytest.mark.integration


async def _case(harness: Harness) -> str:
    text = message(text="Có trộm ở xã Quang Phú, gọi tôi 0912 345 678")
    await harness.publish(text)
    case_id = str((await harness.processed(text.event_id))["case_id"])
    place = location()  # 17.4689, 106.6223
    await harness.publish(place)
    await harness.processed(place.event_id)
    return case_id


async def test_leaders_read_masked_cases_workers_read_them_whole(reports) -> None:
    harness = await reports()
    case_id = await _case(harness)
    http = harness.http
    whole = (await http.get(f"/cases/{case_id}", headers=auth("t-qp"))).json()
    assert "0912 345 678" in whole["messages"][0]["text"]
    assert any(m["latitude"] for m in whole["messages"])

    for response in (
        await http.get(f"/cases/{case_id}", headers=auth("t-analyst")),
        await http.get("/cases", headers=auth("t-analyst")),
    ):
        assert response.status_code == 200, response.text
        text = response.text
        assert "0912" not in text
        assert PHONE_MASK in text
        assert '"latitude":null' in text.replace(" ", "")
        assert "17.4689" not in text

    stream = await http.get("/cases/stream", headers=auth("t-analyst"))
    assert stream.status_code == 403
