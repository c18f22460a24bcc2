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


class RegistryGroupChanged(Event):
    """A group of broadcast's registry as it now is, on `broadcast.registry.group`.

    The registry is the one source of truth for groups; analytics takes groups, wards, member
    counts and households from these events instead of a file of its own. `event_id` is
    `<group id>:<time of its change>:<content hash>`, so every replica announcing the same change
    publishes the same id. `changed_at` orders the versions of one group (the latest wins).
    The officer's Zalo id stays in broadcast: it is personal data analytics does not need."""

    type: Literal["registry_group.changed"] = "registry_group.changed"
    v: Literal[1] = 1
    producer: str = "broadcast"

    group_id: str
    name: str
    ward: str | None = None
    hamlet: str | None = None
    member_count: int
    households: int | None = None
    channel: str
    active: bool
    is_test: bool
    changed_at: datetime
