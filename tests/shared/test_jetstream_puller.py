"""Batches pulled from a durable consumer: full batches, a partial one, nothing, a refusal."""

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, StreamConfig

from shared.jetstream import BatchPuller, connect
from tools.localstack.servers import start_nats

pytestmark = pytest.mark.integration


@pytest.fixture
async def nc(nats_url: str, unique: str) -> AsyncIterator[NatsClient]:
    client = await connect(nats_url, name="tests-puller")
    js = client.jetstream()
    await js.add_stream(StreamConfig(name=f"P_{unique}", subjects=[f"p{unique}.>"]))
    await js.add_consumer(
        f"P_{unique}",
        ConsumerConfig(durable_name="d", ack_policy=AckPolicy.EXPLICIT, ack_wait=30),
    )
    try:
        yield client
    finally:
        await js.delete_stream(f"P_{unique}")
        await client.close()


async def publish(nc: NatsClient, unique: str, count: int) -> None:
    js = nc.jetstream()
    for i in range(count):
        await js.publish(f"p{unique}.x", str(i).encode())


class Batches:
    """Collects the handed batches and acks them; `full` is set once `expected` arrived."""

    def __init__(self, expected: int) -> None:
        self.sizes: list[int] = []
        self.bodies: list[bytes] = []
        self.expected = expected
        self.full = asyncio.Event()

    async def handle(self, batch: list[Msg]) -> None:
        self.sizes.append(len(batch))
        self.bodies.extend(m.data for m in batch)
        for message in batch:
            await message.ack()
        if len(set(self.bodies)) >= self.expected:
            self.full.set()

    async def wait_for(self, expected: int) -> None:
        self.expected = expected
        if len(set(self.bodies)) < expected:
            self.full.clear()
        await asyncio.wait_for(self.full.wait(), 20)


async def test_full_batches_then_a_partial_one_in_stream_order(nc: NatsClient, unique: str) -> None:
    await publish(nc, unique, 25)
    batches = Batches(25)
    puller = BatchPuller(nc, f"P_{unique}", "d", batches.handle, batch=10, timeout=0.2)
    await puller.start()
    try:
        await asyncio.wait_for(batches.full.wait(), 10)
    finally:
        await puller.stop()
    assert batches.sizes == [10, 10, 5]
    assert batches.bodies == [str(i).encode() for i in range(25)]
    info = await nc.jetstream().consumer_info(f"P_{unique}", "d")
    assert (info.num_pending, info.delivered.stream_seq) == (0, 25)


class CountingPuller(BatchPuller):
    """Sets `asked` once `enough` pull requests were answered."""

    enough = 3

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.asked = asyncio.Event()

    async def fetch(self) -> list[Msg]:
        batch = await super().fetch()
        if self.requests >= self.enough:
            self.asked.set()
        return batch


async def test_idle_requests_expire_and_a_later_message_is_pulled(
    nc: NatsClient, unique: str
) -> None:
    batches = Batches(3)
    puller = CountingPuller(nc, f"P_{unique}", "d", batches.handle, batch=10, timeout=0.05)
    await puller.start()
    try:
        await asyncio.wait_for(puller.asked.wait(), 10)  # three expired with nothing to deliver
        await publish(nc, unique, 3)
        await asyncio.wait_for(batches.full.wait(), 10)
    finally:
        await puller.stop()
    assert batches.sizes == [3]  # never called with an empty batch


async def test_a_missing_consumer_is_asked_again_without_a_busy_loop(
    nc: NatsClient, unique: str, caplog: pytest.LogCaptureFixture
) -> None:
    batches = Batches(2)
    puller = CountingPuller(nc, f"P_{unique}", "late", batches.handle, batch=10, timeout=0.1)
    puller.enough = 2
    await puller.start()
    try:
        await asyncio.wait_for(puller.asked.wait(), 10)  # refused: no such consumer yet
        await nc.jetstream().add_consumer(f"P_{unique}", ConsumerConfig(durable_name="late"))
        await publish(nc, unique, 2)
        await asyncio.wait_for(batches.full.wait(), 10)
    finally:
        await puller.stop()
    assert batches.bodies == [b"0", b"1"]
    assert "pull request refused" in caplog.text
    assert puller.requests < 20  # each refused request waited `timeout` before the next


async def test_stop_ends_the_pulling_task_even_as_a_request_ends(
    nc: NatsClient, unique: str
) -> None:
    for _ in range(20):  # requests expire every 10 ms, so some stops meet a status on its way
        puller = BatchPuller(nc, f"P_{unique}", "d", Batches(0).handle, timeout=0.01)
        await puller.start()
        await asyncio.sleep(0.01)
        started = asyncio.get_running_loop().time()
        await asyncio.wait_for(puller.stop(), 5)
        # At once: a swallowed cancellation would only be repeated after a second.
        assert asyncio.get_running_loop().time() - started < 0.9


async def test_pulling_goes_on_after_nats_restarts(tmp_path: Path) -> None:
    server = start_nats(tmp_path / "nats")
    reconnected = asyncio.Event()

    async def on_reconnect() -> None:
        reconnected.set()

    nc = await connect(server.url, name="tests-puller-restart", reconnected_cb=on_reconnect)
    batches = Batches(3)
    puller = BatchPuller(nc, "R", "d", batches.handle, batch=10, timeout=0.1)
    try:
        js = nc.jetstream()
        await js.add_stream(StreamConfig(name="R", subjects=["r.>"]))
        await js.add_consumer("R", ConsumerConfig(durable_name="d", ack_wait=30))
        await puller.start()
        for i in range(3):
            await js.publish("r.x", str(i).encode())
        await batches.wait_for(3)
        server.kill()
        server = start_nats(server.data_dir, port=server.port)  # same port, same store
        await asyncio.wait_for(reconnected.wait(), 20)
        for i in range(3, 6):
            await js.publish("r.x", str(i).encode())
        await batches.wait_for(6)  # the pull requests lost with the connection were renewed
        assert set(batches.bodies) == {str(i).encode() for i in range(6)}
    finally:
        await puller.stop()
        await nc.close()
        server.stop()
