"""Small builders for broadcast tests."""

import asyncio
import json
from datetime import UTC, datetime
from typing import Any

from services.broadcast.domain import Notice, NoticeStatus
from shared.auth import token_digest
from tests.polling import eventually

STAFF = {
    "editor-token-1": {"id": "u-editor", "name": "Biên tập", "roles": ["editor"]},
    "editor-token-2": {"id": "u-editor2", "name": "Biên tập 2", "roles": ["editor"]},
    "approver-token": {"id": "u-approver", "name": "Duyệt", "roles": ["approver", "editor"]},
    "officer-token": {"id": "u-officer", "name": "Cán bộ", "roles": ["officer"]},
    "ward-officer-token": {
        "id": "u-ward-officer",
        "name": "Cán bộ phường",
        "roles": ["officer"],
        "wards": ["dong-hai"],
    },
    "admin-token": {"id": "u-admin", "name": "Quản trị", "roles": ["admin"]},
    "registrar-token": {"id": "u-registrar", "name": "Sổ nhóm", "roles": ["registrar"]},
}
EDITOR = {"Authorization": "Bearer editor-token-1"}
APPROVER = {"Authorization": "Bearer approver-token"}
OFFICER = {"Authorization": "Bearer officer-token"}
ADMIN = {"Authorization": "Bearer admin-token"}
REGISTRAR = {"Authorization": "Bearer registrar-token"}


def staff_tokens_json() -> str:
    return json.dumps({token_digest(t): user for t, user in STAFF.items()})


def groups_csv(rows: list[dict[str, Any]]) -> str:
    header = (
        "group_id,name,ward,hamlet,member_count,households,officer_id,officer_name,"
        "channel,active,is_test"
    )
    lines = [header]
    for r in rows:
        lines.append(",".join(str(r.get(k, "")) for k in header.split(",")))
    return "\n".join(lines) + "\n"


def group_row(group_id: str, ward: str = "dong-hai", **extra: Any) -> dict[str, Any]:
    return {
        "group_id": group_id,
        "name": f"Nhóm {group_id[-4:]}",
        "ward": ward,
        "member_count": 50,
        "channel": "oa",
        "active": "1",
        **extra,
    }


def notice_body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "title": "Cảnh báo lừa đảo qua mạng",
        "body": "Đối tượng giả danh công an gọi điện yêu cầu chuyển tiền. Không chuyển tiền!",
        "category": "fraud_warning",
        "severity": "Severe",
        "urgency": "Expected",
        "certainty": "Likely",
        "targets": {"wards": ["dong-hai"]},
    }
    return body | overrides


async def add_groups(
    h: Any, count: int, ward: str = "dong-hai", prefix: str = "7", **row: Any
) -> list[str]:
    """Groups known to the fake Zalo server and imported into the registry."""
    from services.broadcast.groups import WARDS

    ward_no = list(WARDS).index(ward)
    ids = [f"{prefix}{ward_no:02d}{i:06d}" for i in range(count)]
    h.fake.admin.seed(groups=[{"group_id": g, "name": f"Tổ {g[-4:]}"} for g in ids])
    csv = groups_csv([group_row(g, ward=ward, **row) for g in ids])
    response = await h.http.post("/groups/import", content=csv, headers=REGISTRAR)
    assert response.status_code == 200, response.text
    return ids


async def progress(h: Any, notice_id: str) -> dict[str, Any]:
    response = await h.http.get(f"/notices/{notice_id}", headers=EDITOR)
    assert response.status_code == 200, response.text
    view: dict[str, Any] = response.json()
    return view


async def wait_settled(
    h: Any, notice_id: str, total: int, timeout: float = 60.0, interval: float = 0.1
) -> dict[str, int]:
    """Wait until `total` deliveries of a notice are in a final state; returns the counts."""

    last: dict[str, int] = {}

    async def settled() -> dict[str, int] | None:
        nonlocal last
        last = (await progress(h, notice_id))["progress"]["counts"]
        final = sum(last.get(s, 0) for s in ("sent", "failed", "cancelled"))
        return last if final == total else None

    try:
        result: dict[str, int] = await eventually(settled, timeout=timeout, interval=interval)
    except AssertionError as exc:
        raise AssertionError(f"notice {notice_id} not settled: {last}, want {total}") from exc
    return result


def group_texts(h: Any) -> list[tuple[str, str]]:
    return [(m["group_id"], m.get("text", "")) for m in h.fake.admin.messages("group")]


async def publish_zalo_event(js: Any, kind: str, event_name: str, **fields: Any) -> str:
    """Publish a normalized Zalo event as ingest would (`Nats-Msg-Id` = event id)."""
    import uuid
    from datetime import UTC, datetime

    from shared.events.zalo import ZaloEventReceived
    from shared.subjects import zalo_event_subject

    now = datetime.now(UTC)
    event = ZaloEventReceived(
        event_id=uuid.uuid4().hex,
        occurred_at=now,
        received_at=now,
        app_id="360846524940903967",
        kind=kind,
        event_name=event_name,
        **fields,
    )
    await js.publish(
        zalo_event_subject(kind),
        event.model_dump_json().encode(),
        headers={"Nats-Msg-Id": event.event_id},
    )
    return event.event_id


def settings_env(settings: Any) -> dict[str, str]:
    """Environment variables that rebuild `settings` in a child process."""
    import json as _json
    import os

    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is None:
            continue
        env[name.upper()] = value if isinstance(value, str) else _json.dumps(value)
    return env


async def bridge_echoes(h: Any, stop: asyncio.Event, interval: float = 0.2) -> int:
    """Play Zalo's `oa_send_group_text` echo webhooks (as ingest publishes them) for every
    group message the fake server accepted, until `stop` is set; returns how many."""
    seen: set[str] = set()
    while True:
        done = stop.is_set()
        messages = await asyncio.to_thread(h.fake.admin.messages, "group")
        for message in messages:
            if message["message_id"] in seen:
                continue
            seen.add(message["message_id"])
            await publish_zalo_event(
                h.service.js,
                "oa_message",
                "oa_send_group_text",
                group_id=message["group_id"],
                recipient_id=message["group_id"],
                message_id=message["message_id"],
                text=message.get("text"),
            )
        if done:
            return len(seen)
        await asyncio.sleep(interval)


def stored_notice(**overrides: Any) -> Notice:
    """A notice as the store holds it, for the decision cores' unit tests."""
    at = datetime(2026, 12, 4, 7, 59, tzinfo=UTC)
    values: dict[str, Any] = {
        **notice_body(),
        "id": "n1",
        "status": NoticeStatus.DISPATCHED,
        "verification_code": "CA-ABC123",
        "created_by": "u-editor",
        "created_at": at,
        "release_at": at,
        **overrides,
    }
    return Notice.model_validate(values)
