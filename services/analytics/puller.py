"""Batches from a durable JetStream pull consumer, without a task per message.

nats-py's `PullSubscription.fetch` (and FastStream's batch subscriber on top of it) costs a
task, a uuid4 and a timeout per message: about 15 % of the counting process's samples at 14k
events/s, measured with py-spy (see docs/benchmarks.md, Analytics). Here each pull request asks
for up to `batch` messages and waits for them until the batch is full or the request ends
(`shared.pulling.PullRequests`).
"""

import asyncio
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from shared.process import stop_task
from shared.pulling import PullRequests

log = logging.getLogger(__name__)

Handler = Callable[[list[Msg]], Awaitable[None]]

_GRACE = 1.0  # seconds past a request's expiry before its status is taken as lost


class BatchPuller:
    """Pulls batches from one durable consumer and awaits `handle(batch)` for each."""

    def __init__(
        self,
        nc: NatsClient,
        stream: str,
        durable: str,
        handle: Handler,
        batch: int = 1000,
        timeout: float = 0.5,
    ) -> None:
        self.nc, self.stream, self.durable, self.handle = nc, stream, durable, handle
        self.batch, self.timeout = batch, timeout
        self._pulls = PullRequests(nc, stream, durable)
        self._task: asyncio.Task[None] | None = None

    @property
    def requests(self) -> int:
        """Pull requests sent so far."""
        return self._pulls.requests

    async def start(self) -> None:
        await self._pulls.open()
        self._task = asyncio.create_task(self._run(), name=f"pull {self.durable}")

    async def stop(self) -> None:
        """Stop pulling; a batch being handled is cancelled where it waits."""
        if self._task is not None:
            await stop_task(self._task)
        await self._pulls.close()

    async def fetch(self) -> list[Msg]:
        """One pull request: up to `batch` messages, waiting at most `timeout` for them."""
        pulls = self._pulls
        if len(pulls.collected) < self.batch:
            expires = {"expires": int(self.timeout * 1e9)}
            refused = await pulls.request(self.batch, expires, self.timeout + _GRACE)
            if refused is not None:  # e.g. the consumer is gone
                await asyncio.sleep(self.timeout)  # ask again, but no busy loop
        batch, pulls.collected = pulls.collected, []
        return batch

    async def _run(self) -> None:
        while True:
            try:
                batch = await self.fetch()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # NATS away: the client reconnects, ask again later
                log.warning(
                    "pull request failed",
                    extra={"consumer": self.durable, "error": type(exc).__name__},
                )
                await asyncio.sleep(self.timeout)
                continue
            if batch:
                await self.handle(batch)
