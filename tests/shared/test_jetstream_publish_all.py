"""publish_all against the real nats-server: every message stored, refusals raised."""

import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import DiscardPolicy, StreamConfig
from nats.js.errors import APIError, NoStreamResponseError

from shared.jetstream import publish_all

pytestmark = pytest.mark.integration


async def test_every_message_is_stored_once_and_a_repeat_counts_as_stored(
    nats_client: NatsClient, unique: str
) -> None:
    js = nats_client.jetstream()
    stream = f"PUB_{unique}"
    await js.add_stream(StreamConfig(name=stream, subjects=[f"pub.{unique}.>"]))
    messages = [(f"pub.{unique}.{n % 3}", str(n).encode(), f"{unique}-{n}") for n in range(600)]
    assert await publish_all(nats_client, messages, timeout=10) == [False] * 600
    again = [*messages[48:50], (f"pub.{unique}.0", b"new", f"{unique}-new")]
    headers = {"content-type": "application/json"}
    duplicates = await publish_all(nats_client, again, timeout=10, headers=headers)
    assert duplicates == [True, True, False]  # the same ids again: duplicates, not stored
    assert await publish_all(nats_client, [], timeout=10) == []
    info = await js.stream_info(stream)
    assert info.state.messages == 601
    last = await js.get_last_msg(stream, f"pub.{unique}.2")
    assert last.data == b"599"
    newest = await js.get_last_msg(stream, f"pub.{unique}.0")
    assert newest.data == b"new"
    assert newest.headers is not None
    assert newest.headers["content-type"] == "application/json"
    assert newest.headers["Nats-Msg-Id"] == f"{unique}-new"


async def test_a_subject_no_stream_takes_is_refused(nats_client: NatsClient, unique: str) -> None:
    with pytest.raises(NoStreamResponseError):
        await publish_all(nats_client, [(f"nowhere.{unique}", b"x", unique)], 5)


async def test_a_refusal_by_the_stream_is_raised(nats_client: NatsClient, unique: str) -> None:
    js = nats_client.jetstream()
    config = StreamConfig(
        name=f"FULL_{unique}", subjects=[f"full.{unique}"], max_msgs=2, discard=DiscardPolicy.NEW
    )
    await js.add_stream(config)
    messages = [(f"full.{unique}", str(n).encode(), f"{unique}-{n}") for n in range(3)]
    with pytest.raises(APIError, match="maximum messages"):
        await publish_all(nats_client, messages, timeout=5)
