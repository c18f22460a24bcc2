"""Turn a Zalo webhook body into one canonical `ZaloEventReceived` (pure, no I/O).

The raw shapes below follow `docs/reference/zalo-oa.md` §2; they validate types strictly
(ids are strings, never numbers) so that a malformed but signed body is quarantined instead of
published half-understood.
"""

import hashlib
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from shared.events.zalo import (
    Attachment,
    MessageType,
    SubmittedInfo,
    ZaloEventKind,
    ZaloEventReceived,
)


class InvalidEvent(ValueError):
    """A signed body that cannot be normalized; the message says why (without its content)."""


class _Raw(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True)


class _Party(_Raw):
    id: str
    admin_id: str | None = None


class _RawAttachment(_Raw):
    type: str
    payload: dict[str, Any] = Field(default_factory=dict)


class _RawMessage(_Raw):
    msg_id: str | None = None
    msg_ids: list[str] | None = None
    text: str | None = None
    attachments: list[_RawAttachment] = Field(default_factory=list)
    quote_msg_id: str | None = None
    react_icon: str | None = None
    conversation_id: str | None = None


class _RawBody(_Raw):
    app_id: str
    event_name: str
    timestamp: str
    oa_id: str | None = None
    user_id: str | None = None
    user_id_by_app: str | None = None
    group_id: str | None = None
    source: str | None = None
    sender: _Party | None = None
    recipient: _Party | None = None
    follower: _Party | None = None
    message: _RawMessage | None = None
    info: dict[str, Any] | None = None

    @field_validator("timestamp")
    @classmethod
    def _epoch_millis(cls, value: str) -> str:
        if not value.isdigit():
            raise ValueError("timestamp must be epoch milliseconds as a string of digits")
        return value


_EXACT_KINDS: dict[str, ZaloEventKind] = {
    "follow": ZaloEventKind.FOLLOW,
    "unfollow": ZaloEventKind.UNFOLLOW,
    "user_reacted_message": ZaloEventKind.REACTION,
    "oa_reacted_message": ZaloEventKind.REACTION,
    "user_received_message": ZaloEventKind.RECEIPT,
    "user_seen_message": ZaloEventKind.RECEIPT,
    "user_submit_info": ZaloEventKind.USER_INFO,
    "update_user_info": ZaloEventKind.USER_INFO,
    "user_click_chatnow": ZaloEventKind.CHAT_OPENED,
    "add_user_to_tag": ZaloEventKind.TAG,
    "remove_user_from_tag": ZaloEventKind.TAG,
    "remove_tag": ZaloEventKind.TAG,
    "user_withdraw": ZaloEventKind.PRIVACY_REQUEST,
    "permission_revoked": ZaloEventKind.SYSTEM,
}
# Group lifecycle names vary between sources (reference §2.3), so every known spelling maps.
_GROUP_EVENTS = {
    "create_group",
    "user_join_group",
    "user_request_join_group",
    "accept_request_join_group",
    "reject_request_join_group",
    "react_request_join_group",
    "react_request_join_group_accept",
    "add_group_admin",
    "remove_group_admin",
    "update_group_info",
    "user_out_group",
    "user_leave_group",
    "delete_group",
    "disperse_group",
}
_MESSAGE_PREFIXES: tuple[tuple[str, ZaloEventKind], ...] = (
    ("user_send_group_", ZaloEventKind.GROUP_MESSAGE),
    ("user_send_", ZaloEventKind.USER_MESSAGE),
    ("anonymous_send_", ZaloEventKind.USER_MESSAGE),
    ("oa_send_", ZaloEventKind.OA_MESSAGE),
)
_MESSAGE_TYPES = {member.value: member for member in MessageType}
# Kinds whose field names vary between sources (reference §2.3): consumers also get the body.
_UNCERTAIN_SHAPES = {ZaloEventKind.GROUP, ZaloEventKind.TAG, ZaloEventKind.SYSTEM}


def classify(event_name: str) -> tuple[ZaloEventKind, MessageType | None]:
    """The kind of an event name and, for messages, the message type it carries."""
    if event_name in _EXACT_KINDS:
        return _EXACT_KINDS[event_name], None
    if event_name in _GROUP_EVENTS:
        return ZaloEventKind.GROUP, None
    for prefix, kind in _MESSAGE_PREFIXES:
        if event_name.startswith(prefix):
            suffix = event_name.removeprefix(prefix)
            for strip in ("group_", "anonymous_"):
                suffix = suffix.removeprefix(strip)
            if suffix in _MESSAGE_TYPES:
                return kind, _MESSAGE_TYPES[suffix]
    return ZaloEventKind.UNKNOWN, None


