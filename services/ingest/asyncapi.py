"""The AsyncAPI document of what ingest publishes.

`python -m services.ingest.asyncapi [--out docs/asyncapi/ingest.json]`. Ingest publishes with
nats-py on its hot path; the channels are declared here on a FastStream broker that never
connects, so the document is generated from the same models and subject builders.
"""

from collections.abc import Sequence

from faststream.nats import JStream, NatsBroker

from shared.asyncapi import document, write
from shared.events.quarantine import WebhookQuarantined
from shared.events.zalo import ZaloEventKind, ZaloEventReceived
from shared.subjects import (
    ZALO_EVENTS_STREAM,
    ZALO_QUARANTINE,
    ZALO_QUARANTINE_STREAM,
    zalo_event_subject,
)

DESCRIPTION = "Zalo OA webhooks in, normalized events on JetStream out."


def documented_broker() -> NatsBroker:
    broker = NatsBroker()
    events = JStream(ZALO_EVENTS_STREAM.name, declare=False)
    for kind in ZaloEventKind:
        subject = zalo_event_subject(kind)
        broker.publisher(
            subject,
            stream=events,
            schema=ZaloEventReceived,
            title=subject,
            description=f"A normalized Zalo webhook event of kind `{kind}`; "
            "the `Nats-Msg-Id` header is its `event_id`.",
        )
    broker.publisher(
        ZALO_QUARANTINE,
        stream=JStream(ZALO_QUARANTINE_STREAM.name, declare=False),
        schema=WebhookQuarantined,
        title=ZALO_QUARANTINE,
        description="A correctly signed body that failed validation, kept whole with the reason.",
    )
    return broker


def specification() -> str:
    return document(documented_broker(), "ingest", DESCRIPTION)


def main(argv: Sequence[str] | None = None) -> None:
    write("ingest", specification, argv)


if __name__ == "__main__":
    main()
