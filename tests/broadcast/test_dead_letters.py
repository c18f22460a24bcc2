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
from tests.broadcast.builders import wait_for
from tests.contracts.golden import check_golden


def test_the_error_names_its_type_and_place_not_its_text() -> None:
    try:
        {"tip": "0912 345 678"}["missing"]
    except KeyError as exc:
        error = where(exc)
    assert error.startswith("KeyError at tests/broadcast/test_dead_letters.py:")
    assert "0912" not in error


@pytest.mark.integration
async def test_a_poison_command_is_dead_lettered_once_then_acked(broadcast, nats_client) -> None:
    h = await broadcast(workers=False)
    records: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_record(msg) -> None:  # type: ignore[no-untyped-def]
        await records.put(msg.data)

    sub = await nats_client.subscribe(dead_letter_subject("broadcast"), cb=on_record)
    try:
        ack = await h.runtime.js.publish(
            BROADCAST_PLAN, b'{"notice": "no id"}', headers={"Nats-Msg-Id": "poison-1"}
        )
        data = await asyncio.wait_for(records.get(), 60)
    finally:
        await sub.unsubscribe()
    check_golden(dead_letter_subject("broadcast"), data)
    record = json.loads(data)
    assert record["type"] == "message.dead_lettered"
    assert (record["subject"], record["stream"]) == (BROADCAST_PLAN, BROADCAST_WORK_STREAM.name)
    assert (record["stream_seq"], record["deliveries"]) == (ack.seq, MAX_DELIVER)
    assert record["error"].startswith("ValidationError at ")
    assert "no id" not in data.decode()

    async def acked() -> bool:  # the work queue drops a message once it is acknowledged
        info = await h.runtime.js.stream_info(
            BROADCAST_WORK_STREAM.name, subjects_filter=BROADCAST_PLAN
        )
        return not (info.state.subjects or {}).get(BROADCAST_PLAN)

    assert await wait_for(acked, 10)


@pytest.mark.integration
async def test_an_unreadable_delivery_message_is_dead_lettered_at_once(
    broadcast, nats_client
) -> None:
    h = await broadcast()
    records: asyncio.Queue[bytes] = asyncio.Queue()

    async def on_record(msg) -> None:  # type: ignore[no-untyped-def]
        await records.put(msg.data)

    sub = await nats_client.subscribe(dead_letter_subject("broadcast"), cb=on_record)
    try:
        await h.runtime.js.publish(
            BROADCAST_DELIVER, b'{"_id": "n:g"}', headers={"Nats-Msg-Id": "poison-2"}
        )
        data = await asyncio.wait_for(records.get(), 30)
    finally:
        await sub.unsubscribe()
    check_golden(dead_letter_subject("broadcast"), data)
    record = json.loads(data)
    assert (record["subject"], record["deliveries"]) == (BROADCAST_DELIVER, 1)
    assert record["error"] == "unreadable delivery message"

    async def gone() -> bool:
        info = await h.runtime.js.stream_info(
            BROADCAST_WORK_STREAM.name, subjects_filter=BROADCAST_DELIVER
        )
        return not (info.state.subjects or {}).get(BROADCAST_DELIVER)

    assert await wait_for(gone, 10)
