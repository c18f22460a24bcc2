"""Pull requests to a durable JetStream consumer, answered into one subscription callback.

nats-py's `PullSubscription.fetch` (and FastStream's batch subscriber on top of it) awaits
every message of a batch through `Subscription.next_msg`, which makes a task, a uuid4 and a
timeout per message: ~25–29 µs of CPU per message measured against a real nats-server. Here a
pull request asks for up to a batch and a subscription callback collects the messages (~5–7 µs
each) until the batch is full or the server ends the request with a status (408: expired,
404: nothing to deliver, 409: refused unless its description is "Batch Completed").

Each request replies to its own inbox subject, so a late status of an earlier request cannot
end the current one; a late message of an earlier request is a real delivery and stays
collected for the next batch. Messages are acknowledged by whoever handles them. One caller
at a time: a request's state is the object's.

Used by analytics' counting process (`services/analytics/puller.py`) and broadcast's sender
workers (`services/broadcast/fetching.py`).
"""

import asyncio
import contextlib
import json
import logging
from collections.abc import Mapping

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import DEFAULT_PREFIX, Header

log = logging.getLogger(__name__)

_STATUS = Header.STATUS.value
_DESCRIPTION = Header.DESCRIPTION.value
_ENDED = {"404", "408"}  # nothing (more) to deliver for this request: not an error
_COMPLETED = "Batch Completed"  # a 409 that ends a request normally
_HEARTBEAT = "100"  # never asked for; does not end a request


class PullRequests:
    """`await open()`, then `await request(batch, options, wait)` as often as needed, `close()`;
    the messages gather in `collected` (the caller takes them out)."""

    def __init__(self, nc: NatsClient, stream: str, durable: str) -> None:
        self.nc, self.durable = nc, durable
        self._next_subject = f"{DEFAULT_PREFIX}.CONSUMER.MSG.NEXT.{stream}.{durable}"
        self._inbox = nc.new_inbox()
        self.requests = 0  # pull requests sent; the last one's number is its reply token
        self.collected: list[Msg] = []
        self._wanted = 0
        self._done: asyncio.Future[str | None] | None = None
        self._sub: Subscription | None = None

    async def open(self) -> None:
        self._sub = await self.nc.subscribe(f"{self._inbox}.*", cb=self._on_message)

    async def close(self) -> None:
        if self._sub is not None and not self.nc.is_closed:
            with contextlib.suppress(Exception):  # the connection may be going away
                await self._sub.unsubscribe()

    async def request(self, batch: int, options: Mapping[str, object], wait: float) -> str | None:
        """Ask for enough messages to make `collected` hold `batch` (`options`: `expires` in
        ns or `no_wait`), and wait until it does, the server ends the request, or `wait`
        seconds pass (a status lost in a reconnect). Returns the status of a refusal (e.g.
        the consumer is gone), else None."""
        self.requests += 1
        self._wanted = batch
        done: asyncio.Future[str | None] = asyncio.get_running_loop().create_future()
        self._done = done
        body = json.dumps({"batch": batch - len(self.collected), **options}).encode()
        await self.nc.publish(self._next_subject, body, reply=f"{self._inbox}.{self.requests}")
        # asyncio.wait, not wait_for: on Python 3.11 wait_for returns the result instead of
        # raising when the caller is cancelled just as the result arrives (stops then hung).
        await asyncio.wait([done], timeout=wait)
        if not done.done():
            done.cancel()
            return None
        return done.result()

    async def _on_message(self, msg: Msg) -> None:
        status = msg.headers.get(_STATUS) if msg.headers else None
        if status is None:
            self.collected.append(msg)
            if len(self.collected) >= self._wanted:
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
