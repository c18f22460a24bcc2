"""The envelope every event carries."""

from datetime import datetime

from pydantic import BaseModel, ConfigDict


class Event(BaseModel):
    """Base of every event: a stable id (also the `Nats-Msg-Id` and Mongo `_id`), a type
    in `noun.past_verb` form, a schema version, and when it happened (UTC)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str
    type: str
    v: int
    occurred_at: datetime
    producer: str


def event_bytes(event: Event) -> bytes:
    """The one wire form of every event: its whole JSON, envelope and defaults included.

    Producers never drop fields to save bytes (no `exclude_defaults`, no `exclude_none`): a
    consumer may then require any field the model declares, and the golden samples in
    `tests/contracts/` hold every producer to it."""
    return event.model_dump_json().encode()
