"""The events a delivery's outcome is published as: `broadcast.outcome.<state>` for analytics,
`broadcast.dead_letter` for a delivery that will not be tried again (deduplicated by id)."""

from datetime import UTC, datetime

from nats.aio.client import Client as NatsClient

from services.broadcast.records import DeliveryView
from shared.events.broadcast import DeliveryDeadLettered, DeliveryOutcomeRecorded
from shared.events.envelope import event_bytes
from shared.jetstream import Message, publish_all
from shared.subjects import BROADCAST_DEAD_LETTER, broadcast_outcome_subject

OUTCOME_TIMEOUT = 5.0  # seconds for the stream to store one outcome event


class Outcomes:
    """Publishes outcome and dead-letter events (deduplicated by their event ids)."""

    def __init__(self, nc: NatsClient) -> None:
        self.nc = nc

    async def outcome(self, view: DeliveryView) -> None:
        await publish_all(self.nc, [self.outcome_message(view)], timeout=OUTCOME_TIMEOUT)

    @staticmethod
    def outcome_message(view: DeliveryView) -> Message:
        d, state = view.delivery, view.state.value
        event = DeliveryOutcomeRecorded(
            event_id=f"{d.id}:{state}:{view.claims}",
            occurred_at=datetime.now(UTC),
            notice_id=d.notice_id,
            delivery_id=d.id,
            msg_type=d.msg_type or "Alert",
            category=d.category or "other",
            target_kind=d.target_kind,
            target_id=d.target,
            ward=d.ward,
            channel=d.channel or "oa",
            state=state,
            attempts=view.claims,
            error=view.result.outcome.last_error if view.result else None,
            test_mode=d.test_mode,
        )
        return broadcast_outcome_subject(state), event_bytes(event), event.event_id

    @staticmethod
    def dead_letter_message(view: DeliveryView, error: str) -> Message:
        d, now = view.delivery, datetime.now(UTC)
        event = DeliveryDeadLettered(
            event_id=f"{d.id}:dead",
            occurred_at=now,
            notice_id=d.notice_id,
            delivery_id=d.id,
            target_kind=d.target_kind,
            target_id=d.target,
            ward=d.ward,
            attempts=view.claims,
            last_error=error,
            failed_at=now,
        )
        return BROADCAST_DEAD_LETTER, event_bytes(event), event.event_id
