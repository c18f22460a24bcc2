"""PullConsumer.fetch against the real nats-server: batches as nats-py's fetch gives them."""

import asyncio
import time

import pytest
from nats.aio.client import Client as NatsClient
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, RetentionPolicy, StreamConfig

from shared.jetstream import PullConsumer, times_delivered

pytestmark = pytest.mark.integration


async def work_queue(nc: NatsClient, unique: str, ack_wait: float = 30.0) -> tuple[str, str]:
    js = nc.jetstream()
    stream, durable = f"FETCH_{unique}", f"fetch-{unique}"
    config = StreamConfig(
        name=stream, subjects=[f"fetch.{unique}.>"], retention=RetentionPolicy.WORK_QUEUE
    )
    await js.add_stream(config)
    await js.add_consumer(
        stream,
        ConsumerConfig(durable_name=durable, ack_policy=AckPolicy.EXPLICIT, ack_wait=ack_wait),
    )
    return stream, durable


async def publish(nc: NatsClient, unique: str, count: int, start: int = 0) -> None:
    js = nc.jetstream()
    for n in range(start, start + count):
        await js.publish(f"fetch.{unique}.work", str(n).encode())


async def test_what_is_there_comes_at_once_and_the_rest_next_time(
    nats_client: NatsClient, unique: str
) -> None:
    stream, durable = await work_queue(nats_client, unique)
    await publish(nats_client, unique, 450)
    seen: list[int] = []
    async with PullConsumer(nats_client, stream, durable) as fetcher:
        started = time.monotonic()
        sizes = []
        while len(seen) < 450:
            batch = await fetcher.fetch(200, timeout=30.0)
            sizes.append(len(batch))
            seen += [int(msg.data) for msg in batch]
            for msg in batch:
                await msg.ack()
        waited = time.monotonic() - started
        with pytest.raises(NatsTimeoutError):
            await fetcher.fetch(200, timeout=0.3)
    assert sizes == [200, 200, 50]
    assert sorted(seen) == list(range(450))
    assert waited < 15  # a short last batch does not wait for the 30 s timeout (load-proof)


async def test_waits_for_the_first_message_when_there_is_none(
    nats_client: NatsClient, unique: str
) -> None:
    stream, durable = await work_queue(nats_client, unique)
    async with PullConsumer(nats_client, stream, durable) as fetcher:
        later = asyncio.create_task(publish(nats_client, unique, 1))
        try:
            [msg] = await fetcher.fetch(10, timeout=3.0)  # a batch not filled waits it out
        finally:
            await later
        assert msg.data == b"0"
        assert times_delivered(msg) == 1
        await msg.ack()


async def test_an_unacknowledged_message_comes_again_with_its_count(
    nats_client: NatsClient, unique: str
) -> None:
    stream, durable = await work_queue(nats_client, unique, ack_wait=0.5)
    await publish(nats_client, unique, 1)
    async with PullConsumer(nats_client, stream, durable) as fetcher:
        [first] = await fetcher.fetch(10, timeout=30.0)
        [again] = await fetcher.fetch(1, timeout=30.0)  # after ack_wait
        assert again.data == first.data
        assert (times_delivered(first), times_delivered(again)) == (1, 2)
        assert times_delivered(again) == again.metadata.num_delivered
        await again.ack()


async def test_a_refused_request_times_out_without_spinning(
    nats_client: NatsClient, unique: str
) -> None:
    stream, _ = await work_queue(nats_client, unique)
    async with PullConsumer(nats_client, stream, "no-such-durable") as fetcher:
        started = time.monotonic()
        with pytest.raises(NatsTimeoutError):
            await fetcher.fetch(10, timeout=0.5)
        assert time.monotonic() - started >= 0.4
