"""Failure injection and controls of the fake: error codes, HTTP failures, latency, quota, down."""

import time
from collections.abc import AsyncIterator

import httpx
import pytest

from tests.fixtures.fake_zalo import FakeZalo

HEADERS = {"access_token": "fake-initial-access-token"}


@pytest.fixture
async def http(fake_zalo: FakeZalo) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=fake_zalo.base_url, headers=HEADERS) as client:
        yield client


async def getoa(http: httpx.AsyncClient) -> httpx.Response:
    return await http.get("/v2.0/oa/getoa")


async def test_error_code_for_the_next_n_calls(
    http: httpx.AsyncClient, fake_zalo: FakeZalo
) -> None:
    fake_zalo.admin.inject_error(-234, count=2, message="Night")
    codes = [(await getoa(http)).json()["error"] for _ in range(3)]
    assert codes == [-234, -234, 0]


async def test_injection_only_hits_its_path(http: httpx.AsyncClient, fake_zalo: FakeZalo) -> None:
    fake_zalo.admin.inject_error(-32, count=1, path_prefix="/v3.0/oa/message")
    assert (await getoa(http)).json()["error"] == 0
    assert fake_zalo.admin.calls("/v2.0/oa/getoa")[0].get("error") is None


async def test_http_status_with_retry_after(http: httpx.AsyncClient, fake_zalo: FakeZalo) -> None:
    fake_zalo.admin.inject_http_status(429, retry_after=3)
    response = await getoa(http)
    assert (response.status_code, response.headers["Retry-After"]) == (429, "3")


async def test_latency(http: httpx.AsyncClient, fake_zalo: FakeZalo) -> None:
    fake_zalo.admin.set_latency(0.3)
    started = time.monotonic()
    await getoa(http)
    assert time.monotonic() - started >= 0.3


async def test_per_minute_quota_gives_32(http: httpx.AsyncClient, fake_zalo: FakeZalo) -> None:
    fake_zalo.admin.set_quota(per_minute=3)
    answers = [await getoa(http) for _ in range(4)]
    assert [a.json()["error"] for a in answers] == [0, 0, 0, -32]
    assert answers[3].json()["message"] == "Your application reached limit call api"
    assert [a.headers["X-RateLimit-Remain"] for a in answers] == ["2", "1", "0", "0"]
    fake_zalo.admin.advance_clock(61)
    fake_zalo.admin.issue_tokens(access_token=HEADERS["access_token"])
    assert (await getoa(http)).json()["error"] == 0


async def test_down_entirely(http: httpx.AsyncClient, fake_zalo: FakeZalo) -> None:
    fake_zalo.admin.set_down()
    assert (await getoa(http)).status_code == 503
    fake_zalo.admin.set_down(False)
    assert (await getoa(http)).status_code == 200


async def test_reset_forgets_everything(http: httpx.AsyncClient, fake_zalo: FakeZalo) -> None:
    fake_zalo.admin.inject_error(-32, count=5)
    fake_zalo.admin.add_user(display_name="Tạm")
    fake_zalo.admin.reset()
    assert (await getoa(http)).json()["data"]["num_follower"] == 3
    assert fake_zalo.admin.stats()["refresh_calls"] == 0
