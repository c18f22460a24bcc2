"""`/_admin/...`: seed data, inject failures, move the clock, read what the fake recorded.

Not part of Zalo's API; tests and the demo drive the fake through it (see
`tests/fixtures/fake_zalo.py` for a Python helper).
"""

import secrets
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from tools.fake_zalo.state import FakeState, Injection
from tools.fake_zalo.validation import state_of
from tools.fake_zalo.webhook import USER_TO_OA, build_event, deliver, encode

router = APIRouter(prefix="/_admin", tags=["fake-admin"])


class UserSeed(BaseModel):
    user_id: str | None = None
    display_name: str = "Người dùng"
    is_follower: bool = True
    last_interaction_ago: float = 0.0  # seconds before the fake's now
    shared_info: dict[str, Any] | None = None


class GroupSeed(BaseModel):
    group_id: str | None = None
    name: str = "Nhóm"
    expired: bool = False
    oa_is_member: bool = True
    member_ids: list[str] = Field(default_factory=list)


class ArticleSeed(BaseModel):
    article_id: str | None = None
    title: str = "Bài viết"
    body: str = ""
    views: int = 0
    shares: int = 0


class Seed(BaseModel):
    users: list[UserSeed] = Field(default_factory=list)
    groups: list[GroupSeed] = Field(default_factory=list)
    articles: list[ArticleSeed] = Field(default_factory=list)
    clear: bool = False  # drop the demo data first


class InjectRequest(BaseModel):
    count: int = Field(default=1, ge=1)
    code: int | None = None  # a Zalo `error` code (HTTP 200 envelope)
    http_status: int | None = Field(default=None, ge=400, le=599)  # or a bare HTTP failure
    message: str = "Injected failure"
    path_prefix: str = ""  # "" = every API path (the token endpoint only if named: "/v4")
    retry_after: float | None = None


class TokenRequest(BaseModel):
    access_token: str | None = None
    refresh_token: str | None = None
    expires_in: float | None = None


class WebhookRequest(BaseModel):
    event_name: str = "user_send_text"
    user_id: str = "246845883529197920"
    text: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    image_url: str | None = None
    group_id: str | None = None
    msg_id: str | None = None
    msg_ids: list[str] | None = None
    timestamp_ms: int | None = None
    payload: dict[str, Any] | None = None  # send this body verbatim instead of building one
    url: str | None = None  # default: FAKE_WEBHOOK_URL
    bad_signature: bool = False
    copies: int = Field(default=1, ge=1, le=10)  # > 1 = duplicate deliveries
    retry: bool = True  # follow Zalo's retry ladder on failure
    ladder: list[float] | None = None  # seconds between retries; default FAKE_WEBHOOK_RETRY_LADDER


@router.post("/reset")
async def reset(request: Request) -> dict[str, str]:
    state_of(request).reset()
    return {"status": "reset"}


@router.post("/seed")
async def seed(body: Seed, request: Request) -> dict[str, list[str]]:
    state = state_of(request)
    if body.clear:
        state.users.clear()
        state.groups.clear()
        state.articles.clear()
    users = [
        state.seed_user(
            u.user_id,
            display_name=u.display_name,
            is_follower=u.is_follower,
            last_interaction=state.clock() - u.last_interaction_ago,
            shared_info=u.shared_info,
        ).user_id
        for u in body.users
    ]
    groups = [state.seed_group(**g.model_dump()).group_id for g in body.groups]
    articles = [state.seed_article(**a.model_dump()).article_id for a in body.articles]
    return {"users": users, "groups": groups, "articles": articles}


@router.post("/users/{user_id}/interact")
async def interact(user_id: str, request: Request) -> dict[str, float]:
    """The user wrote to the OA: the free reply window restarts."""
    state = state_of(request)
    user = state.users.get(user_id) or state.seed_user(user_id)
    user.last_interaction, user.replies_since_interaction = state.clock(), 0
    return {"last_interaction": user.last_interaction}


@router.post("/inject")
async def inject(body: InjectRequest, request: Request) -> dict[str, int]:
    if (body.code is None) == (body.http_status is None):
        raise HTTPException(422, "give exactly one of code and http_status")
    state = state_of(request)
    state.injections.append(Injection(remaining=body.count, **body.model_dump(exclude={"count"})))
    return {"pending": sum(i.remaining for i in state.injections)}


