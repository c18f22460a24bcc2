"""A message a subscriber failed on as often as its consumer delivers it (producer: any
service, on `deadletter.<service>`)."""

from typing import Literal

from shared.events.envelope import Event


class MessageDeadLettered(Event):
    """The message itself stays in its stream (`stream`, `stream_seq`): the record names it and
    the error, never its content (a tip's text, a Zalo id). `event_id` is
    `<stream>:<stream_seq>`, so a record published twice is stored once."""

    type: Literal["message.dead_lettered"] = "message.dead_lettered"
    v: Literal[1] = 1
    subject: str
    stream: str
    stream_seq: int
    consumer: str
    deliveries: int
    error: str  # the exception's type and where it was raised, not its text
