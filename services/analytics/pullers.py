"""JetStream consumers: thin batch handlers that hand raw messages to the pipeline.

The batches are pulled with `shared.jetstream.BatchPuller` rather than a FastStream subscriber:
the per-message cost of nats-py's fetch, under FastStream's batch subscriber, kept the service
below its throughput target (see `shared.jetstream`).
"""

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from nats.aio.msg import Msg
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.analytics.consumer import BatchPipeline, Decoder
from services.analytics.increments import CountedZaloEvent, Decoded, zalo_increments
from services.analytics.ledger import CounterLedger
from services.analytics.reach import delivery_effects
from services.analytics.registry import registry_fact
from services.analytics.settings import AnalyticsSettings
from services.analytics.snapshots import ZaloStatsSnapshotted, snapshot_fact
from services.analytics.tips import TIP_EVENT, tip_effects
from shared.dead_letters import PoisonMessages
from shared.events.broadcast import DeliveryOutcomeRecorded, RegistryGroupChanged
from shared.jetstream import BatchHandler, BatchPuller, connect
from shared.metrics import watch_consumers
from shared.subjects import (
    ANALYTICS_BROADCAST_DURABLE,
    ANALYTICS_REGISTRY_DURABLE,
    ANALYTICS_SNAPSHOTS_DURABLE,
    ANALYTICS_TIPS_DURABLE,
    ANALYTICS_ZALO_DURABLE,
)


def decode_zalo(data: bytes) -> Decoded:
    event = CountedZaloEvent.model_validate_json(data)
    return Decoded(event.event_id, zalo_increments(event))


def decode_tip(data: bytes) -> Decoded:
    event = TIP_EVENT.validate_json(data)
    increments, facts = tip_effects(event)
    return Decoded(event.event_id, increments, facts)


def decode_delivery(data: bytes) -> Decoded:
    event = DeliveryOutcomeRecorded.model_validate_json(data)
    increments, facts = delivery_effects(event)
    return Decoded(event.event_id, increments, facts)


def decode_registry(data: bytes) -> Decoded:
    event = RegistryGroupChanged.model_validate_json(data)
    return Decoded(event.event_id, [], [registry_fact(event)])


def decode_snapshot(data: bytes) -> Decoded:
    event = ZaloStatsSnapshotted.model_validate_json(data)
    return Decoded(event.event_id, [], [snapshot_fact(event)])


def consumer_config(settings: AnalyticsSettings, durable: str, subject: str) -> ConsumerConfig:
    """A durable pull consumer, declared at start-up with `ensure_consumer`."""
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=AckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait,
        max_deliver=settings.max_deliver,
        max_ack_pending=3 * settings.max_write_batch + settings.batch_size,
    )


def subscriptions(settings: AnalyticsSettings) -> list[tuple[str, str, str, Decoder]]:
    """(stream, subject filter, durable, decoder) of every stream this service counts."""
    return [
        (
            settings.zalo_events_stream,
            settings.zalo_subject_filter,
            ANALYTICS_ZALO_DURABLE,
            decode_zalo,
        ),
        (settings.tips_stream, settings.tips_subject_filter, ANALYTICS_TIPS_DURABLE, decode_tip),
        (
            settings.broadcast_stream,
            settings.broadcast_subject_filter,
            ANALYTICS_BROADCAST_DURABLE,
            decode_delivery,
        ),
        (
            settings.snapshots_stream,
            settings.snapshots_subject_filter,
            ANALYTICS_SNAPSHOTS_DURABLE,
            decode_snapshot,
        ),
        (
            settings.broadcast_stream,
            settings.registry_subject_filter,
            ANALYTICS_REGISTRY_DURABLE,
            decode_registry,
        ),
    ]


def consumers(settings: AnalyticsSettings) -> list[tuple[str, ConsumerConfig]]:
    """Every durable this service reads through: (stream, consumer config)."""
    return [
        (stream, consumer_config(settings, durable, subject))
        for stream, subject, durable, _ in subscriptions(settings)
    ]


@asynccontextmanager
async def consuming(
    settings: AnalyticsSettings, ledger: CounterLedger
) -> AsyncIterator[BatchPipeline]:
    """Pull every durable that `ensure_consumer` declared into a pipeline over `ledger` while
    open (poison events to `deadletter.analytics`); at exit, stop pulling, let the pipeline
    write (and ack) what it holds, then disconnect."""
    nc = await connect(settings.nats_url, name="analytics-consumers")
    poison = PoisonMessages(nc, "analytics", settings.max_deliver)
    pipeline = BatchPipeline(ledger, poison, settings.max_write_batch, settings.retry_delay)
    pullers = [
        BatchPuller(
            nc,
            stream,
            durable,
            _handler(pipeline, decoder),
            settings.batch_size,
            settings.batch_timeout,
        )
        for stream, _, durable, decoder in subscriptions(settings)
    ]
    watched = [(stream, durable) for stream, _, durable, _ in subscriptions(settings)]
    unwatch = watch_consumers("analytics", nc.jetstream(), watched)
    try:
        for puller in pullers:
            await puller.start()
        yield pipeline
    finally:
        unwatch()
        for puller in pullers:
            await puller.stop()
        await pipeline.close()
        with contextlib.suppress(Exception):  # NATS may be away: unacked messages come again
            await nc.flush(timeout=2)  # the acks of the last batch
        await nc.close()


def _handler(pipeline: BatchPipeline, decoder: Decoder) -> BatchHandler:
    async def on_batch(messages: list[Msg]) -> None:
        await pipeline.submit(messages, decoder)

    return on_batch
