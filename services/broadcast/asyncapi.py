"""The AsyncAPI document of the broadcast service: what it consumes and what it publishes.

`python -m services.broadcast.asyncapi [--out docs/asyncapi/broadcast.json]`. The subscribers
are the service's own router (`handlers.build_router`); the subjects it publishes (some by
hand-written JetStream code, `shared.jetstream`) are declared on the same broker, which never
connects, from the same models and subject builders.
"""

from collections.abc import Sequence

from faststream.nats import JStream, NatsBroker
from pydantic import BaseModel

from services.broadcast.handlers import Collaborators, Durables, PlanCommand, build_router
from services.broadcast.records import DeliveryCommand
from services.broadcast.settings import BroadcastSettings
from shared.asyncapi import document, write
from shared.events.broadcast import (
    DeliveryDeadLettered,
    DeliveryOutcomeRecorded,
    RegistryGroupChanged,
)
from shared.events.dead_letter import MessageDeadLettered
from shared.subjects import (
    BROADCAST_DEAD_LETTER,
    BROADCAST_DELIVER,
    BROADCAST_EVENTS_STREAM,
    BROADCAST_PLAN,
    BROADCAST_REGISTRY,
    BROADCAST_WORK_STREAM,
    DEAD_LETTERS_STREAM,
    broadcast_outcome_subject,
    dead_letter_subject,
)

PUBLISHED: tuple[tuple[str, str, type[BaseModel], str], ...] = (
    (BROADCAST_PLAN, BROADCAST_WORK_STREAM.name, PlanCommand, "Plan a released notice."),
    (
        BROADCAST_DELIVER,
        BROADCAST_WORK_STREAM.name,
        DeliveryCommand,
        "One delivery per (notice, target), taken by the sender workers (a pull consumer).",
    ),
    (
        broadcast_outcome_subject("{state}"),
        BROADCAST_EVENTS_STREAM.name,
        DeliveryOutcomeRecorded,
        "A delivery reached a state worth counting (sent, awaiting_confirmation, failed, ...).",
    ),
    (
        BROADCAST_DEAD_LETTER,
        BROADCAST_EVENTS_STREAM.name,
        DeliveryDeadLettered,
        "A delivery that will not be tried again, with its last error.",
    ),
    (
        BROADCAST_REGISTRY,
        BROADCAST_EVENTS_STREAM.name,
        RegistryGroupChanged,
        "A group of the registry as it now is (analytics' source of groups).",
    ),
    (
        dead_letter_subject("broadcast"),
        DEAD_LETTERS_STREAM.name,
        MessageDeadLettered,
        "A command or Zalo event a subscriber failed on for its last delivery.",
    ),
)

DESCRIPTION = "Notices out to Zalo groups and followers, exactly once; outcomes in."


def documented_broker(settings: BroadcastSettings) -> NatsBroker:
    """The service's subscribers, plus every subject it publishes, on a broker never started."""
    broker = NatsBroker()
    broker.include_router(build_router(settings, Durables(), _documented_only))
    for subject, stream, model, description in PUBLISHED:
        broker.publisher(
            subject,
            stream=JStream(stream, declare=False),
            schema=model,
            title=subject.replace("{", "").replace("}", ""),
            description=description,
        )
    return broker


def _documented_only() -> Collaborators:
    raise RuntimeError("the documented router handles no message")


def specification(settings: BroadcastSettings) -> str:
    return document(documented_broker(settings), "broadcast", DESCRIPTION)


def main(argv: Sequence[str] | None = None) -> None:
    write("broadcast", lambda: specification(BroadcastSettings()), argv)


if __name__ == "__main__":
    main()
