"""The OA API endpoints of the fake (reference §5, §7, §8, §9): same paths, checks, envelopes.

The two hot send endpoints are plain functions of (state, JSON body) in `FAST_ROUTES`, answered
by the gate (`tools.fake_zalo.gate`) after it checked the access token; the rest are FastAPI
routes on `router`.
"""

import secrets
from datetime import UTC, datetime, timedelta
from email.message import Message
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any

from fastapi import APIRouter, Request

from tools.fake_zalo.gate import FastRoute
from tools.fake_zalo.state import DAY, HOUR, FakeApiError, FakeState, FakeUser
from tools.fake_zalo.validation import (
    authorize,
    content_of,
    data_param,
    invalid,
    json_object,
    media_element,
    obj,
    paging,
    text_id,
)

router = APIRouter(tags=["zalo-oa"])
VN = timedelta(hours=7)  # Asia/Ho_Chi_Minh, no daylight saving
UPLOAD_LIMITS = {
    "image": (1_000_000, {"image/jpeg", "image/png"}),
    "gif": (5_000_000, {"image/gif"}),
    "file": (5_000_000, {"application/pdf", "application/msword", "text/plain"}),
}
TARGET_RANGES = {
    "ages": range(8),
    "gender": range(3),
    "locations": range(3),
    "platforms": range(1, 4),
}


def ok(data: dict[str, Any]) -> dict[str, Any]:
    return {"error": 0, "message": "Success", "data": data}


def _follower(state: FakeState, user_id: str) -> FakeUser:
    user = state.users.get(user_id)
    if user is None or not user.is_follower:
        raise FakeApiError(-213, "User has not followed OA")
    return user


def _charge_reply(state: FakeState, user: FakeUser) -> dict[str, Any]:
    """The quota a consultation message uses: free `reply` within 48 h, billed up to 7 days."""
    age = state.clock() - user.last_interaction
    if age > 45 * DAY:
        raise FakeApiError(-227, "User is inactive for more than 45 days")
    if age > 7 * DAY:
        raise FakeApiError(-230, "User has not interacted with the OA in the past 7 days")
    free = state.settings.fake_free_reply_quota
    user.replies_since_interaction += 1
    if age <= 48 * HOUR and user.replies_since_interaction <= free:
        remain = free - user.replies_since_interaction
        return {"quota_type": "reply", "remain": remain, "total": free}
    return {"quota_type": "purchase_quota", "remain": 1000, "total": 1000}


def send_cs(state: FakeState, body: dict[str, Any]) -> dict[str, Any]:
    """`POST /v3.0/oa/message/cs`: a consultation message to one follower."""
    user_id = text_id(obj(body, "recipient"), "user_id")
    content = content_of(obj(body, "message"), state)
    user = _follower(state, user_id)
    quota = _charge_reply(state, user)
    record = state.record_message("cs", user_id=user_id, **content)
    return ok({"message_id": record["message_id"], "user_id": user_id, "quota": quota})


def _target_values(key: str, value: Any) -> list[int]:
    parts: list[Any]
    if isinstance(value, str):
        parts = [part.strip() for part in value.split(",") if part.strip()]
    elif isinstance(value, list):
        parts = value
    elif isinstance(value, int) and not isinstance(value, bool):
        parts = [value]
    else:
        raise invalid(key)
    try:
        numbers = [int(part) for part in parts]
    except (TypeError, ValueError) as exc:
        raise invalid(key) from exc
    allowed = TARGET_RANGES.get(key)
    if not numbers or (allowed is not None and any(n not in allowed for n in numbers)):
        raise invalid(key)
    return numbers


@router.post("/v2.0/oa/message")
async def broadcast(request: Request) -> dict[str, Any]:
    state = authorize(request)
    body = await json_object(request)
    recipient = obj(body, "recipient")
    if "user_id" in recipient:
        raise FakeApiError(-240, "The API MessageV2 has been shut down, use the v3 API")
    target = obj(recipient, "target")
    known = {"ages", "gender", "locations", "cities", "platforms", "platform"}
    if unknown := set(target) - known:
        raise invalid(sorted(unknown)[0])
    parsed = {key: _target_values(key, value) for key, value in target.items()}
    element = media_element(obj(body, "message"), "article")
    article_id = element.get("attachment_id", "")
    if article_id not in state.articles:
        raise invalid("attachment_id")
    followers = sum(1 for user in state.users.values() if user.is_follower)
    record = state.record_message(
        "broadcast", article_id=article_id, target=parsed, recipients=followers
    )
    return ok({"message_id": record["message_id"]})


