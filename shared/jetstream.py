"""Every piece of hand-written JetStream code: connecting, declaring, publishing, pulling.

Everything else uses FastStream's declared publishers and subscribers. What is here, and why:

- **Declaration** (`ensure_stream`, `ensure_consumer`, `ensure_key_value`): idempotent at
  start-up. A second start changes nothing; a changed definition updates the server's copy (and
  says so in the log) instead of being silently ignored, which is what FastStream does for
  consumers.
- **Acked publishing** (`AckedPublisher`, the webhook's hot path) and **batched publishing**
  (`publish_all`, the planner's work messages and the senders' outcome events): the protocol
  nats-py's `js.publish` speaks (the message with its `Nats-Msg-Id` and a reply subject; the
  stream answers there with a PubAck, an error, or a no-responders status), with one wildcard
  reply subscription instead of a request per message. `js.publish` costs, per call, a random
  token (a getrandom syscall), a future with a done-callback, `asyncio.wait_for`, a JSON parse
  of the ack and a `PubAck` dataclass: about half of the publish's CPU time; `publish_async`
  35 µs per message against 17 µs here (docs/benchmarks.md). Every PubAck is read by
  `read_puback`, which raises the errors nats-py would.
- **Pull batches** (`PullConsumer`, and `BatchPuller` that loops over it): nats-py's
  `PullSubscription.fetch` (and FastStream's batch subscriber on top of it) awaits every
  message through `Subscription.next_msg`, a task, a uuid4 and a timeout per message: ~25 µs
  of CPU per message against ~5–7 µs when a subscription callback collects them.
- **Ack tokens** (`times_delivered`): the delivery count read from a message's reply subject.

No private attribute of nats-py is read: callers pass the connection itself.
"""

import asyncio
import contextlib
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import ConnectionClosedError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.api import DEFAULT_PREFIX, ConsumerConfig, Header, KeyValueConfig, StreamConfig
from nats.js.errors import APIError, BucketNotFoundError, NoStreamResponseError, NotFoundError
from nats.js.kv import KeyValue

from shared.process import stop_task
from shared.tracing import inject

log = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"
_STATUS = Header.STATUS.value
_DESCRIPTION = Header.DESCRIPTION.value
_NO_RESPONDERS = "503"  # nothing stores the subject: no stream listens to it

# Fields the server fills in or normalizes; comparing them would report drift that is not ours.
_SERVER_OWNED = {"sealed", "deny_delete", "deny_purge", "allow_rollup_hdrs", "template_owner"}


def inbox_prefix(url: str) -> str:
    """Where replies to this connection's requests go (JetStream API answers, pulled messages,
    acknowledgements): `_INBOX_<user>` for a URL that names a NATS user, whose permissions let
    only that user subscribe there (deploy/nats/accounts.conf), else nats-py's `_INBOX`. A
    shared `_INBOX.>` would let any service read what another pulls, tips included."""
    user = urlsplit(url.split(",")[0].strip()).username
    return f"_INBOX_{user}" if user else "_INBOX"


def pull_inbox_prefix(url: str) -> bytes:
    """The same prefix for FastStream's pull subscribers, which would otherwise reply to
    nats-py's `_INBOX.` whatever the connection's prefix is."""
    return f"{inbox_prefix(url)}.".encode()


async def connect(url: str, name: str, **options: Any) -> NatsClient:
    """Connect to NATS with reconnects that never give up (a service outlives NATS restarts)."""
    defaults: dict[str, Any] = {
        "name": name,
        "inbox_prefix": inbox_prefix(url),
        "allow_reconnect": True,
        "max_reconnect_attempts": -1,
        "reconnect_time_wait": 0.5,
        "connect_timeout": 2,
    }
    return await nats.connect(url, **(defaults | options))


def _differences(wanted: Any, actual: Any) -> dict[str, tuple[Any, Any]]:
    want, have = asdict(wanted), asdict(actual)
    return {
        key: (value, have.get(key))
        for key, value in want.items()
        if value is not None and key not in _SERVER_OWNED and have.get(key) != value
    }


