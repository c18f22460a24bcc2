"""JetStream subscribers: thin batch handlers that hand raw messages to the pipeline."""

from typing import Annotated, Any

from faststream import AckPolicy, Context
from faststream.message import StreamMessage
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, NatsRouter, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.js.api import AckPolicy as ConsumerAckPolicy

from services.analytics.consumer import BatchPipeline, Decoder
from services.analytics.increments import CountedZaloEvent, Decoded, zalo_increments
from services.analytics.reach import delivery_effects
from services.analytics.settings import AnalyticsSettings
from services.analytics.snapshots import ZaloStatsSnapshotted, snapshot_fact
from services.analytics.tips import TIP_EVENT, tip_effects
from shared.events.broadcast import DeliveryOutcomeRecorded
from shared.subjects import (
    ANALYTICS_BROADCAST_DURABLE,
    ANALYTICS_SNAPSHOTS_DURABLE,
    ANALYTICS_TIPS_DURABLE,
    ANALYTICS_ZALO_DURABLE,
)

BatchMessage = Annotated[NatsBatchMessage, Context("message")]


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


def decode_snapshot(data: bytes) -> Decoded:
    event = ZaloStatsSnapshotted.model_validate_json(data)
    return Decoded(event.event_id, [], [snapshot_fact(event)])


def consumer_config(settings: AnalyticsSettings, durable: str, subject: str) -> ConsumerConfig:
    """A durable pull consumer, declared at start-up with `ensure_consumer`."""
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=ConsumerAckPolicy.EXPLICIT,
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
    ]


def consumers(settings: AnalyticsSettings) -> list[tuple[str, ConsumerConfig]]:
    """Every durable this service reads through: (stream, consumer config)."""
    return [
        (stream, consumer_config(settings, durable, subject))
        for stream, subject, durable, _ in subscriptions(settings)
    ]


def _raw_bodies(message: StreamMessage[Any]) -> Any:
    return message.body  # decoded by the pipeline, one message at a time


def build_router(settings: AnalyticsSettings, pipeline: BatchPipeline) -> NatsRouter:
    """Subscribers bound to durables that `ensure_consumer` declared; acks are manual."""
    router = NatsRouter()
    for stream, subject, durable, decoder in subscriptions(settings):
        _subscribe(router, settings, pipeline, (stream, subject, durable, decoder))
    return router


def _subscribe(
    router: NatsRouter,
    settings: AnalyticsSettings,
    pipeline: BatchPipeline,
    subscription: tuple[str, str, str, Decoder],
) -> None:
    stream, subject, durable, decoder = subscription

    @router.subscriber(
        subject,
        stream=JStream(stream, declare=False),
        durable=durable,
        pull_sub=PullSub(
            batch_size=settings.batch_size, timeout=settings.batch_timeout, batch=True
        ),
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_bodies,
        title=f"analytics: {durable}",
    )
    async def on_batch(body: list[bytes], message: BatchMessage) -> None:
        await pipeline.submit(message.raw_message, decoder)
