"""Request validation shared by the fake's endpoints, answering as Zalo does (`-201 <field>`).

Zalo reports a bad payload as HTTP 200, `error` -201 and the message "<field> is invalid!";
a parameter over its limit is -210, an unsupported message type -233.
"""

import json
import unicodedata
from typing import Any

from fastapi import Request

from tools.fake_zalo.state import FakeApiError, FakeState

MAX_TEXT = 2000


def invalid(field: str) -> FakeApiError:
    return FakeApiError(-201, f"{field} is invalid!")


def state_of(request: Request) -> FakeState:
    state: FakeState = request.app.state.fake
    return state


def authorize(request: Request) -> FakeState:
    """The state, after checking the bare `access_token` header (never `Authorization`)."""
    state = state_of(request)
    state.check_access(request.headers.get("access_token"))
    return state


def parse_object(raw: bytes) -> dict[str, Any]:
    """A request body that must be a JSON object; otherwise -201 `body is invalid!`."""
    try:
        body = json.loads(raw or b"null")
    except ValueError as exc:
        raise invalid("body") from exc
    if not isinstance(body, dict):
        raise invalid("body")
    return body


async def json_object(request: Request) -> dict[str, Any]:
    return parse_object(await request.body())


def data_param(request: Request) -> dict[str, Any]:
    """The URL-encoded JSON `data=` query parameter of the OA GET endpoints."""
    raw = request.query_params.get("data")
    if raw is None:
        raise invalid("data")
    try:
        value = json.loads(raw)
    except ValueError as exc:
        raise invalid("data") from exc
    if not isinstance(value, dict):
        raise invalid("data")
    return value


def obj(container: dict[str, Any], key: str) -> dict[str, Any]:
    value = container.get(key)
    if not isinstance(value, dict):
        raise invalid(key)
    return value


def text_id(container: dict[str, Any], key: str) -> str:
    """A numeric-string id field (Zalo ids are strings of digits)."""
    value = container.get(key)
    if isinstance(value, int) and not isinstance(value, bool):
        value = str(value)
    if not isinstance(value, str) or not value.isdigit():
        raise invalid(key)
    return value


def message_text(message: dict[str, Any]) -> str:
    value = message.get("text")
    if not isinstance(value, str) or not value.strip():
        raise invalid("text")
    if len(unicodedata.normalize("NFC", value)) > MAX_TEXT:
        raise invalid("text")
    return value


def media_element(message: dict[str, Any], media_type: str) -> dict[str, Any]:
    """The single element of a `template`/`media` attachment of the given media type."""
    attachment = obj(message, "attachment")
    if attachment.get("type") != "template":
        raise FakeApiError(-233, "message type is invalid or not support")
    payload = obj(attachment, "payload")
    if payload.get("template_type") != "media":
        raise invalid("template_type")
    elements = payload.get("elements")
    if not isinstance(elements, list) or len(elements) != 1 or not isinstance(elements[0], dict):
        raise invalid("elements")
    element: dict[str, Any] = elements[0]
    if element.get("media_type") != media_type:
        raise invalid("media_type")
    has_url = isinstance(element.get("url"), str) and element["url"].startswith("http")
    has_id = isinstance(element.get("attachment_id"), str) and bool(element["attachment_id"])
    if has_url == has_id:
        raise invalid("url" if media_type == "image" else "attachment_id")
    return element


def content_of(message: dict[str, Any], state: FakeState) -> dict[str, Any]:
    """What a 1:1 or group message carries: text, or one image (by url or attachment_id)."""
    if "attachment" not in message:
        result: dict[str, Any] = {"text": message_text(message)}
        if (quote := message.get("quote_message_id")) is not None:
            if not isinstance(quote, str) or not quote:
                raise invalid("quote_message_id")
            result["quote_message_id"] = quote
        return result
    element = media_element(message, "image")
    if "attachment_id" in element:
        state.check_attachment(element["attachment_id"])
        return {"image": {"attachment_id": element["attachment_id"]}}
    return {"image": {"url": element["url"]}}


def integer(params: dict[str, Any], key: str, default: int) -> int:
    value = params.get(key, default)
    if isinstance(value, bool):
        raise invalid(key)
    try:
        return int(value)
    except (TypeError, ValueError) as exc:
        raise invalid(key) from exc


def paging(
    params: dict[str, Any], limit_key: str, maximum: int, over_code: int = -210
) -> tuple[int, int]:
    """(offset, count) from query values; -201 when malformed, `over_code` over the maximum."""
    offset, count = integer(params, "offset", 0), integer(params, limit_key, maximum)
    if offset < 0:
        raise invalid("offset")
    if count < 1:
        raise invalid(limit_key)
    if count > maximum:
        if over_code == -201:
            raise invalid(limit_key)
        raise FakeApiError(over_code, f"{limit_key} exceeds limit {maximum}")
    return offset, count
