"""The console's door to the services, in process against a real HTTP upstream on loopback:
what it forwards, what it keeps (nothing), and how it refuses."""

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from services.console.app import create_app
from services.console.settings import ConsoleSettings
from tools.localstack.servers import free_port


def upstream_app() -> FastAPI:
    """A service as the console sees one: it reports what reached it and sets a cookie."""
    app = FastAPI()

    @app.api_route("/echo/{rest:path}", methods=["GET", "POST"])
    async def echo(rest: str, request: Request, response: Response) -> dict[str, Any]:
        response.set_cookie("binhyen_session", "s-" + request.headers.get("x-who", ""))
        response.headers["x-internal"] = "not for browsers"
        return {
            "path": request.scope["raw_path"].decode(),
            "query": request.url.query,
            "headers": dict(request.headers),
            "body": (await request.body()).decode(),
        }

    return app


@asynccontextmanager
async def serving(app: FastAPI, port: int) -> AsyncIterator[str]:
    # As shared.serve runs every service: uvicorn's own X-Forwarded-For handling off.
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, log_config=None, access_log=False, proxy_headers=False
    )
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    try:
        while not server.started:
            await asyncio.wait([task], timeout=0.05)
            assert not task.done(), "the server did not start"
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture
async def console() -> AsyncIterator[httpx.AsyncClient]:
    async with serving(upstream_app(), free_port()) as upstream:
        down = f"http://127.0.0.1:{free_port()}"  # nothing listens there
        settings = ConsoleSettings(reports_url=upstream, broadcast_url=down)
        async with (
            serving(create_app(settings), free_port()) as url,
            httpx.AsyncClient(base_url=url, timeout=10) as client,
        ):
            yield client


async def test_forwards_what_the_apis_need_and_nothing_else(console: httpx.AsyncClient) -> None:
    response = await console.post(
        "/api/reports/echo/c%2F1?ward=quang-phu&x=%C4%91",
        content=b'{"text": "\xc4\x91\xc3\xa3 nh\xe1\xba\xadn"}',
        headers={
            "content-type": "application/json",
            "cookie": "binhyen_session=abc",
            "x-csrf-token": "t0k",
            "x-who": "first",
            "x-forwarded-for": "203.0.113.9",
        },
    )
    assert response.status_code == 200
    seen = response.json()
    assert seen["path"] == "/echo/c%2F1"
    assert seen["query"] == "ward=quang-phu&x=%C4%91"
    assert seen["body"] == '{"text": "đã nhận"}'
    assert seen["headers"]["cookie"] == "binhyen_session=abc"
    assert seen["headers"]["x-csrf-token"] == "t0k"
    assert "x-who" not in seen["headers"]
    assert seen["headers"]["x-forwarded-for"] == "127.0.0.1"  # the caller, not what it wrote
    assert response.cookies.get("binhyen_session") == "s-"
    assert "x-internal" not in response.headers


async def test_keeps_no_cookie_from_one_caller_for_the_next(console: httpx.AsyncClient) -> None:
    await console.get("/api/reports/echo/sign-in", headers={"cookie": "binhyen_session=first"})
    console.cookies.clear()
    seen = (await console.get("/api/reports/echo/next")).json()
    assert "cookie" not in seen["headers"]


async def test_unknown_service_and_a_service_that_is_down(console: httpx.AsyncClient) -> None:
    unknown = await console.get("/api/mongodb/anything")
    assert unknown.status_code == 404
    assert unknown.json()["error"] == "not_found"
    down = await console.get("/api/broadcast/notices")
    assert down.status_code == 502
    assert down.json()["error"] == "upstream_unavailable"
    assert "thử lại" in down.json()["detail"]