def event_id_for(body: dict[str, Any]) -> str:
    """A stable id: from the message id where there is one, else from the identifying fields.

    Zalo's retries re-send the same body, so the same event always gets the same id; the event
    name is part of it because a receipt or reaction reuses the id of the message it is about.
    """
    message = body.get("message") if isinstance(body.get("message"), dict) else {}
    msg_id = message.get("msg_id") if isinstance(message, dict) else None
    if isinstance(msg_id, str) and msg_id:
        parts = [body.get("app_id"), body.get("event_name"), "msg", msg_id]
    else:
        parts = [
            body.get("app_id"),
            body.get("event_name"),
            body.get("timestamp"),
            _party_id(body.get("sender")),
            _party_id(body.get("recipient")),
            _party_id(body.get("follower")),
            body.get("user_id"),
            body.get("group_id"),
            body.get("oa_id"),
            ",".join(sorted(map(str, (message or {}).get("msg_ids") or []))),
        ]
    material = "\x1f".join("" if part is None else str(part) for part in parts)
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def occurred_at(timestamp_ms: str) -> datetime:
    return datetime.fromtimestamp(int(timestamp_ms) / 1000, UTC)


def normalize(body: dict[str, Any], received_at: datetime) -> ZaloEventReceived:
    """The canonical event for a parsed webhook body, or `InvalidEvent` saying what is wrong."""
    try:
        raw = _RawBody.model_validate(body)
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from None
    kind, message_type = classify(raw.event_name)
    common = _common_fields(raw, body, received_at)
    if kind is ZaloEventKind.UNKNOWN:
        return ZaloEventReceived(kind=kind, payload=body, **common)
    try:
        specific = _SPECIFIC[kind](raw)
        if kind in _UNCERTAIN_SHAPES:
            specific["payload"] = body
        return ZaloEventReceived(kind=kind, message_type=message_type, **(common | specific))
    except ValidationError as exc:
        raise InvalidEvent(_describe(exc)) from None


def _common_fields(raw: _RawBody, body: dict[str, Any], received_at: datetime) -> dict[str, Any]:
    return {
        "event_id": event_id_for(body),
        "event_name": raw.event_name,
        "occurred_at": occurred_at(raw.timestamp),
        "received_at": received_at,
        "app_id": raw.app_id,
        "oa_id": raw.oa_id,
        "user_id_by_app": raw.user_id_by_app,
        "sender_id": raw.sender.id if raw.sender else None,
        "sender_admin_id": raw.sender.admin_id if raw.sender else None,
        "recipient_id": raw.recipient.id if raw.recipient else None,
    }


def _require(value: Any, what: str) -> Any:
    if value is None or value == "":
        raise InvalidEvent(f"missing {what}")
    return value


def _message_fields(raw: _RawBody) -> dict[str, Any]:
    sender = _require(raw.sender, "sender")
    recipient = _require(raw.recipient, "recipient")
    message = _require(raw.message, "message")
    _require(message.msg_id, "message.msg_id")
    name = raw.event_name
    from_oa = name.startswith("oa_send_")
    in_group = name.startswith(("user_send_group_", "oa_send_group_"))
    citizen = None if in_group and from_oa else recipient.id if from_oa else sender.id
    oa_side = sender.id if from_oa else None if in_group else recipient.id
    return {
        "oa_id": raw.oa_id or oa_side,
        "user_id": citizen,
        "group_id": recipient.id if in_group else None,
        "is_anonymous": "anonymous" in name,
        "conversation_id": message.conversation_id,
        "message_id": message.msg_id,
        "quote_message_id": message.quote_msg_id,
        "text": message.text or None,
        "attachments": tuple(_attachment(item) for item in message.attachments),
    }


def _reaction_fields(raw: _RawBody) -> dict[str, Any]:
    sender = _require(raw.sender, "sender")
    recipient = _require(raw.recipient, "recipient")
    message = _require(raw.message, "message")
    by_user = raw.event_name.startswith("user_")
    return {
        "user_id": sender.id if by_user else recipient.id,
        "oa_id": raw.oa_id or (recipient.id if by_user else sender.id),
        "message_id": _require(message.msg_id, "message.msg_id"),
        "reaction": message.react_icon,
    }


