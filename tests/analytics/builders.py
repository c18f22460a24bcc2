"""Small builders for analytics tests."""

import uuid
from datetime import UTC, datetime
from typing import Any

from shared.events.zalo import ZaloEventKind, ZaloEventReceived

EVENT_NAMES = {
    ZaloEventKind.FOLLOW: "follow",
    ZaloEventKind.UNFOLLOW: "unfollow",
    ZaloEventKind.USER_MESSAGE: "user_send_text",
    ZaloEventKind.GROUP_MESSAGE: "user_send_group_text",
    ZaloEventKind.OA_MESSAGE: "oa_send_text",
    ZaloEventKind.GROUP: "user_join_group",
}


def zalo_event(kind: ZaloEventKind, at: datetime | None = None, **fields: Any) -> ZaloEventReceived:
    at = at or datetime(2026, 11, 20, 3, 0, tzinfo=UTC)
    values: dict[str, Any] = {
        "event_id": uuid.uuid4().hex,
        "occurred_at": at,
        "received_at": at,
        "kind": kind,
        "event_name": EVENT_NAMES.get(kind, str(kind)),
        "app_id": "360846524940903967",
        "user_id": "246845883529197922",
    }
    return ZaloEventReceived.model_validate(values | fields)
