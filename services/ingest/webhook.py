"""`POST /webhooks/zalo`: verify, normalize, publish — and answer Zalo within its 2 s.

Order matters: the size limit and the signature come before anything in the body is trusted.
Unsigned, wrongly signed, stale or oversized requests are refused (401/413) with nothing
published. A signed body that cannot be normalized is quarantined and still answered 200,
since an error would make Zalo retry it for hours and then disable the webhook.

The endpoint is a plain ASGI app: every webhook is one request, and FastAPI's per-request
machinery (middleware, routing, dependency solving, Request and JSONResponse objects) cost
more CPU than verifying, normalizing and publishing together (docs/benchmarks.md). FastAPI
still lists and documents the route (`WebhookRoute`); `IngestApp` hands the path straight to
the endpoint.
"""

import hashlib
import json
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from fastapi.routing import APIRoute
from pydantic import BaseModel
from starlette.types import ASGIApp, Receive, Scope, Send

from services.ingest import metrics
from services.ingest.normalize import InvalidEvent, normalize
from services.ingest.publisher import EventPublisher
from services.ingest.settings import IngestSettings
from shared.errors import ErrorBody, ServiceError, error_body
from shared.events.envelope import event_bytes
from shared.events.quarantine import WebhookQuarantined
from shared.metrics import BATCHED
from shared.subjects import ZALO_QUARANTINE, zalo_event_subject
from shared.zalo.signature import SIGNATURE_HEADER, is_valid

log = logging.getLogger(__name__)

WEBHOOK_PATH = "/webhooks/zalo"

_SIGNATURE = SIGNATURE_HEADER.lower().encode("latin-1")
_JSON_CONTENT = (b"content-type", b"application/json")
# JSONResponse's settings, built once: `json.dumps` with any non-default argument builds a new
# encoder on every call, which was a visible share of a webhook's cost.
_JSON = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


class WebhookAnswer(BaseModel):
    """What ingest answers Zalo (200): the event is on JetStream, was already there, is
    spooled on disk until NATS is back, or was quarantined."""

    status: Literal["published", "duplicate", "spooled", "quarantined"]
    event_id: str | None = None


class Refused(ServiceError):
    """A webhook call refused before anything is published (`error`: why, for the counters)."""

    def __init__(self, status: int, error: str, detail: str) -> None:
        super().__init__(detail, status, error)


class _ClientGone(Exception):
    """The client disconnected before its body arrived: there is nobody to answer."""


class WebhookEndpoint:
    """The ASGI app behind `POST /webhooks/zalo`."""

    def __init__(self, settings: IngestSettings, publisher: EventPublisher) -> None:
        self._settings = settings
        self._publisher = publisher

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["method"] != "POST":
            body = error_body("Method Not Allowed", error="method_not_allowed")
            metrics.webhook_answered("405", "method_not_allowed").inc()
            await _send_json(send, 405, body, ((b"allow", b"POST"),))
            return
        signature: str | None = None
        declared: bytes | None = None
        for name, value in scope["headers"]:
            if name == _SIGNATURE and signature is None:
                signature = value.decode("latin-1")
            elif name == b"content-length" and declared is None:
                declared = value
        try:
            raw = await _read_limited(receive, declared, self._settings.max_body_bytes)
        except _ClientGone:
            return
        except Refused as refusal:
            await _send_json(send, *self._refused(refusal))
            return
        await _send_json(send, *await self.answer(raw, signature))

    async def answer(self, raw: bytes, signature: str | None) -> tuple[int, dict[str, Any] | bytes]:
        """The status and JSON body for a webhook's raw bytes and signature header."""
        verdict = decide(raw, signature, self._settings, datetime.now(UTC))
        if isinstance(verdict, Refused):
            return self._refused(verdict)
        if isinstance(verdict, Quarantine):
            log.warning(
                "webhook quarantined",
                extra={"reason": verdict.reason, "event_id": verdict.event_id},
            )
            await self._publisher.accept(verdict.event_id, ZALO_QUARANTINE, verdict.data)
            metrics.webhook_answered("200", "quarantined").inc()
            return 200, {"status": "quarantined"}
        outcome = await self._publisher.accept(verdict.event_id, verdict.subject, verdict.data)
        BATCHED.inc(metrics.webhook_answered("200", outcome.value))
        if log.isEnabledFor(logging.DEBUG):  # one line per event only when asked for
            log.debug("webhook accepted", extra={"event_id": verdict.event_id, "outcome": outcome})
        return 200, _accepted(outcome.value, verdict.event_id)

    def _refused(self, refusal: Refused) -> tuple[int, dict[str, Any]]:
        metrics.webhook_answered(str(refusal.status), refusal.error).inc()
        log.info("webhook refused", extra={"reason": refusal.error})
        return refusal.status, error_body(refusal.detail, error=refusal.error)


