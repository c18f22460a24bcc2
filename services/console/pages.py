"""The console's pages: one HTML shell, its script and style from this package (no CDN, no
inline script), and the few settings the script needs."""

from pathlib import Path
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse

STATIC = Path(__file__).parent / "static"

router = APIRouter(include_in_schema=False)


@router.get("/")
async def console_page() -> FileResponse:
    return FileResponse(STATIC / "console.html", headers={"cache-control": "no-cache"})


@router.get("/config.json")
async def console_config(request: Request) -> dict[str, Any]:
    return {"urgent_ack_seconds": request.app.state.settings.urgent_ack_seconds}
