"""The console's pages: one HTML shell, its scripts and style from this package (no CDN, no
inline script), and the few settings the script needs."""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

from shared.web import CONTENT_SECURITY_POLICY

STATIC = Path(__file__).parent / "static"

# Residents' photos are shown from where Zalo keeps them (the attachment URLs reports stores),
# so the console's page, and only it, may load images from Zalo's CDN over HTTPS: every
# `*.zdn.vn` host and nothing else, so a URL that is not Zalo's is refused by the browser.
# The page's `no-referrer` policy keeps the console's address and case paths from the CDN.
# Fetching the photos through reports instead would keep `img-src 'self'`, but make reports
# download from URLs a webhook names (server-side request forgery) and hold residents' images.
ZALO_PHOTOS = "https://*.zdn.vn"


def console_policy(shared_policy: str = CONTENT_SECURITY_POLICY) -> str:
    """The shared page policy with Zalo's photo CDN added to `img-src` (scripts, styles and
    connections stay `'self'`)."""
    directives = [d.strip() for d in shared_policy.split(";") if d.strip()]
    if not any(d.startswith("img-src ") for d in directives):
        raise ValueError("the shared policy has no img-src to extend")
    return "; ".join(f"{d} {ZALO_PHOTOS}" if d.startswith("img-src ") else d for d in directives)


CONSOLE_POLICY = console_policy()

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console_page() -> FileResponse:
    # shared.web's PagePolicy adds the other page headers and keeps this policy.
    headers = {"cache-control": "no-cache", "content-security-policy": CONSOLE_POLICY}
    return FileResponse(STATIC / "console.html", headers=headers)


@router.get("/config.json")
async def console_config(request: Request) -> dict[str, Any]:
    return {"urgent_ack_seconds": request.app.state.settings.urgent_ack_seconds}
