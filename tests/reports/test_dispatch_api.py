"""What the console's dispatcher pages ask of reports. Merging a duplicate (`POST
/cases/{id}/transitions` with `to: duplicate, merged_into`): the caller must work both cases'
wards, the original must be open, and the original's history tells of the merge. The queue
(`GET /cases?open=true`): the open cases only. Real NATS and MongoDB-wire server."""

from collections.abc import Awaitable, Callable

import pytest

from services.reports.store import page_total
from tests.reports.builders import CITIZEN, NEIGHBOUR, auth, message
from tests.reports.conftest import Harness

pytestmark = pytest.mark.integration
Start = Callable[..., Awaitable[Harness]]


async def _case(harness: Harness, user: str, text: str) -> str:
    event = message(user, text)
    await harness.publish(event)
    case_id: str = (await harness.processed(event.event_id))["case_id"]
    return case_id


async def test_merging_needs_both_wards_and_an_open_original(reports: Start) -> None:
    harness = await reports()
    here = await _case(harness, CITIZEN, "Có trộm xe đạp ở xã Quang Phú")
    there = await _case(harness, NEIGHBOUR, "Có trộm xe đạp ở phường Bắc Lý")
    url = f"/cases/{here}/transitions"
    into_other_ward = {"to": "duplicate", "merged_into": there}

    for token in ("t-qp", "t-bl"):  # each holds one of the two wards only
        refused = await harness.http.post(url, json=into_other_ward, headers=auth(token))
        assert refused.status_code == 403, (token, refused.text)
        assert refused.json()["error"] == "forbidden"
    unchanged = (await harness.http.get(f"/cases/{here}", headers=auth("t-qp"))).json()
    assert (unchanged["status"], unchanged["merged_into"]) == ("new", None)

    missing = await harness.http.post(
        url, json={"to": "duplicate", "merged_into": "c-none"}, headers=auth("t-qp")
    )
    assert missing.status_code == 404

    closed = await _case(harness, CITIZEN + "1", "Lại có trộm xe đạp ở xã Quang Phú, chợ")
    done = await harness.http.post(
        f"/cases/{closed}/transitions", json={"to": "rejected"}, headers=auth("t-qp")
    )
    assert done.status_code == 200, done.text
    into_closed = await harness.http.post(
        url, json={"to": "duplicate", "merged_into": closed}, headers=auth("t-qp")
    )
    assert into_closed.status_code == 409
    assert "đã đóng" in into_closed.json()["detail"]

    merged = await harness.http.post(url, json=into_other_ward, headers=auth("t-admin"))
    assert merged.status_code == 200, merged.text
    assert (merged.json()["status"], merged.json()["merged_into"]) == ("duplicate", there)
    original = (await harness.http.get(f"/cases/{there}", headers=auth("t-bl"))).json()
    assert [h["detail"] for h in original["history"] if h["change"] == "merged_from"] == [
        merged.json()["ref"]
    ]


async def test_the_queue_asks_for_open_cases_only(reports: Start) -> None:
    harness = await reports()
    kept = await _case(harness, CITIZEN, "Có trộm xe đạp ở xã Quang Phú")
    working = await _case(harness, NEIGHBOUR, "Mất trộm gà ở xã Quang Phú")
    closed = await _case(harness, CITIZEN + "1", "Có người đánh bạc ở xã Quang Phú")
    for case_id, target in ((working, "verifying"), (closed, "rejected")):
        moved = await harness.http.post(
            f"/cases/{case_id}/transitions", json={"to": target}, headers=auth("t-qp")
        )
        assert moved.status_code == 200, moved.text

    async def listed(query: str) -> set[str]:
        page = (await harness.http.get(f"/cases?{query}", headers=auth("t-qp"))).json()
        assert page["total"] == len(page["items"])
        return {case["_id"] for case in page["items"]}

    assert await listed("open=true") == {kept, working}
    assert await listed("") == {kept, working, closed}
    assert await listed("open=true&status=rejected") == {closed}  # a named status wins


@pytest.mark.parametrize(
    ("offset", "found", "more", "total"),
    [
        (0, 3, False, 3),  # one page: all of them
        (0, 0, False, 0),
        (100, 10, False, 110),  # the last page
        (0, 50, True, None),  # more after this page: count
        (100, 0, False, None),  # past the end: how far is unknown, count
    ],
)
def test_a_last_page_tells_the_total(
    offset: int, found: int, more: bool, total: int | None
) -> None:
    assert page_total(offset, found, more) == total


async def test_a_full_last_page_and_a_page_with_more_after_it(reports: Start) -> None:
    harness = await reports()
    for n, user in enumerate((CITIZEN, NEIGHBOUR, CITIZEN + "1")):
        await _case(harness, user, f"Có trộm xe đạp số {n} ở xã Quang Phú")
    for query, count, total in (("limit=3", 3, 3), ("limit=2", 2, 3), ("limit=2&offset=2", 1, 3)):
        page = (await harness.http.get(f"/cases?{query}", headers=auth("t-qp"))).json()
        assert (len(page["items"]), page["total"]) == (count, total), query
