"""What every HTTP service gets (`harden(app)`): one error type and one JSON error body,
request limits, and a strict Content-Security-Policy on its pages.

Errors: a request a service refuses raises `ServiceError` (or a service's subclass of it);
every 4xx answer, the webhook's included, is `ErrorBody` (`{"error": code, "detail": text,
"errors": [...]}`), mapped here and documented on every route. `errors` names the fields at
fault of a 422 (empty otherwise), and never echoes the input (it may hold a lone surrogate JSON
cannot encode, or a resident's text).

Limits: bodies are refused with 413 past a per-route size (1 MiB unless the route says more),
checked from Content-Length and again while reading, so a lying client cannot make the service
hold more; more than 32 KiB or 100 headers is refused with 431.

Staff pages show text that residents and editors wrote (notice titles, article titles, ward
names). Pages build their DOM with textContent, and this policy is the second wall: no inline
script, no script from anywhere but the service itself, no plugins, no framing, no <base>
rewrite, so even markup that slipped through cannot run code or send the staff token away.
FastAPI's Swagger UI and ReDoc pages load script from a CDN and inline, so every service turns
them off (docs_url=None, redoc_url=None); the OpenAPI document stays at /openapi.json.
"""

import json
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BeforeValidator
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.errors import ErrorBody, ServiceError, error_code, utf8
from shared.errors import FieldError as FieldError  # re-exported: services import it from here
from shared.errors import error_body as error_body

MIB = 1024 * 1024
DEFAULT_BODY_LIMIT = MIB
MAX_HEADER_BYTES = 32 * 1024
MAX_HEADERS = 100


def _iso_only(value: object) -> object:
    """Query times as ISO 8601 only: pydantic would read "0.5" as a Unix time."""
    if isinstance(value, str) and not _ISO_START.match(value):
        raise ValueError("thời điểm phải theo ISO 8601, ví dụ 2026-12-04T08:00:00+07:00")
    return value


_ISO_START = re.compile(r"^\d{4}-\d{2}-\d{2}")
IsoDateTime = Annotated[datetime, BeforeValidator(_iso_only)]


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorBody, "description": text}
    for code, text in (
        (400, "Bad request"),
        (401, "Missing or unknown staff token"),
        (403, "Role or ward not allowed"),
        (404, "Not found"),
        (409, "Conflicts with the current state"),
        (413, "Body over the route's size limit"),
        (422, "Invalid input; `errors` names the fields"),
        (431, "Headers too large"),
    )
}

CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'; object-src 'none'"
)
PAGE_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"no-referrer"),
    (b"x-frame-options", b"DENY"),
)


class PagePolicy:
    """ASGI middleware: every text/html response gets the policy headers (JSON answers are
    left alone, so the hot paths pay one header scan)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_policy(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_html(message["headers"]):
                names = {name.lower() for name, _ in message["headers"]}
                extra = [h for h in PAGE_HEADERS if h[0] not in names]
                message = {**message, "headers": [*message["headers"], *extra]}
            await send(message)

        await self.app(scope, receive, send_with_policy)


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(
        name.lower() == b"content-type" and value.lower().startswith(b"text/html")
        for name, value in headers
    )


def harden(app: FastAPI, body_limits: Mapping[tuple[str, str], int] | None = None) -> None:
    """Install what every service's HTTP side gets (see the module docstring). Call it before
    including routers: they take the documented error responses from `app.router`.
    `body_limits`: (method, path) -> bytes for routes that need more or less than 1 MiB."""
    app.router.responses = {**ERROR_RESPONSES, **app.router.responses}
    app.add_exception_handler(RequestValidationError, invalid_request)
    app.add_exception_handler(ServiceError, service_error)
    app.add_exception_handler(StarletteHTTPException, http_error)  # routing's 404/405 too
    app.add_middleware(PagePolicy)
    app.add_middleware(RequestLimits, body_limits=dict(body_limits or {}))


async def service_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, ServiceError)
    return JSONResponse(error_body(exc.detail, error=exc.error), status_code=exc.status)


async def invalid_request(_: Request, exc: Exception) -> JSONResponse:
    """422 with a Vietnamese summary and the fields at fault, without the input."""
    assert isinstance(exc, RequestValidationError)
    errors = [
        FieldError(
            loc=[p if isinstance(p, int) else utf8(str(p))[:100] for p in e.get("loc", ())],
            msg=utf8(str(e.get("msg", "")))[:300],
        )
        for e in exc.errors()[:50]
    ]
    body = error_body("Dữ liệu không hợp lệ.", errors, error=error_code(422))
    return JSONResponse(body, status_code=422)


async def http_error(_: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    detail = exc.detail if isinstance(exc.detail, str) else json.dumps(exc.detail, default=str)
    body = error_body(detail, error=error_code(exc.status_code))
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"Nội dung quá lớn: tối đa {limit} byte.")


class RequestLimits:
    """ASGI middleware: header size (431), and body size per route (413) from Content-Length
    and while the body is read. Raised inside the app as an HTTPException, so FastAPI's body
    parsing and endpoints that read `request.body()` both answer 413."""

    def __init__(self, app: ASGIApp, body_limits: dict[tuple[str, str], int]) -> None:
        self.app, self.body_limits = app, body_limits

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers: list[tuple[bytes, bytes]] = scope["headers"]
        if (
            len(headers) > MAX_HEADERS
            or sum(len(n) + len(v) for n, v in headers) > MAX_HEADER_BYTES
        ):
            await _send_error(send, 431, "Tiêu đề yêu cầu quá lớn.")
            return
        limit = self.body_limits.get((scope["method"], scope["path"]), DEFAULT_BODY_LIMIT)
        declared = next((v for n, v in headers if n == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            await _send_error(send, 413, BodyTooLarge(limit).detail)
            return
        seen = 0

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise BodyTooLarge(limit)
            return message

        await self.app(scope, limited_receive, send)


async def _send_error(send: Send, status: int, detail: str) -> None:
    body = json.dumps(error_body(detail, error=error_code(status)), ensure_ascii=False).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
