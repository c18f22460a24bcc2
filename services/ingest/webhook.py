"""`POST /webhooks/zalo`: verify, normalize, publish — and answer Zalo within its 2 s.

Order matters: the size limit and the signature come before anything in the body is trusted.
Unsigned, wrongly signed, stale or oversized requests are refused (401/413) with nothing
published. A signed body that cannot be normalized is quarantined and still answered 200,
since an error would make Zalo retry it for hours and then disable the webhook.
"""

import hashlib
import json
import logging
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.ingest.normalize import InvalidEvent, normalize
from services.ingest.publisher import EventPublisher, Outcome
from services.ingest.settings import IngestSettings
from shared.events.quarantine import WebhookQuarantined
from shared.subjects import ZALO_QUARANTINE, zalo_event_subject
from shared.zalo.signature import SIGNATURE_HEADER, is_valid

log = logging.getLogger(__name__)


class Refused(Exception):
    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail)
        self.status, self.error, self.detail = status, error, detail

    def response(self) -> JSONResponse:
        return JSONResponse({"error": self.error, "detail": self.detail}, status_code=self.status)


def build_router(
    settings: IngestSettings, publisher: EventPublisher, counts: Counter[str]
) -> APIRouter:
    router = APIRouter(tags=["webhook"])

    @router.post("/webhooks/zalo")
    async def receive_zalo_event(request: Request) -> JSONResponse:
        counts["received"] += 1
        try:
            raw = await _read_limited(request, settings.max_body_bytes)
            body = _verified_body(raw, request.headers.get(SIGNATURE_HEADER), settings)
        except Refused as refusal:
            counts[f"refused_{refusal.error}"] += 1
            log.info("webhook refused", extra={"reason": refusal.error})
            return refusal.response()
        try:
            event = normalize(body, datetime.now(UTC))
        except InvalidEvent as exc:
            await _quarantine(publisher, raw, body, str(exc))
            counts["quarantined"] += 1
            return JSONResponse({"status": "quarantined"})
        outcome = await publisher.accept(
            event.event_id,
            zalo_event_subject(event.kind),
            event.model_dump_json(exclude_defaults=True).encode(),
        )
        counts[outcome.value] += 1
        return JSONResponse({"status": outcome.value, "event_id": event.event_id})

    return router


async def _read_limited(request: Request, limit: int) -> bytes:
    """The raw body, refusing (413) anything over `limit` without holding more than that."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise Refused(413, "body_too_large", f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise Refused(413, "body_too_large", f"body larger than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _verified_body(raw: bytes, header: str | None, settings: IngestSettings) -> dict[str, Any]:
    if not header:
        raise Refused(401, "missing_signature", f"{SIGNATURE_HEADER} header is required")
    try:
        body = json.loads(raw)
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise Refused(401, "unverifiable", "body is not JSON, so it cannot be verified") from None
    app_id = body.get("app_id") if isinstance(body, dict) else None
    timestamp = body.get("timestamp") if isinstance(body, dict) else None
    if not isinstance(app_id, str) or not isinstance(timestamp, str) or not timestamp.isdigit():
        raise Refused(401, "unverifiable", "app_id and timestamp are needed to verify the body")
    if app_id != settings.zalo_app_id or not is_valid(
        header, app_id, raw, timestamp, settings.zalo_oa_secret_key
    ):
        raise Refused(401, "invalid_signature", "signature does not match")
    _check_freshness(int(timestamp) / 1000, settings)
    assert isinstance(body, dict)
    return body


def _check_freshness(sent_at: float, settings: IngestSettings) -> None:
    age = time.time() - sent_at
    if age > settings.max_event_age_s:
        raise Refused(401, "stale", "event timestamp is too old")
    if -age > settings.max_future_skew_s:
        raise Refused(401, "from_future", "event timestamp is in the future")


async def _quarantine(
    publisher: EventPublisher, raw: bytes, body: dict[str, Any], reason: str
) -> Outcome:
    digest = hashlib.sha256(raw).hexdigest()[:32]
    name = body.get("event_name")
    record = WebhookQuarantined(
        event_id=f"q-{digest}",
        occurred_at=datetime.now(UTC),
        reason=reason,
        event_name=name if isinstance(name, str) else None,
        body=raw.decode("utf-8", errors="replace"),
    )
    log.warning("webhook quarantined", extra={"reason": reason, "event_id": record.event_id})
    return await publisher.accept(
        record.event_id, ZALO_QUARANTINE, record.model_dump_json().encode()
    )