async def receive_zalo_event() -> WebhookAnswer:
    """Receive a Zalo OA webhook event.

    Verified (signature, then a timestamp within 24 h in the past and 5 min in the future),
    normalized and published to JetStream under `zalo.event.<kind>`, answered 200 once
    JetStream acknowledged it (or, with NATS away, once it is spooled on disk). A signed body
    that cannot be normalized is quarantined and also answered 200.
    """
    # FastAPI documents the route from this function; `WebhookRoute` serves it with
    # `WebhookEndpoint`, so a call arriving here means the route was wired wrongly.
    raise RuntimeError("POST /webhooks/zalo is served by WebhookEndpoint")


_OPENAPI_REQUEST = {
    "parameters": [
        {
            "name": SIGNATURE_HEADER,
            "in": "header",
            "required": True,
            "schema": {"type": "string"},
            "description": "`mac=` + SHA-256 hex of app id + raw body + timestamp + OA secret key.",
        }
    ],
    "requestBody": {
        "required": True,
        "description": "A Zalo OA webhook event, exactly as Zalo sends it (at most 256 KiB).",
        "content": {
            "application/json": {
                "schema": {
                    "type": "object",
                    "required": ["app_id", "event_name", "timestamp"],
                    "properties": {
                        "app_id": {"type": "string"},
                        "event_name": {"type": "string"},
                        "timestamp": {"type": "string", "description": "epoch milliseconds"},
                    },
                    "additionalProperties": True,
                }
            }
        },
    },
}


class WebhookRoute(APIRoute):
    """The webhook as FastAPI lists and documents it, answered by the lean `WebhookEndpoint`
    instead of FastAPI's request handling."""

    def __init__(self, endpoint: ASGIApp) -> None:
        super().__init__(
            WEBHOOK_PATH,
            receive_zalo_event,
            methods=["POST"],
            tags=["webhook"],
            openapi_extra=_OPENAPI_REQUEST,
            responses={
                # The one error body; nothing was published.
                401: {"model": ErrorBody, "description": "Unsigned, wrongly signed or stale"},
                413: {"model": ErrorBody, "description": "Body over the size limit"},
            },
        )
        self.app = endpoint


