"""The lean JetStream publisher against a real nats-server: ack, duplicate, errors, timeout."""

import asyncio
from collections.abc import AsyncIterator

import nats.errors
import nats.js.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import DiscardPolicy, StreamConfig

from shared.jetstream import AckedPublisher, read_puback

pytestmark = pytest.mark.integration


@pytest.fixture
async def stream(nats_client: NatsClient, unique: str) -> AsyncIterator[str]:
    """A stream of its own on `<unique>.>`; yields the subject prefix."""
    js = nats_client.jetstream()
    await js.add_stream(StreamConfig(name=f"ACKED_{unique}", subjects=[f"{unique}.>"]))
    yield unique
    await js.delete_stream(f"ACKED_{unique}")


@pytest.fixture
async def acked(nats_client: NatsClient) -> AsyncIterator[AckedPublisher]:
    publisher = AckedPublisher(nats_client, timeout=0.5)
    await publisher.start()
    yield publisher
    await publisher.stop()


class TestAcknowledged:
    async def test_stored_with_the_message_id(self, acked, nats_client, stream) -> None:
        assert await acked.publish(f"{stream}.a", b"one", "id-1") is False
        message = await nats_client.jetstream().get_msg(f"ACKED_{stream}", 1)
        assert (message.subject, message.data) == (f"{stream}.a", b"one")
        assert message.headers["Nats-Msg-Id"] == "id-1"
        assert acked.waiting == 0

    async def test_same_id_again_is_a_duplicate_and_not_stored(
        self, acked, nats_client, stream
    ) -> None:
        assert await acked.publish(f"{stream}.a", b"one", "id-1") is False
        assert await acked.publish(f"{stream}.a", b"again", "id-1") is True
        assert await acked.publish(f"{stream}.a", b"two", "id-2") is False
        info = await nats_client.jetstream().stream_info(f"ACKED_{stream}")
        assert info.state.messages == 2

    async def test_concurrent_publishes_each_get_their_own_ack(
        self, acked, nats_client, stream
    ) -> None:
        ids = [f"id-{n % 50}" for n in range(100)]  # every id twice
        duplicates = await asyncio.gather(
            *(acked.publish(f"{stream}.a", i.encode(), i) for i in ids)
        )
        assert duplicates.count(False) == 50
        info = await nats_client.jetstream().stream_info(f"ACKED_{stream}")
        assert info.state.messages == 50


class TestRefused:
    async def test_jetstream_error_reply_raises(self, acked, nats_client, unique) -> None:
        js = nats_client.jetstream()
        name = f"FULL_{unique}"
        await js.add_stream(
            StreamConfig(name=name, subjects=[f"{unique}.>"], max_msgs=1, discard=DiscardPolicy.NEW)
        )
        try:
            assert await acked.publish(f"{unique}.a", b"one", "id-1") is False
            with pytest.raises(nats.js.errors.APIError) as raised:
                await acked.publish(f"{unique}.a", b"two", "id-2")
            assert raised.value.err_code == 10077  # maximum messages exceeded
        finally:
            await js.delete_stream(name)

    async def test_subject_without_a_stream_raises(self, acked, unique) -> None:
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            await acked.publish(f"{unique}.nowhere", b"x", "id-1")
        assert acked.waiting == 0

    async def test_no_answer_times_out(self, acked, nats_client, unique) -> None:
        # A core subscriber takes the message and never answers, as a stalled stream would.
        silent = await nats_client.subscribe(f"{unique}.silent")
        try:
            with pytest.raises(nats.errors.TimeoutError):
                await acked.publish(f"{unique}.silent", b"x", "id-1")
            assert acked.waiting == 0
        finally:
            await silent.unsubscribe()

    async def test_not_started_is_an_error(self, nats_client) -> None:
        with pytest.raises(nats.errors.ConnectionClosedError):
            await AckedPublisher(nats_client, timeout=0.5).publish("x", b"", "id")


def reply(data: bytes, headers: dict[str, str] | None = None) -> Msg:
    return Msg(_client=None, subject="_INBOX.x.1", data=data, headers=headers)  # type: ignore[arg-type]


class TestReadingAcks:
    @pytest.mark.parametrize(
        ("data", "duplicate"),
        [
            (b'{"stream":"S","seq":1}', False),
            (b'{"stream":"S","seq":1,"duplicate": true}', True),  # as nats-server writes it
            (b'{"stream":"S","seq":1,"duplicate":true}', True),
            (b'{"stream":"duplicate","seq":3}', False),
            (b'{"stream":"error","seq":3}', False),
            (b'{"stream":"S","seq":4,"domain":"hub"}', False),
        ],
    )
    def test_ack(self, data: bytes, duplicate: bool) -> None:
        assert read_puback(reply(data)) is duplicate

    def test_error_reply(self) -> None:
        data = b'{"error":{"code":503,"err_code":10077,"description":"full"},"stream":"S","seq":0}'
        with pytest.raises(nats.js.errors.ServiceUnavailableError):
            read_puback(reply(data))

    @pytest.mark.parametrize("data", [b"not json", b"[1]", b'{"stream":"S"}'])
    def test_unreadable_reply(self, data: bytes) -> None:
        with pytest.raises(nats.js.errors.APIError):
            read_puback(reply(data))

    def test_no_responders_status(self) -> None:
        with pytest.raises(nats.js.errors.NoStreamResponseError):
            read_puback(reply(b"", {"Status": "503"}))
