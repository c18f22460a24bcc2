"""`create_app(settings)`: the fake Zalo OA API, OAuth and admin endpoints in one FastAPI app.

Every OA API call passes the gate first (`tools.fake_zalo.gate`), as on the real service:
down -> latency -> injected failure -> per-minute quota (-32) -> the endpoint (token check,
validation). Answers carry `X-RateLimit-Limit` / `X-RateLimit-Remain`; failures are HTTP 200
with a negative `error`.
"""

from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from shared.health import health_router
from tools.fake_zalo import admin, api, oauth
from tools.fake_zalo.gate import ZaloGate, envelope
from tools.fake_zalo.settings import FakeZaloSettings
from tools.fake_zalo.state import FakeApiError, FakeState


class FakeZaloApp(FastAPI):
    """FastAPI behind the gate: a call meets the gate before any of FastAPI's own machinery."""

    def __init__(self, state: FakeState, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.state.fake = state
        self.gate = ZaloGate(super().__call__, state, api.FAST_ROUTES)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self.gate(scope, receive, send)


def create_app(settings: FakeZaloSettings) -> FastAPI:
    """The fake Zalo server; its state lives in `app.state.fake` (a `FakeState`)."""
    state = FakeState(settings)
    app = FakeZaloApp(
        state, title="Fake Zalo OA API", description="Imitates openapi.zalo.me for tests."
    )

    @app.exception_handler(FakeApiError)
    async def zalo_error(request: Request, exc: FakeApiError) -> JSONResponse:
        call: dict[str, Any] | None = getattr(request.state, "call", None)
        if call is not None:
            call["error"] = exc.code
        return JSONResponse(envelope(exc.code, exc.message))

    app.include_router(api.router)
    app.include_router(oauth.router)
    app.include_router(admin.router)
    app.include_router(health_router({}))
    return app
