"""`create_app(settings)`: the fake Zalo OA API, OAuth and admin endpoints in one FastAPI app.

Every OA API call passes the gate first, as on the real service: down -> latency -> injected
failure -> per-minute quota (-32) -> the endpoint (token check, validation). Answers carry
`X-RateLimit-Limit` / `X-RateLimit-Remain`; failures are HTTP 200 with a negative `error`.
"""

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse

from shared.health import health_router
from tools.fake_zalo import admin, api, oauth
from tools.fake_zalo.settings import FakeZaloSettings
from tools.fake_zalo.state import FakeApiError, FakeState, Injection

Handler = Callable[[Request], Awaitable[Response]]


def _envelope(code: int, message: str, call: dict[str, Any] | None) -> JSONResponse:
    if call is not None:
        call["error"] = code
    return JSONResponse({"error": code, "message": message})


def _injected(injection: Injection, call: dict[str, Any]) -> Response:
    if injection.http_status is None:
        return _envelope(injection.code or -1, injection.message, call)
    call["http_status"] = injection.http_status
    headers = {"Retry-After": str(int(injection.retry_after))} if injection.retry_after else None
    return PlainTextResponse(injection.message, injection.http_status, headers=headers)


async def _gate(state: FakeState, request: Request, call_next: Handler) -> Response:
    path = request.url.path
    call: dict[str, Any] = {"method": request.method, "path": path, "at": time.time()}
    state.calls.append(call)
    request.state.call = call
    if state.down:
        call["http_status"] = 503
        return PlainTextResponse("Service Unavailable", 503)
    if state.latency:
        await asyncio.sleep(state.latency)
    if injection := state.take_injection(path):
        return _injected(injection, call)
    if path.startswith("/v4"):
        return await call_next(request)
    try:
        remaining = state.take_quota()
    except FakeApiError as exc:
        response: Response = _envelope(exc.code, exc.message, call)
        remaining = 0
    else:
        response = await call_next(request)
    response.headers["X-RateLimit-Limit"] = str(state.quota_per_minute)
    response.headers["X-RateLimit-Remain"] = str(remaining)
    return response


def create_app(settings: FakeZaloSettings) -> FastAPI:
    """The fake Zalo server; its state lives in `app.state.fake` (a `FakeState`)."""
    app = FastAPI(title="Fake Zalo OA API", description="Imitates openapi.zalo.me for tests.")
    state = FakeState(settings)
    app.state.fake = state

    @app.middleware("http")
    async def zalo_gate(request: Request, call_next: Handler) -> Response:
        path = request.url.path
        if not path.startswith(("/v2.0/", "/v3.0/", "/v4/")):
            return await call_next(request)
        return await _gate(state, request, call_next)

    @app.exception_handler(FakeApiError)
    async def zalo_error(request: Request, exc: FakeApiError) -> JSONResponse:
        return _envelope(exc.code, exc.message, getattr(request.state, "call", None))

    app.include_router(api.router)
    app.include_router(oauth.router)
    app.include_router(admin.router)
    app.include_router(health_router({}))
    return app
