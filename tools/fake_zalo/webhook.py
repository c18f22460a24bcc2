"""The fake's webhook side: build Zalo-shaped events (§2.5) and deliver them signed (§3).

Delivery follows Zalo: a POST with `X-ZEvent-Signature: mac=...`; anything but HTTP 200 within
the timeout is a failure, retried on a (compressed) ladder with a `num_retry` header, after
which the webhook counts as disabled.
"""

import asyncio
import json
import time
from typing import Any

import httpx

from shared.zalo.signature import SIGNATURE_HEADER, sign

USER_TO_OA = {
    "user_send_text",
    "user_send_image",
    "user_send_link",
    "user_send_audio",
    "user_send_video",
    "user_send_sticker",
    "user_send_gif",
    "user_send_location",
    "user_send_business_card",
    "user_send_file",
}


def build_event(
    event_name: str,
    *,
    app_id: str,
    oa_id: str,
    user_id: str,
    msg_id: str | None = None,
    text: str | None = None,
    latitude: float | None = None,
    longitude: float | None = None,
    image_url: str | None = None,
    group_id: str | None = None,
    msg_ids: list[str] | None = None,
    timestamp_ms: int | None = None,
) -> dict[str, Any]:
    """A webhook body as Zalo sends it: string ids, epoch-ms string timestamp."""
    timestamp = str(timestamp_ms if timestamp_ms is not None else int(time.time() * 1000))
    base: dict[str, Any] = {"app_id": app_id, "event_name": event_name, "timestamp": timestamp}
    if event_name in {"follow", "unfollow"}:
        return base | {
            "oa_id": oa_id,
            "follower": {"id": user_id},
            "user_id_by_app": f"9{user_id[1:]}",
            "source": "oa_profile",
        }
    message: dict[str, Any] = {"msg_id": msg_id or f"msg{time.time_ns()}"}
    if event_name in {"user_seen_message", "user_received_message"}:
        seen = {"msg_ids": msg_ids or [message["msg_id"]]}
        receipt = seen if event_name == "user_seen_message" else {"msg_id": message["msg_id"]}
        return base | {"sender": {"id": oa_id}, "recipient": {"id": user_id}, "message": receipt}
    if text is not None:
        message["text"] = text
    if latitude is not None and longitude is not None:
        coordinates = {"latitude": str(latitude), "longitude": str(longitude)}
        message["attachments"] = [{"type": "location", "payload": {"coordinates": coordinates}}]
        message.setdefault("text", "")
    if image_url is not None:
        payload = {"url": image_url, "thumbnail": image_url}
        message["attachments"] = [{"type": "image", "payload": payload}]
    recipient = group_id if event_name.startswith("user_send_group_") and group_id else oa_id
    return base | {
        "user_id_by_app": f"9{user_id[1:]}",
        "sender": {"id": user_id},
        "recipient": {"id": recipient},
        "message": message,
    }


def encode(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, ensure_ascii=False, separators=(",", ":")).encode()


async def deliver(
    url: str,
    body: bytes,
    *,
    app_id: str,
    timestamp: str,
    secret: str,
    ladder: list[float],
    timeout: float,
    bad_signature: bool = False,
) -> dict[str, Any]:
    """POST one event, retrying on Zalo's ladder; the list of attempts and the final outcome."""
    signature = sign(app_id, body, timestamp, "wrong-" + secret if bad_signature else secret)
    attempts: list[dict[str, Any]] = []
    async with httpx.AsyncClient(timeout=timeout) as http:
        for number in range(len(ladder) + 1):
            if number:
                await asyncio.sleep(ladder[number - 1])
            headers = {SIGNATURE_HEADER: signature, "Content-Type": "application/json"}
            if number:
                headers["num_retry"] = str(number)
            attempts.append(await _attempt(http, url, body, headers))
            if attempts[-1]["status"] == 200:
                return {"delivered": True, "disabled": False, "attempts": attempts}
    return {"delivered": False, "disabled": True, "attempts": attempts}


async def _attempt(
    http: httpx.AsyncClient, url: str, body: bytes, headers: dict[str, str]
) -> dict[str, Any]:
    started = time.monotonic()
    try:
        response = await http.post(url, content=body, headers=headers)
    except httpx.HTTPError as exc:
        return {"status": None, "error": type(exc).__name__, "seconds": time.monotonic() - started}
    return {"status": response.status_code, "seconds": time.monotonic() - started}