async def ensure_stream(js: JetStreamContext, config: StreamConfig) -> str:
    """Create the stream, or update it if its definition changed. Returns what was done."""
    try:
        info = await js.stream_info(config.name or "")
    except NotFoundError:
        await js.add_stream(config)
        log.info("stream created", extra={"stream": config.name})
        return "created"
    drift = _differences(config, info.config)
    if not drift:
        return "unchanged"
    await js.update_stream(config)
    log.warning("stream updated", extra={"stream": config.name, "changed": sorted(drift)})
    return "updated"


async def ensure_consumer(js: JetStreamContext, stream: str, config: ConsumerConfig) -> str:
    """Create the durable consumer, or update its editable fields if they changed."""
    try:
        info = await js.consumer_info(stream, config.durable_name or "")
    except NotFoundError:
        await js.add_consumer(stream, config)
        log.info("consumer created", extra={"stream": stream, "consumer": config.durable_name})
        return "created"
    drift = _differences(config, info.config)
    if not drift:
        return "unchanged"
    await js.add_consumer(stream, config)
    log.warning(
        "consumer updated",
        extra={"stream": stream, "consumer": config.durable_name, "changed": sorted(drift)},
    )
    return "updated"


async def ensure_key_value(js: JetStreamContext, config: KeyValueConfig) -> KeyValue:
    """Open the bucket, creating it first if needed; a changed TTL or history is applied."""
    try:
        kv = await js.key_value(config.bucket)
    except BucketNotFoundError:
        kv = await js.create_key_value(config)
        log.info("key-value bucket created", extra={"bucket": config.bucket})
        return kv
    status = await kv.status()
    if status.ttl != config.ttl or status.history != config.history:
        stream_config = status.stream_info.config
        stream_config.max_age = config.ttl
        stream_config.max_msgs_per_subject = config.history
        await js.update_stream(stream_config)
        log.warning("key-value bucket updated", extra={"bucket": config.bucket})
    return kv


# --- publishing --------------------------------------------------------------------------

# (subject, body, Nats-Msg-Id)
Message = tuple[str, bytes, str]


def read_puback(reply: Msg) -> bool:
    """Read a stream's answer to a publish: raise `NoStreamResponseError` when no stream took
    the subject, `APIError` for an error or anything that is not an ack; else return whether
    the stream already had the message id (a duplicate it dropped)."""
    data = reply.data
    if not data:
        status = reply.headers.get(_STATUS) if reply.headers else None
        if status == _NO_RESPONDERS:
            raise NoStreamResponseError
        raise APIError(description=f"empty JetStream reply (status {status})")
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
        raise APIError(description="JetStream reply is not JSON") from None
    if not isinstance(ack, dict):
        raise APIError(description="JetStream reply is not an object")
    if "error" in ack:
        APIError.from_error(ack["error"])  # raises the matching APIError
    if "seq" not in ack:
        raise APIError(description="JetStream reply without a sequence")
    return ack.get("duplicate") is True


