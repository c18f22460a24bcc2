"""Finding 5: the webhook never answers 500. Every body is refused (401), quarantined or
published; the decision is pure, so Hypothesis drives it with hostile bodies, signed and not."""

import json
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.ingest.settings import IngestSettings
from services.ingest.webhook import _JSON, Publish, Quarantine, Refused, _accepted, decide
from shared.events.quarantine import WebhookQuarantined
from shared.events.zalo import ZaloEventReceived
from tests.ingest.builders import APP_ID, SECRET, fixture_body, fixture_names, ingest_settings
from tools.zalo_sim.events import signed_request

SETTINGS = ingest_settings("nats://127.0.0.1:1", Path("/nonexistent"))


def signature_for(raw: bytes, timestamp: str, secret: str = SECRET) -> str:
    return signed_request(raw, APP_ID, secret, timestamp)["X-ZEvent-Signature"]


def deep(depth: int, open_: str = "[", close: str = "]") -> bytes:
    return (open_ * depth + close * depth).encode()


def check(raw: bytes, signature: str | None, s: IngestSettings = SETTINGS) -> str:
    """The verdict's kind; fails on an exception or on a verdict that cannot be sent."""
    verdict = decide(raw, signature, s, datetime.now(UTC))
    if isinstance(verdict, Refused):
        assert verdict.status in (401, 413)
        return "refused"
    if isinstance(verdict, Quarantine):
        WebhookQuarantined.model_validate_json(verdict.data)  # what NATS carries parses back
        return "quarantined"
    assert isinstance(verdict, Publish)
    ZaloEventReceived.model_validate_json(verdict.data)
    return "published"


now_ms = st.just(None).map(lambda _: str(int(time.time() * 1000)))
exotic_digits = st.text(
    alphabet=st.sampled_from("0123456789²³¹٣۴߅१০੧૫୬௭౮೯൦๑໒༣၄႕០᠑᥆᧐᪀᭐᮰᱀᱐꘠꣐꤀꧐꩐꯰０１２"),
    min_size=1,
    max_size=40,
)
huge_numbers = st.one_of(
    st.integers(min_value=10**18, max_value=10**400),
    st.integers(max_value=-(10**18), min_value=-(10**400)),
    st.floats(allow_nan=False),
    st.just(10**4000),
)
hostile_text = st.one_of(
    st.text(),
    st.text(alphabet=st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF), min_size=1),
    st.text(alphabet=st.characters(max_codepoint=0x9F), min_size=1),  # C0/C1 controls
)
hostile_values: st.SearchStrategy[Any] = st.recursive(
    st.one_of(st.none(), st.booleans(), huge_numbers, hostile_text),
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)
    ),
    max_leaves=12,
)
FIELDS = ["sender", "recipient", "message", "timestamp", "app_id", "oa_id", "user_id_by_app"]


def dumps(body: Any) -> bytes:
    # json.dumps escapes a lone surrogate as \\udXXX, as a hostile sender would write it
    return json.dumps(body, ensure_ascii=True, allow_nan=True).encode()


@settings(
    max_examples=300, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow]
)
@given(
    name=st.sampled_from(fixture_names()),
    field=st.sampled_from([*FIELDS, "message.text", "event_name", "extra"]),
    value=hostile_values,
    timestamp=st.one_of(now_ms, exotic_digits, huge_numbers.map(str)),
    sign=st.booleans(),
)
def test_signed_or_not_any_body_is_refused_quarantined_or_published(
    name: str, field: str, value: Any, timestamp: str, sign: bool
) -> None:
    body = fixture_body(name)
    if field == "message.text" and isinstance(body.get("message"), dict):
        body["message"]["text"] = value
    else:
        body[field] = value
    if field != "timestamp":
        body["timestamp"] = timestamp
    raw = dumps(body)
    ts = body.get("timestamp")
    signable = isinstance(ts, str) and ts == ts.encode("utf-8", "replace").decode()
    signature = signature_for(raw, ts if signable else "0") if sign else "mac=00"
    verdict = check(raw, signature)
    if not sign:
        assert verdict == "refused"


