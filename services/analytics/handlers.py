"""JetStream subscribers: thin batch handlers that hand raw messages to the pipeline."""

from typing import Annotated, Any

from faststream import AckPolicy, Context
from faststream.message import StreamMessage
from faststream.nats import ConsumerConfig, DeliverPolicy, JStream, NatsRouter, PullSub
from faststream.nats.message import NatsBatchMessage
from nats.js.api import AckPolicy as ConsumerAckPolicy

from services.analytics.consumer import BatchPipeline
from services.analytics.increments import CountedZaloEvent, Increment, zalo_increments
from services.analytics.settings import AnalyticsSettings
from shared.subjects import ANALYTICS_ZALO_DURABLE

BatchMessage = Annotated[NatsBatchMessage, Context("message")]


def decode_zalo(data: bytes) -> tuple[str, list[Increment]]:
    event = CountedZaloEvent.model_validate_json(data)
    return event.event_id, zalo_increments(event)


def consumer_config(settings: AnalyticsSettings, durable: str, subject: str) -> ConsumerConfig:
    """The durable pull consumer, declared at start-up with `ensure_consumer`."""
    return ConsumerConfig(
        durable_name=durable,
        filter_subject=subject,
        deliver_policy=DeliverPolicy.ALL,
        ack_policy=ConsumerAckPolicy.EXPLICIT,
        ack_wait=settings.ack_wait,
        max_deliver=settings.max_deliver,
        max_ack_pending=3 * settings.max_write_batch + settings.batch_size,
    )


def zalo_consumer(settings: AnalyticsSettings) -> tuple[str, ConsumerConfig]:
    return settings.zalo_events_stream, consumer_config(
        settings, ANALYTICS_ZALO_DURABLE, settings.zalo_subject_filter
    )


def consumers(settings: AnalyticsSettings) -> list[tuple[str, ConsumerConfig]]:
    """Every durable this service reads through: (stream, consumer config)."""
    return [zalo_consumer(settings)]


def _raw_bodies(message: StreamMessage[Any]) -> Any:
    return message.body  # decoded by the pipeline, one message at a time


def build_router(settings: AnalyticsSettings, pipeline: BatchPipeline) -> NatsRouter:
    """Subscribers bound to durables that `ensure_consumer` declared; acks are manual."""
    router = NatsRouter()
    pull = PullSub(batch_size=settings.batch_size, timeout=settings.batch_timeout, batch=True)

    @router.subscriber(
        settings.zalo_subject_filter,
        stream=JStream(settings.zalo_events_stream, declare=False),
        durable=ANALYTICS_ZALO_DURABLE,
        pull_sub=pull,
        ack_policy=AckPolicy.MANUAL,
        decoder=_raw_bodies,
        title="analytics: Zalo events",
    )
    async def on_zalo_events(body: list[bytes], message: BatchMessage) -> None:
        await pipeline.submit(message.raw_message, decode_zalo)

    return router
