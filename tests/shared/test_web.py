"""Every HTML response carries the strict Content-Security-Policy; JSON answers are untouched."""

import httpx
from fastapi import FastAPI
from fastapi.responses import HTMLResponse

from shared.web import CONTENT_SECURITY_POLICY, harden


def app() -> FastAPI:
    api = FastAPI(docs_url=None, redoc_url=None)
    harden(api)

    @api.get("/page", response_class=HTMLResponse)
    async def page() -> str:
        return "<p>x</p>"

    @api.get("/data")
    async def data() -> dict[str, int]:
        return {"x": 1}

    return api


async def test_pages_get_the_policy_json_does_not() -> None:
    transport = httpx.ASGITransport(app=app())
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
        page, data = await http.get("/page"), await http.get("/data")
    policy = page.headers["content-security-policy"]
    assert policy == CONTENT_SECURITY_POLICY
    assert "script-src 'self'" in policy
    assert "unsafe-inline" not in policy
    assert page.headers["x-content-type-options"] == "nosniff"
    assert "content-security-policy" not in data.headers