def _receipt_fields(raw: _RawBody) -> dict[str, Any]:
    sender = _require(raw.sender, "sender")
    recipient = _require(raw.recipient, "recipient")
    message = _require(raw.message, "message")
    ids = tuple(message.msg_ids or ([message.msg_id] if message.msg_id else []))
    if not ids:
        raise InvalidEvent("missing message.msg_id or message.msg_ids")
    return {"user_id": recipient.id, "oa_id": raw.oa_id or sender.id, "message_ids": ids}


def _follow_fields(raw: _RawBody) -> dict[str, Any]:
    follower = _require(raw.follower, "follower")
    return {"user_id": follower.id, "source": raw.source}


def _user_info_fields(raw: _RawBody) -> dict[str, Any]:
    user = raw.sender.id if raw.sender else raw.user_id
    info = raw.info or {}
    nested = info.get("full_address")
    address: dict[str, Any] = nested if isinstance(nested, dict) else {}
    submitted = SubmittedInfo.model_validate(
        {
            "name": info.get("name"),
            "phone": info.get("phone"),
            "address": address.get("user_address") or info.get("address"),
            "ward": address.get("user_ward") or info.get("ward"),
            "district": address.get("user_district") or info.get("district"),
            "city": address.get("user_city") or info.get("city"),
        }
    )
    return {"user_id": _require(user, "sender"), "submitted_info": submitted}


def _user_fields(raw: _RawBody) -> dict[str, Any]:
    user = raw.user_id or (raw.sender.id if raw.sender else None)
    return {"user_id": user, "group_id": raw.group_id}


def _group_fields(raw: _RawBody) -> dict[str, Any]:
    return {**_user_fields(raw), "group_id": _require(raw.group_id, "group_id")}


_SPECIFIC = {
    ZaloEventKind.USER_MESSAGE: _message_fields,
    ZaloEventKind.GROUP_MESSAGE: _message_fields,
    ZaloEventKind.OA_MESSAGE: _message_fields,
    ZaloEventKind.REACTION: _reaction_fields,
    ZaloEventKind.RECEIPT: _receipt_fields,
    ZaloEventKind.FOLLOW: _follow_fields,
    ZaloEventKind.UNFOLLOW: _follow_fields,
    ZaloEventKind.USER_INFO: _user_info_fields,
    ZaloEventKind.CHAT_OPENED: _user_fields,
    ZaloEventKind.GROUP: _group_fields,
    ZaloEventKind.TAG: _user_fields,
    ZaloEventKind.PRIVACY_REQUEST: _user_fields,
    ZaloEventKind.SYSTEM: _user_fields,
}


def _attachment(raw: _RawAttachment) -> Attachment:
    payload = raw.payload
    coordinates = payload.get("coordinates") or {}
    if not isinstance(coordinates, dict):
        raise InvalidEvent("attachment coordinates must be an object")
    return Attachment(
        type=raw.type,
        url=_text(payload, "url"),
        thumbnail=_text(payload, "thumbnail"),
        description=_text(payload, "description"),
        latitude=_number(coordinates.get("latitude"), "latitude", -90, 90),
        longitude=_number(coordinates.get("longitude"), "longitude", -180, 180),
        file_name=_text(payload, "name"),
        file_size=_size(payload.get("size")),
        file_type=_text(payload, "type"),
        checksum=_text(payload, "checksum"),
        sticker_id=_text(payload, "id"),
    )


def _text(payload: dict[str, Any], key: str) -> str | None:
    value = payload.get(key)
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise InvalidEvent(f"attachment {key} must be a string")
    return value


def _number(value: Any, what: str, low: float, high: float) -> float | None:
    if value is None or value == "":
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise InvalidEvent(f"{what} is not a number") from None
    if not low <= number <= high:
        raise InvalidEvent(f"{what} out of range")
    return number


def _size(value: Any) -> int | None:
    if value is None or value == "":
        return None
    if isinstance(value, int) or (isinstance(value, str) and value.isdigit()):
        return int(value)
    raise InvalidEvent("attachment size is not a whole number")


def _party_id(value: Any) -> str | None:
    return value.get("id") if isinstance(value, dict) else None


def _describe(exc: ValidationError) -> str:
    """Field paths and error types only: the values may be personal data."""
    problems = [
        f"{'.'.join(str(part) for part in error['loc']) or 'body'}: {error['type']}"
        for error in exc.errors()[:5]
    ]
    return "invalid shape: " + "; ".join(problems)
