"""The fake answers malformed and refused requests exactly as reference §5-§9 documents."""

import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from tests.fixtures.fake_zalo import FakeZalo

TOKEN = "fake-initial-access-token"
USER = "246845883529197920"
GROUP = "500000000000000000"
ARTICLE = "800000000000000001"


@pytest.fixture
async def http(fake_zalo: FakeZalo) -> AsyncIterator[httpx.AsyncClient]:
    headers = {"access_token": TOKEN}
    async with httpx.AsyncClient(base_url=fake_zalo.base_url, headers=headers) as client:
        yield client


async def post(http: httpx.AsyncClient, path: str, body: Any) -> dict[str, Any]:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    response = await http.post(path, content=raw, headers={"Content-Type": "application/json"})
    assert response.status_code == 200
    result: dict[str, Any] = response.json()
    return result


def cs(user_id: Any = USER, **message: Any) -> dict[str, Any]:
    return {"recipient": {"user_id": user_id}, "message": message or {"text": "Xin chào"}}


def image(**element: Any) -> dict[str, Any]:
    payload = {"template_type": "media", "elements": [{"media_type": "image", **element}]}
    return {"attachment": {"type": "template", "payload": payload}}


def refused(code: int, message: str | None = None) -> dict[str, Any]:
    return {"error": code, "message": message} if message else {"error": code}


def subset(answer: dict[str, Any], expected: dict[str, Any]) -> bool:
    return {key: answer.get(key) for key in expected} == expected


class TestAccessToken:
    async def test_missing_header(self, fake_zalo: FakeZalo) -> None:
        async with httpx.AsyncClient(base_url=fake_zalo.base_url) as bare:
            answer = (await bare.get("/v2.0/oa/getoa")).json()
        assert answer == {"error": -216, "message": "Access token is invalid"}

    async def test_bearer_authorization_is_not_accepted(self, fake_zalo: FakeZalo) -> None:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=fake_zalo.base_url, headers=headers) as bearer:
            assert (await bearer.get("/v2.0/oa/getoa")).json()["error"] == -216

    async def test_expired_token(self, http: httpx.AsyncClient, fake_zalo: FakeZalo) -> None:
        fake_zalo.admin.advance_clock(90001)
        answer = (await http.get("/v2.0/oa/getoa")).json()
        assert answer == {"error": -220, "message": "access_token is expired or removed"}


class TestConsultationMessage:
    @pytest.mark.parametrize(
        ("body", "message"),
        [
            (b"{not json", "body is invalid!"),
            (b"[]", "body is invalid!"),
            ({"message": {"text": "x"}}, "recipient is invalid!"),
            (cs(user_id="abc"), "user_id is invalid!"),
            ({"recipient": {"user_id": USER}}, "message is invalid!"),
            (cs(text=""), "text is invalid!"),
            (cs(text="a" * 2001), "text is invalid!"),
            (cs(text=42), "text is invalid!"),
            (cs(**image()), "url is invalid!"),
            (cs(**image(url="https://e.org/a.png", attachment_id="x")), "url is invalid!"),
            (cs(**image(attachment_id="never-uploaded")), "attachment_id is invalid!"),
        ],
    )
    async def test_malformed_is_201(self, http: httpx.AsyncClient, body: Any, message: str) -> None:
        assert await post(http, "/v3.0/oa/message/cs", body) == refused(-201, message)

    async def test_unknown_attachment_type_is_233(self, http: httpx.AsyncClient) -> None:
        body = cs(attachment={"type": "carousel", "payload": {}})
        assert (await post(http, "/v3.0/oa/message/cs", body))["error"] == -233

    async def test_unknown_and_unfollowed_users_are_213(
        self, http: httpx.AsyncClient, fake_zalo: FakeZalo
    ) -> None:
        gone = fake_zalo.admin.add_user(is_follower=False)
        for user in ("123456789", gone):
            answer = await post(http, "/v3.0/oa/message/cs", cs(user))
            assert answer == refused(-213, "User has not followed OA")

    @pytest.mark.parametrize(("days", "code"), [(8, -230), (46, -227)])
    async def test_stale_interaction(
        self, http: httpx.AsyncClient, fake_zalo: FakeZalo, days: int, code: int
    ) -> None:
        user = fake_zalo.admin.add_user(last_interaction_ago=days * 86400)
        assert (await post(http, "/v3.0/oa/message/cs", cs(user)))["error"] == code

    async def test_quota_moves_from_free_replies_to_paid(
        self, http: httpx.AsyncClient, fake_zalo: FakeZalo
    ) -> None:
        quotas = [(await post(http, "/v3.0/oa/message/cs", cs()))["data"]["quota"]
                  for _ in range(9)]  # fmt: skip
        assert [q["remain"] for q in quotas[:8]] == [7, 6, 5, 4, 3, 2, 1, 0]
        assert {q["quota_type"] for q in quotas[:8]} == {"reply"}
        assert quotas[8]["quota_type"] == "purchase_quota"
        fake_zalo.admin.advance_clock(49 * 3600)
        fake_zalo.admin.issue_tokens(access_token=TOKEN)
        late = await post(http, "/v3.0/oa/message/cs", cs())
        assert late["data"]["quota"]["quota_type"] == "purchase_quota"

    async def test_success_envelope(self, http: httpx.AsyncClient, fake_zalo: FakeZalo) -> None:
        answer = await post(http, "/v3.0/oa/message/cs", cs(text="Đã nhận tin báo"))
        assert subset(answer, {"error": 0, "message": "Success"})
        assert answer["data"]["user_id"] == USER
        assert answer["data"]["message_id"].isdigit()
        assert fake_zalo.admin.messages("cs")[0]["text"] == "Đã nhận tin báo"


