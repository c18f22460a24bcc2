"""A signed webhook body that ingest could not normalize, kept whole (producer: ingest)."""

from typing import Literal

from shared.events.envelope import Event


class WebhookQuarantined(Event):
    """The raw body is the message data; this model travels in the headers' place as JSON."""

    type: Literal["webhook.quarantined"] = "webhook.quarantined"
    v: Literal[1] = 1
    producer: str = "ingest"
    reason: str
    event_name: str | None = None
    body: str  # the exact bytes received, decoded as UTF-8 (with replacement if they are not)
