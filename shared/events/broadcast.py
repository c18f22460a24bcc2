"""Outcomes of notice deliveries (producer: broadcast)."""

from datetime import datetime
from typing import Literal

from shared.events.envelope import Event


class DeliveryOutcomeRecorded(Event):
    """A delivery of a notice to one target reached a state worth counting.

    `event_id` is `<delivery id>:<state>:<attempt>`, so a replayed outcome is dropped by the
    stream's duplicate window and by a consumer keyed on it. `target_kind` is `group` or
    `followers`; `state` is one of sent, awaiting_confirmation, failed, cancelled, retrying.
    """

    type: Literal["delivery_outcome.recorded"] = "delivery_outcome.recorded"
    v: Literal[1] = 1
    producer: str = "broadcast"

    notice_id: str
    delivery_id: str
    msg_type: str
    category: str
    target_kind: str
    target_id: str
    ward: str | None = None
    channel: str
    state: str
    attempts: int
    error: str | None = None
    test_mode: bool = False


class DeliveryDeadLettered(Event):
    """A delivery that will not be tried again, with the last error it got."""

    type: Literal["delivery.dead_lettered"] = "delivery.dead_lettered"
    v: Literal[1] = 1
    producer: str = "broadcast"

    notice_id: str
    delivery_id: str
    target_kind: str
    target_id: str
    ward: str | None = None
    attempts: int
    last_error: str
    failed_at: datetime
