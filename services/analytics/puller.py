"""Batches from a durable JetStream pull consumer, without a task per message.

nats-py's `PullSubscription.fetch` (and FastStream's batch subscriber on top of it) awaits
every message of a batch through `Subscription.next_msg`, which makes a task, a uuid4 and a
timeout per message: about 15 % of the counting process's samples at 14k events/s, measured
with py-spy (see docs/benchmarks.md, Analytics). Here one pull request asks for up
to `batch` messages and a subscription callback collects them until the batch is full or the
server ends the request with a status (408: expired, 404: nothing to deliver, 409: refused,
unless its description is "Batch Completed").

Each request replies to its own inbox subject, so a late status of an earlier request does
not end the current one; a late message of an earlier request is a real delivery and goes
into the next batch. Messages are acknowledged by whoever handles the batch.
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Awaitable, Callable

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DEFAULT_PREFIX, Header

from shared.process import stop_task

log = logging.getLogger(__name__)

Handler = Callable[[list[Msg]], Awaitable[None]]

_STATUS = Header.STATUS.value
_DESCRIPTION = Header.DESCRIPTION.value
_ENDED = {"404", "408"}  # nothing (more) to deliver before the request expired: ask again
_COMPLETED = "Batch Completed"  # a 409 that ends a request normally
_HEARTBEAT = "100"  # not asked for; would not end a request
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
        self._next_subject = f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self.requests = 0  # pull requests sent
        self._collected: list[Msg] = []
        self._done: asyncio.Future[str | None] | None = None
        self._sub: Subscription | None = None
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        self._sub = await self.nc.subscribe(f"{self._inbox}.*", cb=self._on_message)
        self._task = asyncio.create_task(self._run(), name=f"pull {self.durable}")

    async def stop(self) -> None:
        """Stop pulling; a batch being handled is cancelled where it waits."""
        if self._task is not None:
            await stop_task(self._task)
        if self._sub is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):  # the connection may be going away
                await self._sub.unsubscribe()

    async def fetch(self) -> list[Msg]:
        """One pull request: up to `batch` messages, waiting at most `timeout` for them."""
        self.requests += 1
        wanted = self.batch - len(self._collected)
        if wanted > 0:
            loop = asyncio.get_running_loop()
            self._done = done = loop.create_future()
            request = {"batch": wanted, "expires": int(self.timeout * 1e9)}
            reply = f"{self._inbox}.{self.requests}"
            await self.nc.publish(self._next_subject, json.dumps(request).encode(), reply=reply)
            # asyncio.wait, not wait_for: on Python 3.11 wait_for returns the result instead of
            # raising when the task is cancelled just as the result arrives (stop() then hung).
            await asyncio.wait([done], timeout=self.timeout + _GRACE)
            if not done.done():
                done.cancel()  # the status was lost (a reconnect): ask again
            elif done.result() is not None:  # refused, e.g. the consumer is gone
                await asyncio.sleep(self.timeout)  # ask again, but no busy loop
        batch, self._collected = self._collected, []
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

    async def _on_message(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self._collected.append(msg)
            if len(self._collected) >= self.batch:
                self._finish(None)
        elif status != _HEARTBEAT and msg.subject.rpartition(".")[2] == str(self.requests):
            description = (msg.headers or {}).get(_DESCRIPTION, "")
            if status in _ENDED or description == _COMPLETED:
                self._finish(None)
                return
            log.warning(
                "pull request refused",
                extra={"consumer": self.durable, "status": status, "reason": description},
            )
            self._finish(status)

    def _finish(self, status: str | None) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(status)
