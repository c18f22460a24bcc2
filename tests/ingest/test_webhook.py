"""The webhook end to end against a real nats-server: verify, normalize, publish once."""

import asyncio
import json
import time
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from services.ingest.settings import IngestSettings
from shared.events.quarantine import WebhookQuarantined
from shared.events.zalo import ZaloEventKind, ZaloEventReceived
from shared.zalo.signature import SIGNATURE_HEADER
from tests.ingest.builders import (
    fixture_body,
    fixture_names,
    ingest_settings,
    post,
    reset_streams,
    running_ingest,
    signed,
    stream_messages,
)
from tests.shared.prometheus import sample, scrape
from tools.zalo_sim.events import encode

pytestmark = pytest.mark.integration


@pytest.fixture
async def settings(nats_client, nats_url: str, tmp_path: Path) -> IngestSettings:
    settings = ingest_settings(nats_url, tmp_path / "spool")
    await reset_streams(nats_client.jetstream(), settings)
    return settings


@pytest.fixture
async def ingest(settings: IngestSettings) -> AsyncIterator[httpx.AsyncClient]:
    async with running_ingest(settings) as client:
        yield client


async def published(nats_client, settings: IngestSettings) -> list[ZaloEventReceived]:
    messages = await stream_messages(nats_client.jetstream(), settings.events_stream)
    return [ZaloEventReceived.model_validate_json(m.data) for m in messages]


class TestSignature:
    async def test_valid_signature_is_published(self, ingest, nats_client, settings) -> None:
        response = await post(ingest, fixture_body("user_send_text"))
        assert response.status_code == 200
        assert response.json()["status"] == "published"
        (event,) = await published(nats_client, settings)
        assert event.kind is ZaloEventKind.USER_MESSAGE

    @pytest.mark.parametrize("attack", ["tampered", "wrong_key", "missing", "truncated", "empty"])
    async def test_bad_signature_is_refused_and_nothing_published(
        self, ingest, nats_client, settings, attack: str
    ) -> None:
        raw, headers = signed(fixture_body("user_send_text"))
        if attack == "tampered":
            raw = raw.replace("trộm chó".encode(), "trộm gà".encode())
        elif attack == "wrong_key":
            raw, headers = signed(fixture_body("user_send_text"), secret="not-the-oa-secret")
        elif attack == "missing":
            del headers[SIGNATURE_HEADER]
        elif attack == "truncated":
            headers[SIGNATURE_HEADER] = headers[SIGNATURE_HEADER][:-8]
        else:
            headers[SIGNATURE_HEADER] = "mac="
        response = await ingest.post("/webhooks/zalo", content=raw, headers=headers)
        assert response.status_code == 401
        assert response.json()["error"] in {"invalid_signature", "missing_signature"}
        assert await published(nats_client, settings) == []

    async def test_body_without_fields_to_verify_is_401(
        self, ingest, nats_client, settings
    ) -> None:
        for raw in (b"not json", b"[]", b'{"event_name":"follow"}'):
            response = await ingest.post(
                "/webhooks/zalo", content=raw, headers={SIGNATURE_HEADER: "mac=00"}
            )
            assert response.status_code == 401
            assert response.json()["error"] == "unverifiable"
        assert await published(nats_client, settings) == []

    async def test_other_app_id_is_refused(self, ingest, nats_client, settings) -> None:
        response = await post(ingest, fixture_body("user_send_text", app_id="999"))
        assert response.status_code == 401
        assert await published(nats_client, settings) == []


