"""The tip publisher on the real servers: waves keep each case's order, and what a failed
wave and the waves after it held stays in the outbox."""

import json

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import StreamConfig
from nats.js.errors import NoStreamResponseError

from services.reports.outgoing import StagedEvent
from services.reports.publisher import TipPublisher
from services.reports.store import ReportsStore


def staged(unique: str, case_id: str, n: int, subject: str | None = None) -> StagedEvent:
    return StagedEvent(
        event_id=f"{unique}-{case_id}-{n}",
        case_id=case_id,
        subject=subject or f"pubtips.{unique}.{case_id}",
        payload={"case_id": case_id, "n": n},
    )


async def test_each_case_events_are_stored_in_order_and_leave_the_outbox(
    nats_client: NatsClient, store: ReportsStore, unique: str
) -> None:
    js = nats_client.jetstream()
    await js.add_stream(StreamConfig(name=f"PUBTIPS_{unique}", subjects=[f"pubtips.{unique}.>"]))
    items = [staged(unique, case, n) for n in range(3) for case in ("a", "b")]
    items.append(staged(unique, "c", 0))
    await store.stage(items)
    publisher = TipPublisher(nats_client, store)
    assert await publisher.flush() == 7
    assert await store.staged() == []
    sub = await js.subscribe(f"pubtips.{unique}.>", ordered_consumer=True)
    seen: dict[str, list[int]] = {}
    for _ in range(7):
        msg = await sub.next_msg(timeout=5)
        payload = json.loads(msg.data)
        seen.setdefault(payload["case_id"], []).append(payload["n"])
        assert msg.headers is not None
        assert msg.headers["Nats-Msg-Id"] == f"{unique}-{payload['case_id']}-{payload['n']}"
    assert seen == {"a": [0, 1, 2], "b": [0, 1, 2], "c": [0]}
    assert await publisher.flush() == 0  # nothing left


async def test_a_failed_wave_and_the_later_ones_stay_staged(
    nats_client: NatsClient, store: ReportsStore, unique: str
) -> None:
    js = nats_client.jetstream()
    await js.add_stream(StreamConfig(name=f"PUBTIPS_{unique}", subjects=[f"pubtips.{unique}.>"]))
    nowhere = f"nowhere.{unique}"  # no stream takes it: the second wave is refused
    items = [
        staged(unique, "a", 0),
        staged(unique, "a", 1, nowhere),
        staged(unique, "a", 2),
        staged(unique, "b", 0),
    ]
    await store.stage(items)
    publisher = TipPublisher(nats_client, store)
    with pytest.raises(NoStreamResponseError):
        await publisher.flush()
    left = [item.event_id for item in await store.staged()]
    assert left == [f"{unique}-a-1", f"{unique}-a-2"]
    info = await js.stream_info(f"PUBTIPS_{unique}")
    assert info.state.messages == 2  # a-0 and b-0; a-2 waits behind a-1


async def test_the_outbox_keeps_payloads_as_json_text_and_reads_older_documents(
    store: ReportsStore, unique: str
) -> None:
    payload = {"narrative": "Có trộm chó ở xã Quang Phú", "reasons": [{"code": "theft"}], "n": 1}
    item = staged(unique, "a", 0).model_copy(update={"payload": payload})
    await store.stage([item])
    stored = await store.outbox.find_one({"_id": item.event_id})
    assert stored is not None
    assert isinstance(stored["payload"], str)  # one string for FerretDB, not nested fields
    older = {"_id": f"{unique}-b-0", "case_id": "b", "subject": "s", "payload": {"n": 2}}
    await store.outbox.insert_one(older)  # staged before payloads were kept as text
    assert await store.staged() == [
        item,
        StagedEvent(event_id=f"{unique}-b-0", case_id="b", subject="s", payload={"n": 2}),
    ]