@router.post("/v3.0/oa/message/{kind}")
async def send_template(kind: str, request: Request) -> dict[str, Any]:
    state = authorize(request)
    if kind not in {"transaction", "promotion", "template"}:
        raise FakeApiError(-233, "message type is invalid or not support")
    if state.settings.fake_template_endpoints == "discontinued":
        raise FakeApiError(-240, f"The {kind} message API has been discontinued")
    body = await json_object(request)
    recipient = body.get("recipient") if kind != "template" else body
    user_id = text_id(recipient if isinstance(recipient, dict) else {}, "user_id")
    _follower(state, user_id)
    local_hour = (datetime.fromtimestamp(state.clock(), UTC) + VN).hour
    if kind == "promotion" and (local_hour >= 22 or local_hour < 6):
        raise FakeApiError(-234, "Cannot send promotion messages at night (22:00-06:00)")
    record = state.record_message(kind, user_id=user_id, payload=body)
    return ok({"message_id": record["message_id"], "user_id": user_id})


def send_group(state: FakeState, body: dict[str, Any]) -> dict[str, Any]:
    """`POST /v3.0/oa/group/message`: a message to an OA-owned group."""
    group_id = text_id(obj(body, "recipient"), "group_id")
    content = content_of(obj(body, "message"), state)
    group = state.groups.get(group_id)
    if group is None or not group.oa_is_member:
        raise FakeApiError(-403, "OA is not in group")
    if group.expired:
        raise FakeApiError(-237, "Group is disabled")
    record = state.record_message("group", group_id=group_id, **content)
    return ok({"message_id": record["message_id"]})


FAST_ROUTES: dict[tuple[str, str], FastRoute] = {
    ("POST", "/v3.0/oa/message/cs"): send_cs,
    ("POST", "/v3.0/oa/group/message"): send_group,
}


def _upload_part(request: Request, raw: bytes) -> Message:
    content_type = request.headers.get("content-type", "")
    if not content_type.startswith("multipart/form-data"):
        raise invalid("file")
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    parsed = BytesParser(policy=HTTP).parsebytes(head + raw)
    for part in parsed.iter_parts() if parsed.is_multipart() else []:
        if part.get_param("name", header="content-disposition") == "file":
            return part
    raise invalid("file")


@router.post("/v2.0/oa/upload/{kind}")
async def upload(kind: str, request: Request) -> dict[str, Any]:
    state = authorize(request)
    if kind not in UPLOAD_LIMITS:
        raise FakeApiError(-233, "upload type is invalid or not support")
    limit, types = UPLOAD_LIMITS[kind]
    part = _upload_part(request, await request.body())
    content = part.get_payload(decode=True)
    if not isinstance(content, bytes) or not content:
        raise invalid("file")
    if len(content) > limit:
        raise FakeApiError(-210, f"file exceeds {limit} bytes")
    if part.get_content_type() not in types:
        raise invalid("file")
    attachment_id = state.add_attachment()
    return ok({"token": attachment_id} if kind == "file" else {"attachment_id": attachment_id})


@router.get("/v2.0/oa/getoa")
async def get_oa(request: Request) -> dict[str, Any]:
    state = authorize(request)
    s = state.settings
    followers = sum(1 for user in state.users.values() if user.is_follower)
    return ok({
        "oaid": s.fake_oa_id,
        "name": s.fake_oa_name,
        "description": "Kênh thông tin an ninh trật tự (giả lập)",
        "is_verified": True,
        "oa_type": 2,
        "num_follower": followers,
        "package_name": "Gói Nâng cao",
        "package_valid_through_date": "31/12/2027",
    })  # fmt: skip


@router.get("/v3.0/oa/user/getlist")
async def list_users(request: Request) -> dict[str, Any]:
    state = authorize(request)
    query = data_param(request)
    offset, count = paging(query, "count", 50)
    only_followers = str(query.get("is_follower", "false")).lower() == "true"
    users = [u for u in state.users.values() if u.is_follower or not only_followers]
    page = users[offset : offset + count]
    return ok({
        "total": len(users),
        "count": len(page),
        "offset": offset,
        "users": [{"user_id": user.user_id} for user in page],
    })  # fmt: skip


@router.get("/v3.0/oa/user/detail")
async def user_detail(request: Request) -> dict[str, Any]:
    state = authorize(request)
    user = _follower(state, text_id(data_param(request), "user_id"))
    last = datetime.fromtimestamp(user.last_interaction, UTC) + VN
    return ok({
        "user_id": user.user_id,
        "user_id_by_app": user.user_id_by_app,
        "display_name": user.display_name,
        "user_is_follower": user.is_follower,
        "user_last_interaction_date": last.strftime("%d/%m/%Y"),
        "avatars": {"120": "https://s120.fake.zdn.vn/a.jpg", "240": "https://s240.fake.zdn.vn/a.jpg"},
        "shared_info": user.shared_info,
    })  # fmt: skip