@router.post("/latency")
async def latency(request: Request, seconds: float = 0.0) -> dict[str, float]:
    state_of(request).latency = max(seconds, 0.0)
    return {"latency": state_of(request).latency}


@router.post("/quota")
async def quota(request: Request, per_minute: int) -> dict[str, int]:
    state = state_of(request)
    state.quota_per_minute, state.window = per_minute, type(state.window)()
    return {"per_minute": per_minute}


@router.post("/down")
async def down(request: Request, down: bool = True) -> dict[str, bool]:
    state_of(request).down = down
    return {"down": down}


@router.post("/clock")
async def clock(request: Request, advance: float = 0.0) -> dict[str, float]:
    state = state_of(request)
    return {"now": state.advance(advance), "offset": state.offset}


@router.post("/tokens")
async def tokens(body: TokenRequest, request: Request) -> dict[str, Any]:
    """Issue a live token pair (e.g. to seed a client); `expires_in` <= 0 = already expired."""
    return state_of(request).add_token_pair(
        body.access_token or secrets.token_urlsafe(24),
        body.refresh_token or secrets.token_urlsafe(24),
        body.expires_in,
    )


@router.post("/tokens/expire")
async def expire_tokens(request: Request) -> dict[str, int]:
    state = state_of(request)
    state.expire_access_tokens()
    return {"expired": len(state.tokens.access)}


@router.post("/oauth-codes")
async def oauth_code(request: Request, challenge: str | None = None) -> dict[str, str]:
    code = secrets.token_urlsafe(16)
    state_of(request).tokens.codes[code] = challenge
    return {"code": code}


@router.get("/messages")
async def messages(request: Request, kind: str | None = None) -> list[dict[str, Any]]:
    return [m for m in state_of(request).messages if kind is None or m["kind"] == kind]


@router.get("/calls")
async def calls(request: Request, path: str | None = None) -> list[dict[str, Any]]:
    return [c for c in state_of(request).calls if path is None or c["path"] == path]


@router.get("/stats")
async def stats(request: Request) -> dict[str, Any]:
    state = state_of(request)
    by_path: dict[str, int] = {}
    for call in state.calls:
        by_path[call["path"]] = by_path.get(call["path"], 0) + 1
    return {
        "refresh_calls": state.tokens.refresh_calls,
        "calls_by_path": by_path,
        "messages": len(state.messages),
        "live_access_tokens": len(state.tokens.access),
    }


def _note_interaction(state: FakeState, body: WebhookRequest) -> None:
    if body.payload is not None:
        return
    user = state.users.get(body.user_id) or state.seed_user(body.user_id)
    if body.event_name in {"follow", "unfollow"}:
        user.is_follower = body.event_name == "follow"
    if body.event_name in {"follow"} | USER_TO_OA:
        user.last_interaction, user.replies_since_interaction = state.clock(), 0


@router.post("/webhook")
async def emit_webhook(body: WebhookRequest, request: Request) -> dict[str, Any]:
    """Send one event (possibly several copies) to ingest, signed as Zalo signs it."""
    state = state_of(request)
    s = state.settings
    payload = body.payload or build_event(
        body.event_name,
        app_id=s.zalo_app_id,
        oa_id=s.fake_oa_id,
        **body.model_dump(
            include={"user_id", "msg_id", "text", "latitude", "longitude", "image_url"}
            | {"group_id", "msg_ids", "timestamp_ms"}
        ),
    )
    _note_interaction(state, body)
    raw = encode(payload)
    results = [
        await deliver(
            body.url or s.fake_webhook_url,
            raw,
            app_id=str(payload.get("app_id", s.zalo_app_id)),
            timestamp=str(payload.get("timestamp", "")),
            secret=s.zalo_oa_secret_key,
            ladder=(body.ladder or s.fake_webhook_retry_ladder) if body.retry else [],
            timeout=s.fake_webhook_timeout,
            bad_signature=body.bad_signature,
        )
        for _ in range(body.copies)
    ]
    state.webhook_deliveries.append({"payload": payload, "results": results})
    return {"payload": payload, "results": results}
