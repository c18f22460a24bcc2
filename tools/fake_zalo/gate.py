"""The gate every OA API call passes first, as plain ASGI (no per-request task or stream).

down -> latency -> injected failure -> per-minute quota (-32) -> the endpoint (token check,
validation). Answers carry `X-RateLimit-Limit` / `X-RateLimit-Remain`; failures are HTTP 200
with a negative `error`. Each call is recorded (`FakeState.calls`: method, path, `at`, and the
`error` / `http_status` it got); the record is also put in the ASGI scope's `state` as `call`
so the endpoints' error handler can note the code.

The hot send endpoints (`FAST_ROUTES`: group and customer-service messages) are answered here
directly from the raw body, without FastAPI's routing, request object and response encoding;
every other path goes on to the FastAPI app.
"""

import asyncio
import json
import time
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from tools.fake_zalo.state import FakeApiError, FakeState, Injection
from tools.fake_zalo.validation import parse_object

API_PREFIXES = ("/v2.0/", "/v3.0/", "/v4/")
FastRoute = Callable[[FakeState, dict[str, Any]], dict[str, Any]]
_JSON = [(b"content-type", b"application/json")]
_TEXT = [(b"content-type", b"text/plain; charset=utf-8")]


def envelope(code: int, message: str) -> dict[str, Any]:
    return {"error": code, "message": message}


_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def encode(content: Any) -> bytes:
    """JSON as FastAPI renders it (UTF-8, compact)."""
    return _ENCODER.encode(content).encode()


async def respond(send: Send, status: int, body: bytes, headers: list[tuple[bytes, bytes]]) -> None:
    length = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": length + headers})
    await send({"type": "http.response.body", "body": body})


async def read_body(receive: Receive) -> bytes:
    chunks = []
    while True:
        message = await receive()
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def header(scope: Scope, name: bytes) -> str | None:
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None


class ZaloGate:
    """ASGI app in front of the fake's FastAPI app (see the module docstring)."""

    def __init__(
        self, app: ASGIApp, state: FakeState, fast_routes: dict[tuple[str, str], FastRoute]
    ) -> None:
        self.app, self.state, self.fast_routes = app, state, fast_routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(API_PREFIXES):
            await self.app(scope, receive, send)
            return
        state, path = self.state, scope["path"]
        call: dict[str, Any] = {"method": scope["method"], "path": path, "at": time.time()}
        state.calls.append(call)
        scope.setdefault("state", {})["call"] = call
        if state.down:
            call["http_status"] = 503
            await respond(send, 503, b"Service Unavailable", _TEXT)
            return
        if state.latency:
            await asyncio.sleep(state.latency)
        if injection := state.take_injection(path):
            await self._injected(send, injection, call)
            return
        if path.startswith("/v4"):
            await self.app(scope, receive, send)
            return
        try:
            remaining = state.take_quota()
        except FakeApiError as exc:
            call["error"] = exc.code
            body = encode(envelope(exc.code, exc.message))
            await respond(send, 200, body, _JSON + self._quota_headers(0))
            return
        quota = self._quota_headers(remaining)
        fast = self.fast_routes.get((scope["method"], path))
        if fast is not None:
            body = encode(await self._fast(fast, scope, receive, call))
            await respond(send, 200, body, _JSON + quota)
            return

        async def send_with_quota(message: Message) -> None:
            if message["type"] == "http.response.start":
                message["headers"] = [*message.get("headers", ()), *quota]
            await send(message)

        await self.app(scope, receive, send_with_quota)

    async def _fast(
        self, route: FastRoute, scope: Scope, receive: Receive, call: dict[str, Any]
    ) -> dict[str, Any]:
        raw = await read_body(receive)
        try:
            self.state.check_access(header(scope, b"access_token"))
            return route(self.state, parse_object(raw))
        except FakeApiError as exc:
            call["error"] = exc.code
            return envelope(exc.code, exc.message)

    def _quota_headers(self, remaining: int) -> list[tuple[bytes, bytes]]:
        return [
            (b"x-ratelimit-limit", str(self.state.quota_per_minute).encode()),
            (b"x-ratelimit-remain", str(remaining).encode()),
        ]

    @staticmethod
    async def _injected(send: Send, injection: Injection, call: dict[str, Any]) -> None:
        if injection.http_status is None:
            code = injection.code or -1
            call["error"] = code
            await respond(send, 200, encode(envelope(code, injection.message)), _JSON)
            return
        call["http_status"] = injection.http_status
        headers = list(_TEXT)
        if injection.retry_after:
            headers.append((b"retry-after", str(int(injection.retry_after)).encode()))
        await respond(send, injection.http_status, injection.message.encode(), headers)