@router.post("/v3.0/oa/quota/message")
async def message_quota(request: Request) -> dict[str, Any]:
    state = authorize(request)
    user = _follower(state, text_id(await json_object(request), "user_id"))
    free = state.settings.fake_free_reply_quota
    return ok({
        "last_interaction": int(user.last_interaction * 1000),
        "cs_reply": {"remain": max(free - user.replies_since_interaction, 0), "total": free},
    })  # fmt: skip


def _article_view(state: FakeState, article_id: str) -> dict[str, Any]:
    article = state.articles[article_id]
    s = state.settings
    return {
        "id": article.article_id,
        "type": "normal",
        "title": article.title,
        "author": article.author,
        "description": article.description,
        "status": article.status,
        "thumb": article.cover_url,
        "create_date": int(article.created_at * 1000),
        "update_date": int(article.created_at * 1000),
        s.fake_article_view_field: article.views,
        s.fake_article_share_field: article.shares,
    }


@router.get("/v2.0/article/getslice")
async def article_slice(request: Request) -> dict[str, Any]:
    state = authorize(request)
    params = dict(request.query_params)
    offset, limit = paging(params, "limit", 10, over_code=-201)
    if params.get("type", "normal") not in {"normal", "video"}:
        raise invalid("type")
    ids = sorted(state.articles, key=lambda i: state.articles[i].created_at, reverse=True)
    medias = [_article_view(state, i) for i in ids[offset : offset + limit]]
    return ok({"medias": medias, "total": len(ids)})


@router.get("/v2.0/article/getdetail")
async def article_detail(request: Request) -> dict[str, Any]:
    state = authorize(request)
    article_id = request.query_params.get("id", "")
    if article_id not in state.articles:
        raise invalid("id")
    detail = _article_view(state, article_id)
    detail["body"] = [{"type": "text", "content": state.articles[article_id].body}]
    return ok(detail)


def _article_body(payload: dict[str, Any]) -> str:
    blocks = payload.get("body")
    if not isinstance(blocks, list) or not blocks:
        raise invalid("body")
    texts = []
    for block in blocks:
        if not isinstance(block, dict) or block.get("type") not in {"text", "image"}:
            raise invalid("body")
        if block["type"] == "text" and not isinstance(block.get("content"), str):
            raise invalid("body")
        texts.append(str(block.get("content", "")))
    return "\n".join(texts)


@router.post("/v2.0/article/create")
async def create_article(request: Request) -> dict[str, Any]:
    state = authorize(request)
    payload = await json_object(request)
    if payload.get("type") != "normal":
        raise invalid("type")
    title = payload.get("title")
    if not isinstance(title, str) or not title.strip() or len(title) > 150:
        raise invalid("title")
    body = _article_body(payload)
    cover = payload.get("cover", {})
    if not isinstance(cover, dict) or (cover and not isinstance(cover.get("photo_url"), str)):
        raise invalid("cover")
    article = state.seed_article(
        title=title,
        body=body,
        author=str(payload.get("author", "")),
        description=str(payload.get("description", "")),
        cover_url=str(cover.get("photo_url", "")),
    )
    token = secrets.token_urlsafe(16)
    state.pending_articles[token] = article.article_id
    return ok({"token": token})


@router.post("/v2.0/article/verify")
async def verify_article(request: Request) -> dict[str, Any]:
    state = authorize(request)
    token = (await json_object(request)).get("token")
    if not isinstance(token, str) or token not in state.pending_articles:
        raise invalid("token")
    return ok({"id": state.pending_articles[token]})


@router.get("/v3.0/oa/group/getgroupsofoa")
async def list_groups(request: Request) -> dict[str, Any]:
    state = authorize(request)
    offset, count = paging(dict(request.query_params), "count", 50)
    groups = [g for g in state.groups.values() if g.oa_is_member]
    page = groups[offset : offset + count]
    return ok({
        "total": len(groups),
        "count": len(page),
        "offset": offset,
        "groups": [
            {
                "group_id": g.group_id,
                "name": g.name,
                "status": "expired" if g.expired else "active",
                "total_member": len(g.member_ids),
            }
            for g in page
        ],
    })  # fmt: skip


@router.get("/v3.0/oa/group/listmember")
async def list_members(request: Request) -> dict[str, Any]:
    state = authorize(request)
    params = dict(request.query_params)
    group = state.groups.get(text_id(params, "group_id"))
    if group is None or not group.oa_is_member:
        raise FakeApiError(-403, "OA is not in group")
    offset, count = paging(params, "count", 50)
    page = group.member_ids[offset : offset + count]
    names = {uid: state.users[uid].display_name for uid in page if uid in state.users}
    return ok({
        "total": len(group.member_ids),
        "count": len(page),
        "offset": offset,
        "members": [{"user_id": uid, "name": names.get(uid)} for uid in page],
    })  # fmt: skip
