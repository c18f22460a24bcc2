"""The fake as Zalo's webhook side: signed §2.5 payloads, retries with `num_retry`, disable."""

import json
import threading
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from fastapi import FastAPI, Request, Response

from shared.zalo.signature import SIGNATURE_HEADER, is_valid
from tests.fixtures.fake_zalo import FakeZalo
from tools.localstack.servers import LOOPBACK, free_port, wait_for_port

SECRET = "test-oa-secret-key"


class Receiver:
    """A stand-in for ingest that checks signatures and fails on demand."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.failures = 0
        self.app = FastAPI()
        self.app.post("/webhooks/zalo")(self.webhook)

    async def webhook(self, request: Request) -> Response:
        raw = await request.body()
        body = json.loads(raw)
        header = request.headers.get(SIGNATURE_HEADER, "")
        valid = is_valid(header, body["app_id"], raw, body["timestamp"], SECRET)
        self.received.append(
            {"body": body, "valid": valid, "retry": request.headers.get("num_retry")}
        )
        if not valid:
            return Response(status_code=401)
        if self.failures:
            self.failures -= 1
            return Response(status_code=500)
        return Response(status_code=200)


@pytest.fixture(scope="module")
def receiver() -> Iterator[tuple[Receiver, str]]:
    target = Receiver()
    port = free_port()
    config = uvicorn.Config(
        target.app, host=LOOPBACK, port=port, log_level="warning", lifespan="off"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    wait_for_port(port)
    try:
        yield target, f"http://{LOOPBACK}:{port}/webhooks/zalo"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture
def ingest(receiver: tuple[Receiver, str]) -> tuple[Receiver, str]:
    target, url = receiver
    target.received.clear()
    target.failures = 0
    return target, url


def test_text_event_is_signed_and_shaped_like_zalo(
    fake_zalo: FakeZalo, ingest: tuple[Receiver, str]
) -> None:
    target, url = ingest
    result = fake_zalo.admin.emit_webhook(url=url, user_id="246845883529197999", text="Báo tin")
    assert result["results"][0]["delivered"] is True
    [got] = target.received
    assert got["valid"] is True
    body = got["body"]
    assert body["event_name"] == "user_send_text"
    assert body["sender"] == {"id": "246845883529197999"}
    assert body["recipient"] == {"id": "388613280878808645"}
    assert body["message"]["text"] == "Báo tin"
    assert body["timestamp"].isdigit()


def test_location_follow_and_seen_shapes(fake_zalo: FakeZalo, ingest: tuple[Receiver, str]) -> None:
    target, url = ingest
    fake_zalo.admin.emit_webhook(
        url=url, event_name="user_send_location", latitude=17.47, longitude=106.6
    )
    fake_zalo.admin.emit_webhook(url=url, event_name="follow", user_id="246845883529197998")
    fake_zalo.admin.emit_webhook(url=url, event_name="user_seen_message", msg_ids=["a1", "a2"])
    location, follow, seen = (r["body"] for r in target.received)
    payload = location["message"]["attachments"][0]["payload"]
    assert payload == {"coordinates": {"latitude": "17.47", "longitude": "106.6"}}
    assert follow["follower"] == {"id": "246845883529197998"}
    assert "sender" not in follow
    assert seen["message"] == {"msg_ids": ["a1", "a2"]}
    assert all(r["valid"] for r in target.received)


def test_follow_then_unfollow_changes_who_can_be_messaged(
    fake_zalo: FakeZalo, ingest: tuple[Receiver, str]
) -> None:
    _, url = ingest
    user = "246845883529197997"
    body = {"recipient": {"user_id": user}, "message": {"text": "Chào bạn"}}
    headers = {"access_token": "fake-initial-access-token"}
    with httpx.Client(base_url=fake_zalo.base_url, headers=headers) as http:
        fake_zalo.admin.emit_webhook(url=url, event_name="follow", user_id=user)
        assert http.post("/v3.0/oa/message/cs", json=body).json()["error"] == 0
        fake_zalo.admin.emit_webhook(url=url, event_name="unfollow", user_id=user)
        assert http.post("/v3.0/oa/message/cs", json=body).json()["error"] == -213


def test_failures_are_retried_with_num_retry_then_disabled(
    fake_zalo: FakeZalo, ingest: tuple[Receiver, str]
) -> None:
    target, url = ingest
    target.failures = 2
    ok = fake_zalo.admin.emit_webhook(url=url, text="x", ladder=[0.01, 0.01, 0.01])
    assert ok["results"][0]["delivered"] is True
    assert [r["retry"] for r in target.received] == [None, "1", "2"]
    target.received.clear()
    target.failures = 10
    bad = fake_zalo.admin.emit_webhook(url=url, text="x", ladder=[0.01, 0.01])
    outcome = bad["results"][0]
    assert (outcome["delivered"], outcome["disabled"]) == (False, True)
    assert len(target.received) == 3


def test_bad_signature_and_duplicates(fake_zalo: FakeZalo, ingest: tuple[Receiver, str]) -> None:
    target, url = ingest
    fake_zalo.admin.emit_webhook(url=url, text="x", bad_signature=True, retry=False)
    fake_zalo.admin.emit_webhook(url=url, text="y", copies=2, msg_id="dup1")
    assert [r["valid"] for r in target.received] == [False, True, True]
    assert target.received[1]["body"] == target.received[2]["body"]
