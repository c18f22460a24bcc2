"""Idempotent declaration of streams, consumers and key-value buckets at start-up.

A second start changes nothing; a changed definition updates the server's copy (and says so in
the log) instead of being silently ignored, which is what FastStream does for consumers.
"""

import logging
from dataclasses import asdict
from typing import Any
from urllib.parse import urlsplit

import nats
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import ConsumerConfig, KeyValueConfig, StreamConfig
from nats.js.errors import BucketNotFoundError, NotFoundError
from nats.js.kv import KeyValue

log = logging.getLogger(__name__)

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