async def _read_limited(receive: Receive, declared: bytes | None, limit: int) -> bytes:
    """The raw body, refusing (413) anything over `limit` without holding more than that."""
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise Refused(413, "body_too_large", f"body larger than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] != "http.request":
            raise _ClientGone
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise Refused(413, "body_too_large", f"body larger than {limit} bytes")
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


def _accepted(status: str, event_id: str) -> bytes:
    """`{"status": status, "event_id": event_id}` exactly as `_JSON` renders it, without the
    encoder (a visible share of a webhook's cost): both are ingest's own ASCII words and hex
    digests, which JSON writes as they are; anything else still goes through the encoder."""
    if status.isalpha() and event_id.isascii() and event_id.replace("-", "").isalnum():
        return f'{{"status":"{status}","event_id":"{event_id}"}}'.encode()
    return _JSON.encode({"status": status, "event_id": event_id}).encode()


async def _send_json(
    send: Send,
    status: int,
    content: dict[str, Any] | bytes,
    headers: tuple[tuple[bytes, bytes], ...] = (),
) -> None:
    """Rendered as FastAPI's JSONResponse renders it (`content` may be rendered already)."""
    body = content if isinstance(content, bytes) else _JSON.encode(content).encode()
    start_headers = [(b"content-length", str(len(body)).encode()), _JSON_CONTENT, *headers]
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


def _verified_body(raw: bytes, header: str | None, settings: IngestSettings) -> dict[str, Any]:
    if not header:
        raise Refused(401, "missing_signature", f"{SIGNATURE_HEADER} header is required")
    try:
        body = json.loads(raw)
    # ValueError: not JSON, or an integer over Python's 4,300 digits; RecursionError: nesting
    # deeper than the parser's stack. Unsigned or not, nothing can be verified.
    except (UnicodeDecodeError, ValueError, RecursionError):
        raise Refused(401, "unverifiable", "body is not JSON, so it cannot be verified") from None
    app_id = body.get("app_id") if isinstance(body, dict) else None
    timestamp = body.get("timestamp") if isinstance(body, dict) else None
    if not isinstance(app_id, str) or not isinstance(timestamp, str) or not _is_epoch_ms(timestamp):
        raise Refused(401, "unverifiable", "app_id and timestamp are needed to verify the body")
    if app_id != settings.zalo_app_id or not is_valid(
        header, app_id, raw, timestamp, settings.zalo_oa_secret_key
    ):
        raise Refused(401, "invalid_signature", "signature does not match")
    _check_freshness(int(timestamp) / 1000, settings)
    assert isinstance(body, dict)
    return body


def _is_epoch_ms(timestamp: str) -> bool:
    """ASCII digits only, and few enough to be a time: `"²²²".isdigit()` is true but int()
    refuses it, and 400 digits overflow a float."""
    return 0 < len(timestamp) <= 15 and timestamp.isascii() and timestamp.isdigit()


def _check_freshness(sent_at: float, settings: IngestSettings) -> None:
    age = time.time() - sent_at
    if age > settings.max_event_age_s:
        raise Refused(401, "stale", "event timestamp is too old")
    if -age > settings.max_future_skew_s:
        raise Refused(401, "from_future", "event timestamp is in the future")


@dataclass(frozen=True)
class Publish:
    event_id: str
    subject: str
    data: bytes


@dataclass(frozen=True)
class Quarantine:
    event_id: str
    reason: str
    data: bytes


def decide(
    raw: bytes, signature: str | None, settings: IngestSettings, now: datetime
) -> Refused | Quarantine | Publish:
    """What to do with a webhook, without I/O: refuse it (401), quarantine it, or publish it.
    Never raises: Zalo retries a 500 for hours and then disables the webhook, so a signed body
    that breaks anything past the signature (a lone surrogate JSON cannot carry to NATS, a
    number or nesting a model cannot take) is quarantined rather than answered 500."""
    try:
        body = _verified_body(raw, signature, settings)
    except Refused as refusal:
        return refusal
    try:
        event = normalize(body, now)
        return Publish(event.event_id, zalo_event_subject(event.kind), event_bytes(event))
    except InvalidEvent as exc:
        return quarantine(raw, body, str(exc), now)
    except Exception as exc:  # any other failure on a verified body: kept, not lost, not 500
        return quarantine(raw, body, f"unusable body: {type(exc).__name__}", now)


def quarantine(raw: bytes, body: dict[str, Any], reason: str, now: datetime) -> Quarantine:
    digest = hashlib.sha256(raw).hexdigest()[:32]
    name = body.get("event_name")
    record = WebhookQuarantined(
        event_id=f"q-{digest}",
        occurred_at=now,
        reason=_utf8(reason)[:500],
        event_name=_utf8(name)[:200] if isinstance(name, str) else None,
        body=raw.decode("utf-8", errors="replace"),
    )
    return Quarantine(record.event_id, record.reason, event_bytes(record))


def _utf8(text: str) -> str:
    """Text JSON can carry to NATS: lone surrogates (valid in a JSON escape, not in UTF-8)
    become "?"."""
    return text.encode("utf-8", errors="replace").decode("utf-8")
