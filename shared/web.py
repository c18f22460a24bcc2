"""What every HTTP service sends with its pages: a strict Content-Security-Policy.

Staff pages show text that residents and editors wrote (notice titles, article titles, ward
names). Pages build their DOM with textContent, and this policy is the second wall: no inline
script, no script from anywhere but the service itself, no plugins, no framing, no <base>
rewrite, so even markup that slipped through cannot run code or send the staff token away.
FastAPI's Swagger UI and ReDoc pages load script from a CDN and inline, so every service turns
them off (docs_url=None, redoc_url=None); the OpenAPI document stays at /openapi.json.
"""

from fastapi import FastAPI
from starlette.types import ASGIApp, Message, Receive, Scope, Send

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


def harden(app: FastAPI) -> None:
    """Install what every service's HTTP side gets (see the module docstring)."""
    app.add_middleware(PagePolicy)
