"""JetStream publishes with the acknowledgement awaited, lean enough for the webhook's hot path.

The protocol is the one nats-py's `js.publish` speaks: the message goes out with its
`Nats-Msg-Id` header and a reply subject, and the stream answers there with a PubAck (or an
error, or a no-responders status when no stream takes the subject). `js.publish` wraps that in
a generic `request` that costs, per call, a random token (a getrandom syscall), a future with a
done-callback, `asyncio.wait_for`, a JSON parse of the ack and a `PubAck` dataclass: about half
of the publish's CPU time (docs/benchmarks.md). Here one wildcard subscription (`<inbox>.*`)
receives every ack, a counter names the reply, a timer from the loop's `call_later` bounds the
wait, and the ack is parsed fully only when it may carry an error.
"""

import asyncio
import json

import nats.errors
import nats.js.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

MSG_ID_HEADER = "Nats-Msg-Id"
_STATUS_HEADER = "Status"
_NO_RESPONDERS = "503"


class AckedPublisher:
    """Publishes to JetStream and waits for its acknowledgement; raises `nats.errors.Error`s.

    `publish` returns whether the stream already had the message id (a duplicate it dropped).
    A timeout raises `nats.errors.TimeoutError`, an error reply `nats.js.errors.APIError`, a
    subject no stream takes `nats.js.errors.NoStreamResponseError` — as `js.publish` does.
    """

    def __init__(self, nc: NatsClient, timeout: float) -> None:
        self._nc = nc
        self._timeout = timeout
        self._prefix = ""
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._sent = 0
        self._subscription: Subscription | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Subscribe to the replies (nats-py re-subscribes after a reconnect by itself)."""
        self._prefix = self._nc.new_inbox() + "."
        # Kept: on 3.11 `asyncio.get_running_loop()` costs a getpid() system call per call.
        self._loop = asyncio.get_running_loop()
        self._subscription = await self._nc.subscribe(self._prefix + "*", cb=self._on_reply)

    async def stop(self) -> None:
        if self._subscription is not None and not self._nc.is_closed:
            await self._subscription.unsubscribe()
        self._subscription = None

    @property
    def waiting(self) -> int:
        """Publishes still waiting for their acknowledgement."""
        return len(self._waiting)

    async def publish(
        self, subject: str, data: bytes, msg_id: str, headers: dict[str, str] | None = None
    ) -> bool:
        """Publish once; True if JetStream reports `msg_id` as a duplicate it did not store.
        `headers` go with the message besides `Nats-Msg-Id` (the trace context, say)."""
        loop = self._loop
        if self._subscription is None or loop is None:
            raise nats.errors.ConnectionClosedError
        self._sent += 1
        token = str(self._sent)
        future: asyncio.Future[Msg] = loop.create_future()
        self._waiting[token] = future
        timer = loop.call_later(self._timeout, _expire, future)
        try:
            sent = {**headers, MSG_ID_HEADER: msg_id} if headers else {MSG_ID_HEADER: msg_id}
            await self._nc.publish(subject, data, reply=self._prefix + token, headers=sent)
            reply = await future
        finally:
            timer.cancel()
            del self._waiting[token]
        return is_duplicate(reply)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._waiting.get(msg.subject[len(self._prefix) :])
        if future is not None and not future.done():
            future.set_result(msg)


def is_duplicate(reply: Msg) -> bool:
    """Read a PubAck: raise for an error or a missing stream, else say if it was a duplicate."""
    data = reply.data
    if not data:
        status = reply.headers.get(_STATUS_HEADER) if reply.headers else None
        if status == _NO_RESPONDERS:
            raise nats.js.errors.NoStreamResponseError
        raise nats.js.errors.APIError(description=f"empty JetStream reply (status {status})")
    # An ack is `{"stream":"…","seq":…}` (nats-server writes a duplicate's by hand, as
    # `…,"duplicate": true}`); anything else, or anything naming an error, is parsed in full.
    if (
        data.startswith(b'{"stream":')
        and b'"seq":' in data
        and b'"error"' not in data
        and b'"duplicate"' not in data
    ):
        return False
    try:
        ack = json.loads(data)
    except ValueError:
        raise nats.js.errors.APIError(description="JetStream reply is not JSON") from None
    if not isinstance(ack, dict):
        raise nats.js.errors.APIError(description="JetStream reply is not an object")
    if "error" in ack:
        nats.js.errors.APIError.from_error(ack["error"])
    if "seq" not in ack:
        raise nats.js.errors.APIError(description="JetStream reply without a sequence")
    return ack.get("duplicate") is True


def _expire(future: "asyncio.Future[Msg]") -> None:
    if not future.done():
        future.set_exception(nats.errors.TimeoutError())
