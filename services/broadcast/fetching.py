"""Batches of work-queue messages from a durable pull consumer, without a task per message.

`WorkFetcher.fetch(batch, timeout)` answers as nats-py's `PullSubscription.fetch` does: first
what the consumer has for us at once (a `no_wait` pull request: the server delivers what it
has, up to `batch`, and ends the request with a 404 when that was all); only when that was
nothing, one pull request that waits up to `timeout` (the server sends messages as they come
until the batch is full, then ends it with a 408 when it expires). No message, or the server
refusing the request: nats-py's `TimeoutError`. The requests go through
`shared.pulling.PullRequests` (a subscription callback collects the messages: ~7 µs per message
instead of ~25 µs through nats-py's fetch). One caller at a time.
"""

import asyncio
import time

from nats.aio.msg import Msg
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext

from shared.pulling import PullRequests


class WorkFetcher:
    """`async with WorkFetcher(js, stream, durable) as fetcher: await fetcher.fetch(n, t)`;
    one caller at a time (each fetch loop has its own fetcher)."""

    def __init__(self, js: JetStreamContext, stream: str, durable: str) -> None:
        # The JetStream context's connection (nats-py keeps it as `_nc`; it has no accessor).
        self._pulls = PullRequests(js._nc, stream, durable)

    @property
    def requests(self) -> int:
        """Pull requests sent so far."""
        return self._pulls.requests

    async def __aenter__(self) -> "WorkFetcher":
        await self._pulls.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self._pulls.close()

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """Up to `batch` messages: those the consumer has now, else the first that come
        within `timeout` seconds (and more up to `batch` until then)."""
        pulls = self._pulls
        deadline = time.monotonic() + timeout
        if not pulls.collected:
            refused = await pulls.request(batch, {"no_wait": True}, timeout)
            if not pulls.collected and refused is None:
                expires = int((deadline - time.monotonic()) * 1e9) - 100_000
                if expires > 0:
                    left = max(0.0, deadline - time.monotonic())
                    refused = await pulls.request(batch, {"expires": expires}, left)
            if not pulls.collected:
                if refused is not None:  # e.g. the consumer is gone: ask again, no busy loop
                    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                raise NatsTimeoutError
        taken, pulls.collected = pulls.collected[:batch], pulls.collected[batch:]
        return taken
