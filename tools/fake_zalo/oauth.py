"""`POST /v4/oa/access_token` of the fake: single-use refresh tokens and OAuth codes (§4).

The OAuth host's error codes are not documented reliably (reference §10); the fake answers
with the codes below, a non-zero `error`, an `error_description` and no `access_token`.
"""

import base64
import hashlib
from typing import Any
from urllib.parse import parse_qsl

from fastapi import APIRouter, Request

from tools.fake_zalo.state import FakeState
from tools.fake_zalo.validation import state_of

router = APIRouter(tags=["zalo-oauth"])

INVALID_PARAMETER = -14001
INVALID_APP = -14002
INVALID_SECRET = -14003
INVALID_CODE = -14019
INVALID_REFRESH_TOKEN = -14020


def _refused(code: int, description: str) -> dict[str, Any]:
    return {"error": code, "error_name": "Invalid parameter", "error_description": description}


def _challenge(verifier: str) -> str:
    digest = hashlib.sha256(verifier.encode()).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def _exchange_code(state: FakeState, form: dict[str, str]) -> dict[str, Any]:
    code = form.get("code", "")
    if code not in state.tokens.codes:
        return _refused(INVALID_CODE, "Invalid authorization code (unknown or already used)")
    challenge = state.tokens.codes.pop(code)
    if challenge is not None and _challenge(form.get("code_verifier", "")) != challenge:
        return _refused(INVALID_CODE, "code_verifier does not match the code_challenge")
    return state.rotate("")


def _refresh(state: FakeState, form: dict[str, str]) -> dict[str, Any]:
    state.tokens.refresh_calls += 1
    token = form.get("refresh_token", "")
    if token not in state.tokens.refresh:
        return _refused(INVALID_REFRESH_TOKEN, "Invalid refresh token (unknown or already used)")
    return state.rotate(token)


@router.post("/v4/oa/access_token")
async def access_token(request: Request) -> dict[str, Any]:
    state = state_of(request)
    if not request.headers.get("content-type", "").startswith("application/x-www-form-urlencoded"):
        return _refused(INVALID_PARAMETER, "Content-Type must be application/x-www-form-urlencoded")
    form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
    if request.headers.get("secret_key") != state.settings.zalo_app_secret_key:
        return _refused(INVALID_SECRET, "Invalid secret_key header")
    if form.get("app_id") != state.settings.zalo_app_id:
        return _refused(INVALID_APP, "Invalid app_id")
    grant = form.get("grant_type")
    if grant == "refresh_token":
        return _refresh(state, form)
    if grant == "authorization_code":
        return _exchange_code(state, form)
    return _refused(INVALID_PARAMETER, "grant_type must be refresh_token or authorization_code")