class TestBroadcastAndTemplates:
    def broadcast(self, target: dict[str, Any], article: str = ARTICLE) -> dict[str, Any]:
        element = {"media_type": "article", "attachment_id": article}
        payload = {"template_type": "media", "elements": [element]}
        message = {"attachment": {"type": "template", "payload": payload}}
        return {"recipient": {"target": target}, "message": message}

    async def test_plain_user_message_on_v2_is_240(self, http: httpx.AsyncClient) -> None:
        assert (await post(http, "/v2.0/oa/message", cs()))["error"] == -240

    @pytest.mark.parametrize(
        ("target", "article", "message"),
        [
            ({"ages": "9"}, ARTICLE, "ages is invalid!"),
            ({"gender": "x"}, ARTICLE, "gender is invalid!"),
            ({"colour": "1"}, ARTICLE, "colour is invalid!"),
            ({}, "123", "attachment_id is invalid!"),
        ],
    )
    async def test_bad_broadcast_is_201(
        self, http: httpx.AsyncClient, target: dict[str, Any], article: str, message: str
    ) -> None:
        answer = await post(http, "/v2.0/oa/message", self.broadcast(target, article))
        assert answer == refused(-201, message)

    async def test_broadcast_accepts_csv_and_list_targets(
        self, http: httpx.AsyncClient, fake_zalo: FakeZalo
    ) -> None:
        for target in ({"ages": "2,3", "locations": "1"}, {"ages": [2, 3], "locations": [1]}):
            answer = await post(http, "/v2.0/oa/message", self.broadcast(target))
            assert answer["error"] == 0
        assert [m["target"] for m in fake_zalo.admin.messages("broadcast")] == [
            {"ages": [2, 3], "locations": [1]}] * 2  # fmt: skip

    async def test_transaction_api_is_discontinued(self, http: httpx.AsyncClient) -> None:
        assert (await post(http, "/v3.0/oa/message/transaction", cs()))["error"] == -240


class TestSendsAnsweredByTheGate:
    """`message/cs` and `group/message` skip FastAPI: same checks, headers and records."""

    @pytest.mark.parametrize("path", ["/v3.0/oa/message/cs", "/v3.0/oa/group/message"])
    async def test_token_refusals_are_recorded(self, fake_zalo: FakeZalo, path: str) -> None:
        body = {"recipient": {"user_id": USER, "group_id": GROUP}, "message": {"text": "x"}}
        async with httpx.AsyncClient(base_url=fake_zalo.base_url) as bare:
            missing = (await bare.post(path, json=body)).json()
            fake_zalo.admin.advance_clock(90001)
            expired = (await bare.post(path, json=body, headers={"access_token": TOKEN})).json()
        assert missing == {"error": -216, "message": "Access token is invalid"}
        assert expired == {"error": -220, "message": "access_token is expired or removed"}
        assert [call.get("error") for call in fake_zalo.admin.calls(path)] == [-216, -220]
        assert fake_zalo.admin.messages() == []

    async def test_accepted_send_has_rate_headers_and_is_recorded(
        self, http: httpx.AsyncClient, fake_zalo: FakeZalo
    ) -> None:
        body = {"recipient": {"group_id": GROUP}, "message": {"text": "Cảnh báo lừa đảo"}}
        response = await http.post("/v3.0/oa/group/message", json=body)
        answer = response.json()
        assert response.headers["content-type"] == "application/json"
        assert response.headers["X-RateLimit-Limit"] == "4000"
        assert response.headers["X-RateLimit-Remain"] == "3999"
        [call] = fake_zalo.admin.calls("/v3.0/oa/group/message")
        assert call["method"] == "POST"
        assert "error" not in call
        [message] = fake_zalo.admin.messages("group")
        assert message["message_id"] == answer["data"]["message_id"]
        assert (message["group_id"], message["text"]) == (GROUP, "Cảnh báo lừa đảo")
        assert call["at"] <= message["sent_time"]

    async def test_quota_and_injected_failures_come_first(
        self, http: httpx.AsyncClient, fake_zalo: FakeZalo
    ) -> None:
        path = "/v3.0/oa/group/message"
        body = {"recipient": {"group_id": GROUP}, "message": {"text": "Cảnh báo"}}
        fake_zalo.admin.set_quota(per_minute=1)
        fake_zalo.admin.inject_error(-403, count=1, path_prefix=path)
        injected = (await http.post(path, json=body)).json()
        accepted = (await http.post(path, json=body)).json()
        over = await http.post(path, json=body)
        assert injected == {"error": -403, "message": "Injected failure"}
        assert accepted["error"] == 0
        assert over.json() == {"error": -32, "message": "Your application reached limit call api"}
        assert over.headers["X-RateLimit-Remain"] == "0"
        assert [call.get("error") for call in fake_zalo.admin.calls(path)] == [-403, None, -32]
        assert len(fake_zalo.admin.messages("group")) == 1


