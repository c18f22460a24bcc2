"""Poison messages: a command that fails on every delivery is recorded on
`deadletter.broadcast` with the error after the consumer's last delivery, then acknowledged."""

import asyncio
import json

import pytest

from services.broadcast.handlers import MAX_DELIVER
from shared.dead_letters import where
from shared.subjects import (
    BROADCAST_DELIVER,
    BROADCAST_PLAN,
    BROADCAST_WORK_STREAM,
    dead_letter_subject,
)
from tests.contracts.golden import check_golden
from tests.polling import eventually


def test_the_error_names_its_type_and_place_not_its_text() -> None:
    try:
        {"tip": "0912 345 678"}["missing"]
    except KeyError as exc:
        error = where(exc)
    assert error.startswith("KeyError at tests/broadcast/test_dead_letters.py:")
    assert "0912" not in error


async def poison(h, nats_client, subject: str, body: bytes) -> tuple[int, dict]:  # type: ignore[no-untyped-def]
    """Publish a poison message on `subject`; its stream sequence and the dead-letter record
    (checked against its golden sample), once the work queue has dropped the message."""
    records: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_record(msg) -> None:  # type: ignore[no-untyped-def]
        await records.put(msg.data)

    sub = await nats_client.subscribe(dead_letter_subject("broadcast"), cb=on_record)
    await nats_client.flush()  # subscribed at the server before the service can publish
    try:
        ack = await h.service.js.publish(subject, body, headers={"Nats-Msg-Id": subject})
        data = await asyncio.wait_for(records.get(), 60)
    finally:
        await sub.unsubscribe()
    check_golden(dead_letter_subject("broadcast"), data)
    assert body.decode() not in data.decode()

    async def dropped() -> bool:  # acknowledged or terminated
        info = await h.service.js.stream_info(BROADCAST_WORK_STREAM.name, subjects_filter=subject)
        return not (info.state.subjects or {}).get(subject)

    assert await eventually(dropped, 30)
    return ack.seq, json.loads(data)


@pytest.mark.integration
async def test_a_poison_command_is_dead_lettered_once_then_acked(broadcast, nats_client) -> None:
    h = await broadcast(workers=False)
    seq, record = await poison(h, nats_client, BROADCAST_PLAN, b'{"notice": "no id"}')
    assert record["type"] == "message.dead_lettered"
    assert (record["subject"], record["stream"]) == (BROADCAST_PLAN, BROADCAST_WORK_STREAM.name)
    assert (record["stream_seq"], record["deliveries"]) == (seq, MAX_DELIVER)
    assert record["error"].startswith("ValidationError at ")


@pytest.mark.integration
async def test_an_unreadable_delivery_message_is_dead_lettered_at_once(
    broadcast, nats_client
) -> None:
    h = await broadcast()
    _, record = await poison(h, nats_client, BROADCAST_DELIVER, b'{"_id": "n:g"}')
    assert (record["subject"], record["deliveries"]) == (BROADCAST_DELIVER, 1)
    assert record["error"] == "unreadable delivery message"