@settings(max_examples=60, deadline=None, derandomize=True)
@given(depth=st.integers(min_value=1, max_value=200_000), kind=st.sampled_from("[{"))
def test_deep_nesting_unsigned_is_refused(depth: int, kind: str) -> None:
    raw = deep(depth) if kind == "[" else ('{"a":' * depth + "1" + "}" * depth).encode()
    assert check(raw, "mac=" + "0" * 64) == "refused"


@pytest.mark.parametrize(
    ("raw_of", "expected"),
    [
        # the three 500s found by the probe
        (lambda: (deep(100_000), "mac=" + "0" * 64), "refused"),
        (lambda: _with_text('"\\ud800 trộm"'), "quarantined"),
        (lambda: _with_timestamp("²²²"), "refused"),
        # huge numbers: beyond Python's int-parsing limit, and a 400-digit timestamp
        (lambda: _with_text("1" * 5000), "refused"),
        (lambda: _with_timestamp("9" * 400), "refused"),
        (lambda: _with_text("1" + "0" * 400), "quarantined"),
        # nesting a signed body can carry: the parser's limit, then the models' (either way
        # quarantined, the text must be a string)
        (lambda: _with_text(deep(900).decode()), "quarantined"),
        (lambda: _with_text(deep(5000).decode()), "refused"),
    ],
)
def test_the_probed_bodies(raw_of: Any, expected: str) -> None:
    raw, signature = raw_of()
    assert check(raw, signature) == expected


def _with_text(text_json: str) -> tuple[bytes, str]:
    body = fixture_body("user_send_text")
    body["message"]["text"] = "@@TEXT@@"
    raw = json.dumps(body, ensure_ascii=False).replace('"@@TEXT@@"', text_json).encode()
    return raw, signature_for(raw, body["timestamp"])


def _with_timestamp(timestamp: str) -> tuple[bytes, str]:
    raw = dumps(fixture_body("user_send_text", timestamp=timestamp))
    return raw, signature_for(raw, timestamp)


@pytest.mark.integration
async def test_hostile_bodies_over_http_never_500(nats_client, nats_url: str, tmp_path) -> None:
    """The same bodies through the running service and a real nats-server."""
    from tests.ingest.builders import reset_streams, running_ingest, stream_messages

    s = ingest_settings(nats_url, tmp_path / "spool")
    await reset_streams(nats_client.jetstream(), s)
    cases = [
        (deep(100_000), "mac=00", 401),
        (*_with_text('"\\ud800"'), 200),
        (*_with_timestamp("²²²"), 401),
        (*_with_text("1" * 5000), 401),
    ]
    async with running_ingest(s) as client:
        for raw, signature, status in cases:
            headers = {"X-ZEvent-Signature": signature, "Content-Type": "application/json"}
            response = await client.post("/webhooks/zalo", content=raw, headers=headers)
            assert response.status_code == status, response.text
    quarantined = await stream_messages(nats_client.jetstream(), s.quarantine_stream)
    assert len(quarantined) == 1
    assert "\\ud800" in WebhookQuarantined.model_validate_json(quarantined[0].data).body


@given(status=st.text(max_size=12), event_id=st.text(max_size=40))
@settings(max_examples=300)
def test_the_rendered_answer_is_the_json_encoders_for_any_words(status: str, event_id: str) -> None:
    """The 200 answer is rendered without the JSON encoder for ingest's own words and ids;
    for those and for anything else it is byte for byte what the encoder writes."""
    expected = _JSON.encode({"status": status, "event_id": event_id}).encode()
    assert _accepted(status, event_id) == expected
    assert json.loads(_accepted(status, event_id)) == {"status": status, "event_id": event_id}


def test_the_answers_own_words_take_the_short_way() -> None:
    event_id = "0e582f3c9a1b4d5e8f7a6b5c4d3e2f1a"
    for status in ("published", "duplicate", "spooled"):
        expected = f'{{"status":"{status}","event_id":"{event_id}"}}'.encode()
        assert _accepted(status, event_id) == expected
    assert (
        _accepted("quarantined", "q-" + event_id)
        == _JSON.encode({"status": "quarantined", "event_id": "q-" + event_id}).encode()
    )
