"""`GET /dashboard`: the Vietnamese dashboard page and its local assets (no CDN).

The page itself holds no figures: its script reads the metrics endpoints (analyst role) with
the browser's staff session (the identity service's cookie, sent by the browser) or, for kiosks
and tests, an API token (login form, kept in the tab's sessionStorage, or `#token=` in the
address).
"""

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request, status
from fastapi.responses import FileResponse, HTMLResponse

STATIC = Path(__file__).with_name("static")
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css"}

router = APIRouter(tags=["dashboard"])


@router.get("/dashboard", response_class=HTMLResponse)
async def dashboard() -> HTMLResponse:
    return HTMLResponse(
        (STATIC / "dashboard.html").read_text(encoding="utf-8"),
        headers={"Cache-Control": "no-store"},
    )


@router.get("/dashboard/static/{name}")
async def asset(name: str, request: Request) -> FileResponse:
    if name == "chart.umd.min.js":
        path: Path | None = request.app.state.service.chart_js
        if path is None:
            raise HTTPException(
                status.HTTP_404_NOT_FOUND,
                detail="Chưa cài thư viện biểu đồ: chạy `make dashboard-assets`.",
            )
        return FileResponse(path, media_type="text/javascript")
    if name not in _ASSETS:
        raise HTTPException(status.HTTP_404_NOT_FOUND, detail="Không tìm thấy tệp.")
    return FileResponse(STATIC / name, media_type=_ASSETS[name])
