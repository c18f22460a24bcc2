"""`/api/<service>/<path>`: the console's one door to the services' public APIs.

The console's pages and every API they call share one origin, so the identity session cookie,
its CSRF token and the live stream work without CORS, and the page's policy can stay
`connect-src 'self'`. The console adds no authority of its own: it forwards the caller's
cookie, CSRF header or bearer token, and each service verifies them exactly as it does for
a direct call (shared/identity/verifier.py). Only the headers the APIs need go through, in
both directions; answers (and the reports stream) are relayed as they arrive.
"""

from collections.abc import AsyncIterator
from http.cookiejar import CookieJar, DefaultCookiePolicy
from typing import Annotated

import httpx
from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse

from shared.errors import ServiceError

FORWARDED_REQUEST_HEADERS = (
    "accept",
    "authorization",
    "content-type",
    "cookie",
    "last-event-id",
    "user-agent",
    "x-csrf-token",
)
FORWARDED_RESPONSE_HEADERS = frozenset(
    {"cache-control", "content-encoding", "content-type", "retry-after", "set-cookie"}
)
METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


class Upstreams:
    """The services' addresses and one pooled HTTP client to reach them."""

    def __init__(self, addresses: dict[str, str], timeout: float) -> None:
        self.addresses = {name: url.rstrip("/") for name, url in addresses.items()}
        self.timeout = timeout
        self.client = httpx.AsyncClient(
            follow_redirects=False, trust_env=False, cookies=_jar_that_keeps_nothing()
        )

    async def aclose(self) -> None:
        await self.client.aclose()

    def url(self, service: str, raw_path: str, query: str) -> str:
        base = self.addresses.get(service)
        if base is None:
            raise ServiceError("Không có dịch vụ này.", status=404)
        return base + raw_path + (f"?{query}" if query else "")

    def timeout_for(self, request: Request) -> httpx.Timeout:
        # A live stream stays open as long as the page: no read timeout, the service's
        # keep-alives and the browser's reconnection take care of it.
        streaming = "text/event-stream" in request.headers.get("accept", "")
        return httpx.Timeout(self.timeout, read=None if streaming else self.timeout)


def _jar_that_keeps_nothing() -> CookieJar:
    """The client is shared by every caller: a session cookie it kept from one person's
    sign-in would be sent with everyone else's requests. Cookies travel only as each
    caller's own header."""
    return CookieJar(policy=DefaultCookiePolicy(allowed_domains=[]))


def get_upstreams(request: Request) -> Upstreams:
    upstreams: Upstreams = request.app.state.service.upstreams
    return upstreams


router = APIRouter(include_in_schema=False)


@router.api_route("/api/{service}/{path:path}", methods=METHODS)
async def forward(
    service: str, request: Request, upstreams: Annotated[Upstreams, Depends(get_upstreams)]
) -> StreamingResponse:
    raw_path = request.scope["raw_path"].decode("latin-1")
    url = upstreams.url(service, raw_path[len(f"/api/{service}") :], request.url.query)
    headers = {
        name: value
        for name in FORWARDED_REQUEST_HEADERS
        if (value := request.headers.get(name)) is not None
    }
    # Who the console forwards for (its own peer; what a browser wrote in this header is not
    # passed on): identity believes it only from addresses in its TRUSTED_PROXIES, and counts
    # failed sign-ins per browser rather than for the whole console.
    if request.client is not None:
        headers["x-forwarded-for"] = request.client.host
    outgoing = upstreams.client.build_request(
        request.method,
        url,
        headers=headers,
        content=await request.body(),
        timeout=upstreams.timeout_for(request),
    )
    try:
        answer = await upstreams.client.send(outgoing, stream=True)
    except httpx.TransportError as exc:
        raise ServiceError(
            "Dịch vụ tạm thời không trả lời, vui lòng thử lại sau ít giây.",
            status=502,
            error="upstream_unavailable",
        ) from exc
    response = StreamingResponse(_relay(answer), status_code=answer.status_code)
    response.raw_headers.extend(
        (name.lower().encode("latin-1"), value.encode("latin-1"))
        for name, value in answer.headers.multi_items()
        if name.lower() in FORWARDED_RESPONSE_HEADERS
    )
    return response


async def _relay(answer: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in answer.aiter_raw():
            yield chunk
    finally:
        await answer.aclose()
