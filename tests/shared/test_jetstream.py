"""Streams, consumers and buckets are declared idempotently, and changes are applied."""

import pytest
from nats.js.api import ConsumerConfig, KeyValueConfig

from shared.jetstream import ensure_consumer, ensure_key_value, ensure_stream
from shared.subjects import StreamSpec

pytestmark = pytest.mark.integration


def spec(unique: str, **changes: object) -> StreamSpec:
    values: dict[str, object] = {
        "name": f"T_{unique}",
        "subjects": (f"t{unique}.>",),
        "description": "test stream",
        "max_age": 3600.0,
    }
    return StreamSpec(**(values | changes))  # type: ignore[arg-type]


async def test_stream_created_then_unchanged_then_updated(nats_client, unique: str) -> None:
    js = nats_client.jetstream()
    assert await ensure_stream(js, spec(unique).to_config(1)) == "created"
    assert await ensure_stream(js, spec(unique).to_config(1)) == "unchanged"
    assert await ensure_stream(js, spec(unique, max_age=7200.0).to_config(1)) == "updated"
    assert (await js.stream_info(f"T_{unique}")).config.max_age == 7200.0
    await js.delete_stream(f"T_{unique}")


async def test_durable_consumer_config_change_is_applied(nats_client, unique: str) -> None:
    js = nats_client.jetstream()
    await ensure_stream(js, spec(unique).to_config(1))
    config = ConsumerConfig(durable_name="svc-test", max_deliver=3, ack_wait=30.0)
    assert await ensure_consumer(js, f"T_{unique}", config) == "created"
    assert await ensure_consumer(js, f"T_{unique}", config) == "unchanged"
    changed = ConsumerConfig(durable_name="svc-test", max_deliver=7, ack_wait=30.0)
    assert await ensure_consumer(js, f"T_{unique}", changed) == "updated"
    info = await js.consumer_info(f"T_{unique}", "svc-test")
    assert info.config.max_deliver == 7
    await js.delete_stream(f"T_{unique}")


async def test_key_value_bucket_ttl_change_is_applied(nats_client, unique: str) -> None:
    js = nats_client.jetstream()
    kv = await ensure_key_value(js, KeyValueConfig(bucket=f"b_{unique}", ttl=60.0))
    await kv.put("k", b"v")
    kv = await ensure_key_value(js, KeyValueConfig(bucket=f"b_{unique}", ttl=120.0))
    assert (await kv.get("k")).value == b"v"
    assert (await kv.status()).ttl == 120.0
    await js.delete_key_value(f"b_{unique}")