class TestLimits:
    async def test_oversized_body_is_413(self, ingest, nats_client, settings) -> None:
        body = fixture_body("user_send_text")
        body["message"]["text"] = "x" * (settings.max_body_bytes + 1)
        response = await post(ingest, body)
        assert response.status_code == 413
        assert response.json()["error"] == "body_too_large"
        assert await published(nats_client, settings) == []

    async def test_oversized_stream_without_length_is_413(self, ingest, settings) -> None:
        async def chunks() -> AsyncIterator[bytes]:
            for _ in range(settings.max_body_bytes // 1024 + 2):
                yield b"x" * 1024

        response = await ingest.post("/webhooks/zalo", content=chunks())
        assert response.status_code == 413

    @pytest.mark.parametrize(("shift_s", "error"), [(-25 * 3600, "stale"), (600, "from_future")])
    async def test_out_of_window_timestamp_is_refused(
        self, ingest, nats_client, settings, shift_s: int, error: str
    ) -> None:
        stamp = str(int((time.time() + shift_s) * 1000))
        response = await post(ingest, fixture_body("user_send_text", timestamp=stamp))
        assert response.status_code == 401
        assert response.json()["error"] == error
        assert await published(nats_client, settings) == []


class TestHttp:
    async def test_body_in_several_chunks_is_joined(self, ingest, nats_client, settings) -> None:
        raw, headers = signed(fixture_body("user_send_text"))

        async def chunks() -> AsyncIterator[bytes]:
            for start in range(0, len(raw), 100):
                yield raw[start : start + 100]

        response = await ingest.post("/webhooks/zalo", content=chunks(), headers=headers)
        assert (response.status_code, response.json()["status"]) == (200, "published")
        assert len(await published(nats_client, settings)) == 1

    async def test_other_methods_are_405(self, ingest) -> None:
        response = await ingest.get("/webhooks/zalo")
        assert response.status_code == 405
        assert response.headers["allow"] == "POST"
        assert response.json() == {
            "error": "method_not_allowed",
            "detail": "Method Not Allowed",
            "errors": [],
        }

    async def test_client_gone_before_its_body_gets_no_answer(
        self, ingest, nats_client, settings
    ) -> None:
        raw, headers = signed(fixture_body("user_send_text"))
        sent: list[dict[str, object]] = []
        scope = {
            "type": "http",
            "method": "POST",
            "path": "/webhooks/zalo",
            "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        }
        messages = iter([{"type": "http.request", "body": raw[:50], "more_body": True}])

        async def receive() -> dict[str, object]:
            return next(messages, {"type": "http.disconnect"})

        async def send(message: dict[str, object]) -> None:
            sent.append(message)

        await ingest.app(scope, receive, send)
        assert sent == []
        assert await published(nats_client, settings) == []

    async def test_openapi_documents_the_webhook(self, ingest) -> None:
        operation = (await ingest.get("/openapi.json")).json()["paths"]["/webhooks/zalo"]["post"]
        assert [p["name"] for p in operation["parameters"]] == [SIGNATURE_HEADER]
        schema = operation["requestBody"]["content"]["application/json"]["schema"]
        assert schema["required"] == ["app_id", "event_name", "timestamp"]
        assert set(operation["responses"]) == {"200", "401", "413"}

    async def test_other_routes_still_go_through_fastapi(self, ingest) -> None:
        assert (await ingest.get("/healthz")).json() == {"status": "ok"}
        assert (await ingest.get("/no-such-page")).status_code == 404


class TestQuarantine:
    async def test_signed_but_invalid_body_is_kept_whole_and_answered_200(
        self, ingest, nats_client, settings
    ) -> None:
        body = fixture_body("user_send_text", sender={"id": 246845883529197922})
        raw, headers = signed(body)
        before = await scrape(ingest)
        response = await ingest.post("/webhooks/zalo", content=raw, headers=headers)
        assert response.status_code == 200
        assert response.json()["status"] == "quarantined"
        assert await published(nats_client, settings) == []
        (message,) = await stream_messages(nats_client.jetstream(), settings.quarantine_stream)
        record = WebhookQuarantined.model_validate_json(message.data)
        assert record.body.encode() == raw
        assert "sender.id" in record.reason
        after = await scrape(ingest)
        name, labels = "binhyen_ingest_webhook_requests_total", {"outcome": "quarantined"}
        assert sample(after, name, **labels) - sample(before, name, **labels) == 1


class TestEveryKind:
    async def test_each_fixture_lands_on_its_kind_subject(
        self, ingest, nats_client, settings
    ) -> None:
        for name in fixture_names():
            response = await post(ingest, fixture_body(name))
            assert response.status_code == 200, name
            assert response.json()["status"] == "published", name
        messages = await stream_messages(nats_client.jetstream(), settings.events_stream)
        assert len(messages) == len(fixture_names())
        subjects = {m.subject for m in messages}
        assert "zalo.event.unknown" in subjects
        assert "zalo.event.user_message" in subjects
        assert "zalo.event.group_message" in subjects
        for message in messages:
            event = ZaloEventReceived.model_validate_json(message.data)
            assert message.subject == f"zalo.event.{event.kind}"
            assert message.headers["Nats-Msg-Id"] == event.event_id


class TestExactlyOnce:
    async def test_same_event_100_times_serially(self, ingest, nats_client, settings) -> None:
        body = fixture_body("user_send_text")
        statuses = [(await post(ingest, body)).json()["status"] for _ in range(100)]
        assert statuses[0] == "published"
        assert set(statuses[1:]) == {"duplicate"}
        assert len(await published(nats_client, settings)) == 1

    async def test_same_event_20_times_concurrently(self, ingest, nats_client, settings) -> None:
        body = fixture_body("user_send_image")
        responses = await asyncio.gather(*(post(ingest, body) for _ in range(20)))
        assert {r.status_code for r in responses} == {200}
        assert [r.json()["status"] for r in responses].count("published") == 1
        assert len(await published(nats_client, settings)) == 1

    async def test_window_covers_the_acceptance_horizon(
        self, ingest, nats_client, settings
    ) -> None:
        info = await nats_client.jetstream().stream_info(settings.events_stream)
        horizon = settings.max_event_age_s + settings.max_future_skew_s
        assert info.config.duplicate_window >= horizon

    async def test_repeat_after_an_ingest_restart_is_a_duplicate(
        self, nats_client, settings
    ) -> None:
        body = fixture_body("user_send_video")
        async with running_ingest(settings) as ingest:
            assert (await post(ingest, body)).json()["status"] == "published"
        async with running_ingest(settings) as ingest:
            assert (await post(ingest, body)).json()["status"] == "duplicate"
        assert len(await published(nats_client, settings)) == 1

    async def test_again_after_the_duplicate_window(self, nats_client, nats_url, tmp_path) -> None:
        settings = ingest_settings(
            nats_url, tmp_path / "spool", max_event_age_s=1.0, max_future_skew_s=0.0
        )
        await reset_streams(nats_client.jetstream(), settings)
        body = fixture_body("user_send_link")
        async with running_ingest(settings) as ingest:
            assert (await post(ingest, body)).json()["status"] == "published"
            info = await nats_client.jetstream().stream_info(settings.events_stream)
            assert info.config.duplicate_window == 2.0
            await asyncio.sleep(2.5)  # let the server's duplicate window pass: that is the point
            again = await post(ingest, body)
            # Past the window the repeat is also past the acceptance horizon: refused, not
            # published a second time.
            assert (again.status_code, again.json()["error"]) == (401, "stale")
        assert len(await published(nats_client, settings)) == 1


class TestStreamsDeclaredIdempotently:
    async def test_second_start_changes_nothing_and_a_changed_window_is_applied(
        self, nats_client, nats_url, tmp_path
    ) -> None:
        settings = ingest_settings(nats_url, tmp_path / "spool")
        js = nats_client.jetstream()
        await reset_streams(js, settings)
        async with running_ingest(settings):
            pass
        first = await js.stream_info(settings.events_stream)
        async with running_ingest(settings):
            pass
        again = await js.stream_info(settings.events_stream)
        assert again.config == first.config
        assert again.created == first.created
        changed = settings.model_copy(update={"max_event_age_s": 3600.0})
        async with running_ingest(changed):
            pass
        updated = await js.stream_info(settings.events_stream)
        assert updated.config.duplicate_window == changed.dedup_window_s
        assert updated.created == first.created


def test_simulator_bodies_are_compact_json() -> None:
    body = fixture_body("follow")
    assert json.loads(encode(body)) == body