class AckedPublisher:
    """Publishes to JetStream and waits for its acknowledgement, one message at a time per
    caller (many callers at once); raises what `js.publish` raises: `nats.errors.TimeoutError`,
    `APIError`, `NoStreamResponseError`. One wildcard subscription (`<inbox>.*`) receives every
    ack, a counter names the reply, and a timer from the loop's `call_later` bounds the wait."""

    def __init__(self, nc: NatsClient, timeout: float) -> None:
        self.nc = nc
        self.timeout = timeout
        self._prefix = ""
        self._waiting: dict[str, asyncio.Future[Msg]] = {}
        self._sent = 0
        self._subscription: Subscription | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    async def start(self) -> None:
        """Subscribe to the replies (nats-py re-subscribes after a reconnect by itself)."""
        self._prefix = self.nc.new_inbox() + "."
        # Kept: on 3.11 `asyncio.get_running_loop()` costs a getpid() system call per call.
        self._loop = asyncio.get_running_loop()
        self._subscription = await self.nc.subscribe(self._prefix + "*", cb=self._on_reply)

    async def stop(self) -> None:
        if self._subscription is not None and not self.nc.is_closed:
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
            raise ConnectionClosedError
        self._sent += 1
        token = str(self._sent)
        future: asyncio.Future[Msg] = loop.create_future()
        self._waiting[token] = future
        timer = loop.call_later(self.timeout, _expire, future)
        try:
            sent = {**headers, MSG_ID_HEADER: msg_id} if headers else {MSG_ID_HEADER: msg_id}
            await self.nc.publish(subject, data, reply=self._prefix + token, headers=sent)
            reply = await future
        finally:
            timer.cancel()
            del self._waiting[token]
        return read_puback(reply)

    async def _on_reply(self, msg: Msg) -> None:
        future = self._waiting.get(msg.subject[len(self._prefix) :])
        if future is not None and not future.done():
            future.set_result(msg)


def _expire(future: "asyncio.Future[Msg]") -> None:
    if not future.done():
        future.set_exception(NatsTimeoutError())


async def publish_all(
    nc: NatsClient,
    messages: Sequence[Message],
    timeout: float,
    headers: Mapping[str, str] | None = None,
) -> list[bool]:
    """Publish `messages` pipelined (all sent, then all acknowledgements awaited) and wait until
    the stream has stored every one; raises on the first refusal (`read_puback`'s errors) or
    `TimeoutError` after `timeout` seconds. A message the stream already had (same
    `Nats-Msg-Id`) counts as stored; the result tells which those were, in order. `headers`
    go with every message."""
    if not messages:
        return []
    done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
    waiting = len(messages)
    duplicates = [False] * len(messages)

    async def on_reply(msg: Msg) -> None:
        nonlocal waiting
        if done.done():
            return
        try:
            duplicate = read_puback(msg)
        except (APIError, NoStreamResponseError) as refused:
            done.set_exception(refused)
            return
        duplicates[int(msg.subject.rsplit(".", 1)[1])] = duplicate
        waiting -= 1
        if not waiting:
            done.set_result(None)

    inbox = nc.new_inbox()
    sub = await nc.subscribe(f"{inbox}.*", cb=on_reply)
    context = {**(headers or {}), **inject({})}  # every message continues the current trace
    try:
        for n, (subject, body, msg_id) in enumerate(messages):
            sent = {**context, MSG_ID_HEADER: msg_id}
            await nc.publish(subject, body, reply=f"{inbox}.{n}", headers=sent)
        # asyncio.wait, not wait_for: on Python 3.11 wait_for can swallow a cancellation.
        await asyncio.wait([done], timeout=timeout)
        if not done.done():
            raise TimeoutError(f"{waiting} of {len(messages)} messages not acknowledged")
        done.result()
    finally:
        if not done.done():
            done.cancel()
        with contextlib.suppress(Exception):  # a closed connection must not hide the error
            await sub.unsubscribe()
    return duplicates


# --- pulling -----------------------------------------------------------------------------

_ENDED = {"404", "408"}  # nothing (more) to deliver for this request: not an error
_COMPLETED = "Batch Completed"  # a 409 that ends a request normally
_HEARTBEAT = "100"  # never asked for; does not end a request
_GRACE = 1.0  # seconds past a request's expiry before its status is taken as lost