class TestGroups:
    async def test_unknown_group_is_403(self, http: httpx.AsyncClient) -> None:
        body = {"recipient": {"group_id": "123"}, "message": {"text": "x"}}
        answer = await post(http, "/v3.0/oa/group/message", body)
        assert answer == refused(-403, "OA is not in group")

    async def test_expired_group_is_237(self, http: httpx.AsyncClient, fake_zalo: FakeZalo) -> None:
        group = fake_zalo.admin.add_group(expired=True)
        body = {"recipient": {"group_id": group}, "message": {"text": "x"}}
        assert (await post(http, "/v3.0/oa/group/message", body))["error"] == -237

    async def test_member_list_paging_limit(self, http: httpx.AsyncClient) -> None:
        query = {"group_id": GROUP, "count": 51}
        answer = (await http.get("/v3.0/oa/group/listmember", params=query)).json()
        assert answer["error"] == -210


class TestReads:
    @pytest.mark.parametrize(
        ("params", "expected"),
        [
            ({}, refused(-201, "data is invalid!")),
            ({"data": "{oops"}, refused(-201, "data is invalid!")),
            ({"data": '{"offset":0,"count":"many"}'}, refused(-201, "count is invalid!")),
            ({"data": '{"offset":-1,"count":5}'}, refused(-201, "offset is invalid!")),
            ({"data": '{"offset":0,"count":51}'}, {"error": -210}),
        ],
    )
    async def test_follower_list_data_param(
        self, http: httpx.AsyncClient, params: dict[str, str], expected: dict[str, Any]
    ) -> None:
        answer = (await http.get("/v3.0/oa/user/getlist", params=params)).json()
        assert subset(answer, expected)

    async def test_user_detail_of_unknown_user_is_213(self, http: httpx.AsyncClient) -> None:
        params = {"data": '{"user_id":"42"}'}
        answer = (await http.get("/v3.0/oa/user/detail", params=params)).json()
        assert answer["error"] == -213

    async def test_article_slice_limit_over_10_is_201(self, http: httpx.AsyncClient) -> None:
        answer = (await http.get("/v2.0/article/getslice", params={"limit": 11})).json()
        assert answer == refused(-201, "limit is invalid!")

    async def test_getoa_has_num_follower_and_rate_headers(self, http: httpx.AsyncClient) -> None:
        response = await http.get("/v2.0/oa/getoa")
        assert response.json()["data"]["num_follower"] == 3
        assert response.headers["X-RateLimit-Limit"] == "4000"
        assert int(response.headers["X-RateLimit-Remain"]) < 4000

    async def test_article_create_requires_title_and_body(self, http: httpx.AsyncClient) -> None:
        base = {"type": "normal", "title": "T", "body": [{"type": "text", "content": "x"}]}
        assert (await post(http, "/v2.0/article/create", base))["error"] == 0
        no_title = await post(http, "/v2.0/article/create", base | {"title": ""})
        assert no_title == refused(-201, "title is invalid!")
        no_body = await post(http, "/v2.0/article/create", base | {"body": []})
        assert no_body == refused(-201, "body is invalid!")


class TestUploads:
    async def upload(self, http: httpx.AsyncClient, name: str, data: bytes, kind: str) -> Any:
        files = {"file": (name, data, kind)}
        return (await http.post("/v2.0/oa/upload/image", files=files)).json()

    async def test_uploaded_attachment_id_works_then_expires_after_7_days(
        self, http: httpx.AsyncClient, fake_zalo: FakeZalo
    ) -> None:
        answer = await self.upload(http, "a.png", b"\x89PNG" + b"0" * 100, "image/png")
        attachment_id = answer["data"]["attachment_id"]
        sent = await post(http, "/v3.0/oa/message/cs", cs(**image(attachment_id=attachment_id)))
        assert sent["error"] == 0
        fake_zalo.admin.advance_clock(8 * 86400)
        fake_zalo.admin.issue_tokens(access_token=TOKEN)
        fake_zalo.admin.interact(USER)
        expired = await post(http, "/v3.0/oa/message/cs", cs(**image(attachment_id=attachment_id)))
        assert expired["error"] == -100

    async def test_oversized_and_wrong_type_are_refused(self, http: httpx.AsyncClient) -> None:
        big = await self.upload(http, "a.png", b"0" * 1_000_001, "image/png")
        assert big["error"] == -210
        text = await self.upload(http, "a.txt", b"hello", "text/plain")
        assert text == refused(-201, "file is invalid!")
