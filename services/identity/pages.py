"""The sign-in page for browsers (`GET /sign-in`), plain HTML forms without script.

The form posts to `POST /sign-in`; a sign-in form is protected against login CSRF (another site
signing a browser in as someone else) by a double-submit value: a random cookie set with the
page (HttpOnly, SameSite=Strict) that the form's hidden field must repeat. `GET /account` shows
who is signed in and a sign-out form, whose hidden field carries the session's CSRF token,
checked like every state-changing request (`shared.identity.verifier`).
"""

import hmac
from html import escape
from pathlib import Path
from urllib.parse import parse_qs

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, HTMLResponse, RedirectResponse, Response

from services.identity.accounts import Identity, IdentityError
from services.identity.api import (
    clear_session_cookies,
    origin,
    secure_cookies,
    set_session_cookies,
)
from shared.auth import current_staff
from shared.identity.store import CSRF_FIELD, SESSION_COOKIE, new_secret
from shared.identity.verifier import csrf_token

router = APIRouter(include_in_schema=False)
SIGN_IN_COOKIE = "binhyen_sign_in"
STYLE = Path(__file__).with_name("static") / "identity.css"
MAX_FORM_BYTES = 4096

PAGE = """<!doctype html>
<html lang="vi">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Bình Yên — {title}</title>
<link rel="stylesheet" href="/static/identity.css">
</head>
<body>
<main>
<h1>Bình Yên · {title}</h1>
{body}
</main>
</body>
</html>
"""

SIGN_IN_FORM = """{message}
<form method="post" action="/sign-in">
  <input type="hidden" name="csrf_token" value="{token}">
  <label>Tên đăng nhập
    <input name="username" autocomplete="username" required maxlength="64"></label>
  <label>Mật khẩu
    <input name="password" type="password" autocomplete="current-password" required
     maxlength="256"></label>
  <label>Mã xác thực (6 số, hoặc mã khôi phục)
    <input name="code" autocomplete="one-time-code" inputmode="numeric" maxlength="32"></label>
  <button type="submit">Đăng nhập</button>
</form>
<p class="note">Quản trị viên và người duyệt bắt buộc dùng mã xác thực hai bước.</p>
"""


def page(title: str, body: str, status_code: int = 200) -> HTMLResponse:
    return HTMLResponse(
        PAGE.format(title=escape(title), body=body),
        status_code=status_code,
        headers={"Cache-Control": "no-store"},
    )


def sign_in_page(request: Request, message: str = "", status_code: int = 200) -> HTMLResponse:
    token = new_secret()
    shown = f'<p class="error" role="alert">{escape(message)}</p>' if message else ""
    response = page("Đăng nhập", SIGN_IN_FORM.format(message=shown, token=token), status_code)
    response.set_cookie(
        SIGN_IN_COOKIE,
        token,
        max_age=1800,
        path="/sign-in",
        httponly=True,
        samesite="strict",
        secure=secure_cookies(request),
    )
    return response


async def form_fields(request: Request) -> dict[str, str]:
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise HTTPException(413, detail=f"Nội dung quá lớn: tối đa {MAX_FORM_BYTES} byte.")
    parsed = parse_qs(body.decode("utf-8", errors="replace"), max_num_fields=10)
    return {key: values[0] for key, values in parsed.items() if values}


@router.get("/sign-in")
async def sign_in_form(request: Request) -> HTMLResponse:
    return sign_in_page(request)


@router.post("/sign-in")
async def sign_in_submit(request: Request) -> Response:
    fields = await form_fields(request)
    expected = request.cookies.get(SIGN_IN_COOKIE, "")
    offered = fields.get(CSRF_FIELD, "")
    if not expected or not hmac.compare_digest(offered.encode(), expected.encode()):
        return sign_in_page(request, "Phiên của trang đã hết hạn; hãy đăng nhập lại.", 403)
    identity: Identity = request.app.state.service.identity
    try:
        done = await identity.sign_in(
            fields.get("username", ""),
            fields.get("password", ""),
            fields.get("code") or None,
            origin(request),
        )
    except IdentityError as exc:
        return sign_in_page(request, exc.detail, exc.status)
    response = RedirectResponse("/account", status_code=303)
    max_age = int(identity.absolute.total_seconds())
    set_session_cookies(request, response, done.session_id, done.csrf_token, max_age)
    response.delete_cookie(SIGN_IN_COOKIE, path="/sign-in")
    return response


@router.get("/account")
async def account_page(request: Request) -> Response:
    try:
        user = await current_staff(request)
    except HTTPException:
        return RedirectResponse("/sign-in", status_code=303)
    session_id = request.cookies.get(SESSION_COOKIE, "")
    roles = ", ".join(sorted(user.roles)) or "—"
    lines = [
        f"<p>Đã đăng nhập: <strong>{escape(user.name)}</strong> ({escape(user.id)})</p>",
        f"<p>Vai trò dùng được: {escape(roles)}</p>",
    ]
    if user.withheld:
        why = (
            "cần đổi mật khẩu tạm"
            if user.withheld_because == "password_change"
            else "cần đăng nhập bằng xác thực hai bước"
        )
        held = ", ".join(sorted(user.withheld))
        lines.append(f'<p class="error">Chưa dùng được: {escape(held)} ({why}).</p>')
    if user.via == "session":
        lines.append(
            '<form method="post" action="/sign-out">'
            f'<input type="hidden" name="csrf_token" value="{csrf_token(session_id)}">'
            '<button type="submit">Đăng xuất (mọi phiên)</button></form>'
        )
    return page("Tài khoản", "\n".join(lines))


@router.post("/sign-out")
async def sign_out_submit(request: Request) -> Response:
    """The form of `/account`: the CSRF field is checked by the verifier like any post."""
    user = await current_staff(request)
    identity: Identity = request.app.state.service.identity
    if user.via == "session":
        await identity.sign_out(user, origin(request))
    response = RedirectResponse("/sign-in", status_code=303)
    clear_session_cookies(request, response)
    return response


@router.get("/static/identity.css")
async def style() -> FileResponse:
    return FileResponse(STYLE, media_type="text/css")
