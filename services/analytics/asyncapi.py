"""The AsyncAPI document of the analytics service: the streams it counts and what it publishes.

`python -m services.analytics.asyncapi [--out docs/asyncapi/analytics.json]`. Analytics pulls
whole batches by hand-written JetStream code (`shared.jetstream.BatchPuller`); its durables
and subject filters (`pullers.subscriptions`) are declared here on a FastStream broker that
never connects, with the models the batch decoders read, so the document comes from the same
code as the consumers.
"""

from collections.abc import Sequence
from typing import Any

from faststream.nats import JStream, NatsBroker, PullSub

from services.analytics.pullers import subscriptions
from services.analytics.settings import AnalyticsSettings
from services.analytics.snapshots import ZaloStatsSnapshotted
from services.analytics.tips import TipEvent
from shared.asyncapi import document, write
from shared.events.broadcast import DeliveryOutcomeRecorded, RegistryGroupChanged
from shared.events.dead_letter import MessageDeadLettered
from shared.events.zalo import ZaloEventReceived
from shared.subjects import (
    ANALYTICS_BROADCAST_DURABLE,
    ANALYTICS_REGISTRY_DURABLE,
    ANALYTICS_SNAPSHOTS_DURABLE,
    ANALYTICS_SNAPSHOTS_STREAM,
    ANALYTICS_TIPS_DURABLE,
    ANALYTICS_ZALO_DURABLE,
    DEAD_LETTERS_STREAM,
    dead_letter_subject,
)

# durable -> (the model its decoder reads, what is counted)
COUNTED: dict[str, tuple[Any, str]] = {
    ANALYTICS_ZALO_DURABLE: (ZaloEventReceived, "Messages, follows and unfollows per ward."),
    ANALYTICS_TIPS_DURABLE: (TipEvent, "Tips, outcomes and response times per ward."),
    ANALYTICS_BROADCAST_DURABLE: (DeliveryOutcomeRecorded, "Reach of notices."),
    ANALYTICS_SNAPSHOTS_DURABLE: (ZaloStatsSnapshotted, "Follower totals and article stats."),
    ANALYTICS_REGISTRY_DURABLE: (RegistryGroupChanged, "The groups, wards and member counts."),
}

DESCRIPTION = "Counters from every stream; snapshots of the Zalo OA's statistics."


def _never_called(*_: Any) -> None:
    raise RuntimeError("the documentation broker never handles messages")


def documented_broker(settings: AnalyticsSettings) -> NatsBroker:
    broker = NatsBroker()
    for stream, subject, durable, _ in subscriptions(settings):
        model, description = COUNTED[durable]

        async def counted(event: Any) -> None:
            _never_called(event)

        counted.__annotations__["event"] = model
        broker.subscriber(
            subject,
            stream=JStream(stream, declare=False),
            durable=durable,
            pull_sub=PullSub(batch_size=settings.batch_size),
            title=durable,
            description=description,
        )(counted)
    broker.publisher(
        settings.snapshot_subject,
        stream=JStream(ANALYTICS_SNAPSHOTS_STREAM.name, declare=False),
        schema=ZaloStatsSnapshotted,
        title=settings.snapshot_subject,
        description="The OA's follower total and article counts, one per polling slot.",
    )
    broker.publisher(
        dead_letter_subject("analytics"),
        stream=JStream(DEAD_LETTERS_STREAM.name, declare=False),
        schema=MessageDeadLettered,
        title=dead_letter_subject("analytics"),
        description="An event that could not be decoded, or failed on its last delivery.",
    )
    return broker


def specification(settings: AnalyticsSettings) -> str:
    return document(documented_broker(settings), "analytics", DESCRIPTION)


def main(argv: Sequence[str] | None = None) -> None:
    write("analytics", lambda: specification(AnalyticsSettings()), argv)


if __name__ == "__main__":
    main()
