"""Followers: a notice is published as an OA article and that article is broadcast with the
notice's targeting (Zalo's broadcast API sends only articles)."""

import pytest

from tests.broadcast.builders import (
    APPROVER,
    EDITOR,
    add_groups,
    group_texts,
    notice_body,
    wait_settled,
)

pytestmark = pytest.mark.integration


class TestFollowers:
    async def test_article_broadcast_with_targeting_once_despite_a_retry(self, broadcast) -> None:
        h = await broadcast()
        ids = await add_groups(h, 2, ward="bac-nghia")
        # The broadcast call fails once (HTTP 503: Zalo did not act); the retry must broadcast
        # the article already created instead of publishing a second one.
        h.fake.admin.inject_http_status(503, count=1, path_prefix="/v2.0/oa/message")
        targeting = {"ages": [3, 4], "gender": 2, "cities": [4]}
        body = notice_body(
            targets={"wards": ["bac-nghia"], "followers": True, "follower_targeting": targeting}
        )
        response = await h.http.post("/notices", json=body, headers=EDITOR)
        assert response.status_code == 201, response.text
        notice = response.json()
        # followers live in every ward: the two-person rule applies
        assert notice["status"] == "pending_approval"
        approved = await h.http.post(f"/notices/{notice['id']}/approve", headers=APPROVER)
        assert approved.status_code == 200, approved.text
        counts = await wait_settled(h, notice["id"], 3)
        assert counts == {"sent": 3}

        created = [c for c in h.fake.admin.calls("/v2.0/article/create") if not c.get("error")]
        assert len(created) == 1
        broadcasts = h.fake.admin.messages("broadcast")
        assert len(broadcasts) == 1
        assert broadcasts[0]["target"] == {"ages": [3, 4], "gender": [2], "cities": [4]}
        code = notice["verification_code"]
        assert sorted(g for g, text in group_texts(h) if code in text) == sorted(ids)

    async def test_test_mode_never_reaches_followers(self, broadcast) -> None:
        h = await broadcast()
        ids = await add_groups(h, 1, ward="bac-nghia", is_test="1")
        body = notice_body(targets={"wards": ["bac-nghia"], "followers": True}, test_mode=True)
        notice = (await h.http.post("/notices", json=body, headers=EDITOR)).json()
        assert await wait_settled(h, notice["id"], 1) == {"sent": 1}
        assert h.fake.admin.messages("broadcast") == []
        assert [g for g, _ in group_texts(h)] == ids
