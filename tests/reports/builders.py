"""Builders for reports tests: message events, staff tokens, stream reading."""

import json
import uuid
from datetime import UTC, datetime
from typing import Any

from nats.js import JetStreamContext

from services.reports.cases import Case
from shared.auth import token_digest
from shared.events.tips import CaseStatus, TipCategory, TipKind, TipPriority
from shared.events.zalo import Attachment, MessageType, ZaloEventKind, ZaloEventReceived

APP_ID = "360846524940903967"
CITIZEN = "246845883529197922"  # the raw Zalo id of the fixture webhooks
NEIGHBOUR = "246845883529197555"

STAFF = {
    "t-qp": {
        "id": "d-qp",
        "name": "Trực ban Quang Phú",
        "roles": ["dispatcher"],
        "wards": ["quang-phu"],
    },
    "t-bl": {"id": "d-bl", "name": "Trực ban Bắc Lý", "roles": ["dispatcher"], "wards": ["bac-ly"]},
    "t-dh": {
        "id": "d-dh",
        "name": "Trực ban Đồng Hới",
        "roles": ["dispatcher"],
        "wards": ["dong-hoi"],
    },
    "t-admin": {"id": "a-1", "name": "Quản trị", "roles": ["admin"], "wards": []},
    "t-analyst": {"id": "an-1", "name": "Phân tích", "roles": ["analyst"], "wards": ["quang-phu"]},
}


def staff_tokens_json() -> str:
    return json.dumps({token_digest(token): user for token, user in STAFF.items()})


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def message(
    user_id: str = CITIZEN,
    text: str | None = None,
    *,
    message_type: MessageType = MessageType.TEXT,
    attachments: tuple[Attachment, ...] = (),
    group_id: str | None = None,
    at: datetime | None = None,
    event_id: str | None = None,
) -> ZaloEventReceived:
    """A normalized message event as ingest publishes it."""
    when = at or datetime.now(UTC)
    kind = ZaloEventKind.GROUP_MESSAGE if group_id else ZaloEventKind.USER_MESSAGE
    return ZaloEventReceived(
        event_id=event_id or f"zev-{uuid.uuid4().hex}",
        occurred_at=when,
        kind=kind,
        event_name="user_send_group_text" if group_id else "user_send_text",
        received_at=when,
        app_id=APP_ID,
        user_id=user_id,
        sender_id=user_id,
        group_id=group_id,
        recipient_id=group_id or "388613280878808645",
        message_id=uuid.uuid4().hex[:20],
        message_type=message_type,
        text=text,
        attachments=attachments,
    )


def photo(user_id: str = CITIZEN, **kw: Any) -> ZaloEventReceived:
    image = Attachment(type="image", url="https://photo-stal.zdn.vn/example/large.jpg")
    return message(user_id, None, message_type=MessageType.IMAGE, attachments=(image,), **kw)


def location(user_id: str = CITIZEN, **kw: Any) -> ZaloEventReceived:
    pin = Attachment(type="location", latitude=17.4689, longitude=106.6223)
    return message(user_id, None, message_type=MessageType.LOCATION, attachments=(pin,), **kw)


async def stream_payloads(js: JetStreamContext, stream: str) -> list[bytes]:
    """Every message body stored in a stream."""
    info = await js.stream_info(stream)
    bodies = []
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        msg = await js.get_msg(stream, seq)
        bodies.append(msg.data or b"")
    return bodies


CASE_AT = datetime(2026, 11, 29, 4, 0, tzinfo=UTC)


def make_case(status: CaseStatus = CaseStatus.NEW, **changes: object) -> Case:
    values: dict[str, object] = {
        "id": "c1",
        "ref": "BY-AAAAAA",
        "kind": TipKind.TIP,
        "category": TipCategory.THEFT,
        "priority": TipPriority.NORMAL,
        "ward": "quang-phu",
        "ward_source": "text",
        "status": status,
        "tipster": "p-0123456789abcdef",
        "channel": "oa",
        "created_at": CASE_AT,
        "updated_at": CASE_AT,
        "last_message_at": CASE_AT,
    }
    return Case.model_validate(values | changes)
