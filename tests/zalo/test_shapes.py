"""Answers Zalo might really give that the fake does not: odd shapes, non-JSON, no envelope.

Each test serves its canned answer from a throwaway aiohttp server on 127.0.0.1.
"""

import os
from collections.abc import Awaitable, Callable

import aiohttp
import pytest
from aiohttp import test_utils, web

from shared.settings import ZaloSettings
from shared.zalo.client import ZaloClient, env_proxy, transport_error
from shared.zalo.errors import UnexpectedZaloError, ZaloHttpError

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def call_getoa(handler: Handler) -> None:
    app = web.Application()
    app.router.add_get("/v2.0/oa/getoa", handler)
    async with test_utils.TestServer(app, host="127.0.0.1") as server:
        base = str(server.make_url("")).rstrip("/")
        settings = ZaloSettings(zalo_api_base=base, zalo_retry_attempts=1)
        async with ZaloClient(settings) as zalo:
            await zalo.get_oa_info()


def answer(body: object) -> Handler:
    async def handler(_request: web.Request) -> web.StreamResponse:
        if isinstance(body, str):
            return web.Response(text=body, content_type="text/html")
        return web.json_response(body)

    return handler


async def test_missing_field_is_an_unexpected_zalo_error() -> None:
    body = {"error": 0, "message": "Success", "data": {"oaid": "1", "name": "OA"}}
    with pytest.raises(UnexpectedZaloError, match="OaInfo"):
        await call_getoa(answer(body))


async def test_non_json_answer_is_an_http_error() -> None:
    with pytest.raises(ZaloHttpError) as caught:
        await call_getoa(answer("<html>maintenance</html>"))
    assert caught.value.retryable is False


async def test_sends_the_bare_access_token_header() -> None:
    seen: list[web.Request] = []

    async def handler(request: web.Request) -> web.StreamResponse:
        seen.append(request)
        data = {"oaid": 1, "name": "OA", "num_follower": 5}
        return web.json_response({"error": 0, "message": "Success", "data": data})

    await call_getoa(handler)
    assert seen[0].headers["access_token"] == "fake-initial-access-token"
    assert "authorization" not in seen[0].headers


def test_proxy_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.lower().endswith("_proxy"):
            monkeypatch.delenv(name)
    assert env_proxy("https://openapi.zalo.me/v3.0/oa/group/message") is None
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.internal:3128")
    monkeypatch.setenv("NO_PROXY", "oauth.zaloapp.com")
    assert (
        env_proxy("https://openapi.zalo.me/v3.0/oa/group/message") == "http://proxy.internal:3128"
    )
    assert env_proxy("https://oauth.zaloapp.com/v4/oa/access_token") is None
    assert env_proxy("http://127.0.0.1:8090/v2.0/oa/getoa") is None  # no HTTP_PROXY


@pytest.mark.parametrize(
    ("failure", "maybe_delivered"),
    [
        (aiohttp.ConnectionTimeoutError("pool wait or connect"), False),
        (aiohttp.SocketTimeoutError("read"), True),
        (aiohttp.ServerDisconnectedError(), True),
        (aiohttp.ClientOSError(104, "reset"), True),
        (TimeoutError(), True),
    ],
)
def test_transport_failures_say_whether_the_request_left(
    failure: BaseException, maybe_delivered: bool
) -> None:
    error = transport_error(failure)
    assert (error.code, error.retryable, error.maybe_delivered) == (0, True, maybe_delivered)
