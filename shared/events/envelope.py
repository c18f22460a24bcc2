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
