"""Answers Zalo might really give that the fake does not: odd shapes, non-JSON, no envelope."""

from collections.abc import Callable

import httpx
import pytest

from shared.settings import ZaloSettings
from shared.zalo.client import ZaloClient
from shared.zalo.errors import UnexpectedZaloError, ZaloHttpError

Handler = Callable[[httpx.Request], httpx.Response]


async def call_getoa(handler: Handler) -> None:
    settings = ZaloSettings(zalo_api_base="http://zalo.test", zalo_retry_attempts=1)
    http = httpx.AsyncClient(transport=httpx.MockTransport(handler))
    async with http, ZaloClient(settings, http=http) as zalo:
        await zalo.get_oa_info()


async def test_missing_field_is_an_unexpected_zalo_error() -> None:
    answer = {"error": 0, "message": "Success", "data": {"oaid": "1", "name": "OA"}}
    with pytest.raises(UnexpectedZaloError, match="OaInfo"):
        await call_getoa(lambda _request: httpx.Response(200, json=answer))


async def test_non_json_answer_is_an_http_error() -> None:
    with pytest.raises(ZaloHttpError) as caught:
        await call_getoa(lambda _request: httpx.Response(200, text="<html>maintenance</html>"))
    assert caught.value.retryable is False


async def test_sends_the_bare_access_token_header() -> None:
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        data = {"oaid": 1, "name": "OA", "num_follower": 5}
        return httpx.Response(200, json={"error": 0, "message": "Success", "data": data})

    await call_getoa(handler)
    assert seen[0].headers["access_token"] == "fake-initial-access-token"
    assert "authorization" not in seen[0].headers