class PullConsumer:
    """Batches from a durable pull consumer: `async with PullConsumer(nc, stream, durable)`.

    A pull request asks for up to a batch and a subscription callback collects the messages
    until the batch is full or the server ends the request with a status (408: expired, 404:
    nothing to deliver, 409: refused unless its description is "Batch Completed"). Each request
    replies to its own inbox subject, so a late status of an earlier request cannot end the
    current one; a late message of an earlier request is a real delivery and stays collected
    for the next batch. Messages are acknowledged by whoever handles them. One caller at a
    time: a request's state is the object's."""

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

    async def __aenter__(self) -> "PullConsumer":
        await self.open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.close()

    async def fetch(self, batch: int, timeout: float) -> list[Msg]:
        """As nats-py's `PullSubscription.fetch`: up to `batch` messages the consumer has now
        (a `no_wait` request); only when that was nothing, the first that come within
        `timeout` seconds (and more up to `batch` until then). Nothing, or the server refusing
        the request: nats-py's `TimeoutError`."""
        deadline = time.monotonic() + timeout
        if not self.collected:
            refused = await self._request(batch, {"no_wait": True}, timeout)
            if not self.collected and refused is None:
                expires = int((deadline - time.monotonic()) * 1e9) - 100_000
                if expires > 0:
                    left = max(0.0, deadline - time.monotonic())
                    refused = await self._request(batch, {"expires": expires}, left)
            if not self.collected:
                if refused is not None:  # e.g. the consumer is gone: ask again, no busy loop
                    await asyncio.sleep(max(0.0, deadline - time.monotonic()))
                raise NatsTimeoutError
        taken, self.collected = self.collected[:batch], self.collected[batch:]
        return taken

    async def fill(self, batch: int, timeout: float) -> list[Msg]:
        """One request that waits up to `timeout` for a full batch: what came, maybe nothing."""
        if len(self.collected) < batch:
            expires = {"expires": int(timeout * 1e9)}
            refused = await self._request(batch, expires, timeout + _GRACE)
            if refused is not None:  # e.g. the consumer is gone
                await asyncio.sleep(timeout)  # ask again, but no busy loop
        taken, self.collected = self.collected, []
        return taken

    async def _request(self, batch: int, options: Mapping[str, object], wait: float) -> str | None:
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


BatchHandler = Callable[[list[Msg]], Awaitable[None]]


class BatchPuller:
    """Pulls batches from one durable consumer in a task and awaits `handle(batch)` for each
    (analytics' counting process: a whole batch per request)."""

    def __init__(
        self,
        nc: NatsClient,
        stream: str,
        durable: str,
        handle: BatchHandler,
        batch: int = 1000,
        timeout: float = 0.5,
    ) -> None:
        self.durable, self.handle = durable, handle
        self.batch, self.timeout = batch, timeout
        self._consumer = PullConsumer(nc, stream, durable)
        self._task: asyncio.Task[None] | None = None

    @property
    def requests(self) -> int:
        """Pull requests sent so far."""
        return self._consumer.requests

    async def start(self) -> None:
        await self._consumer.open()
        self._task = asyncio.create_task(self._run(), name=f"pull {self.durable}")

    async def stop(self) -> None:
        """Stop pulling; a batch being handled is cancelled where it waits."""
        if self._task is not None:
            await stop_task(self._task)
        await self._consumer.close()

    async def fetch(self) -> list[Msg]:
        """One pull request: up to `batch` messages, waiting at most `timeout` for them."""
        return await self._consumer.fill(self.batch, self.timeout)

    async def _run(self) -> None:
        while True:
            try:
                batch = await self.fetch()
            except (nats.errors.Error, OSError) as exc:  # NATS away: it reconnects, ask again
                log.warning(
                    "pull request failed",
                    extra={"consumer": self.durable, "error": type(exc).__name__},
                )
                await asyncio.sleep(self.timeout)
                continue
            if batch:
                await self.handle(batch)


# --- ack tokens --------------------------------------------------------------------------


def times_delivered(msg: Msg) -> int:
    """How often JetStream has handed `msg` out, read from its reply subject
    (`$JS.ACK.<stream>.<consumer>.<delivered>.<stream seq>.<consumer seq>.<time>.<pending>`):
    `msg.metadata` parses every field into objects, about eight times this cost per message.
    Any other form of the subject goes through `msg.metadata`."""
    tokens = (msg.reply or "").split(".")
    if len(tokens) == 9 and tokens[0] == "$JS" and tokens[1] == "ACK" and tokens[4].isdigit():
        return int(tokens[4])
    return int(msg.metadata.num_delivered)
