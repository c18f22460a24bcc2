"""Every NATS subject, JetStream stream, key-value bucket and durable consumer name.

Nothing else in the code base spells a subject string. Grammar: `<family>.<category>.<token>...`,
lowercase ASCII; enum tokens equal their `StrEnum` value, places are kebab-case slugs. Never put
ids, timestamps, free text or user ids in a subject.
"""

from dataclasses import dataclass, field

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

DAY = 24 * 3600.0

# --- Zalo events (producer: ingest) -----------------------------------------------------------
ZALO_EVENT_PREFIX = "zalo.event"
ZALO_EVENTS_ALL = f"{ZALO_EVENT_PREFIX}.>"
ZALO_QUARANTINE = "zalo.quarantine"


def zalo_event_subject(kind: str) -> str:
    """Subject of a normalized Zalo event of the given kind (`zalo.event.user_message`)."""
    return f"{ZALO_EVENT_PREFIX}.{kind}"


# --- Key-value buckets ------------------------------------------------------------------------
# Ingest's ledger of accepted event ids: dedup beyond the stream's duplicate window.
INGEST_LEDGER_BUCKET = "ingest_event_ids"


@dataclass(frozen=True)
class StreamSpec:
    """A JetStream stream as this code base declares it; replicas come from configuration."""

    name: str
    subjects: tuple[str, ...]
    description: str
    max_age: float
    duplicate_window: float = 120.0
    retention: RetentionPolicy = RetentionPolicy.LIMITS
    storage: StorageType = StorageType.FILE
    discard: DiscardPolicy = DiscardPolicy.OLD
    max_msg_size: int = -1
    extra: dict[str, object] = field(default_factory=dict)

    def to_config(self, replicas: int, **overrides: object) -> StreamConfig:
        """The nats-py `StreamConfig` for this stream, with per-deployment overrides."""
        values: dict[str, object] = {
            "name": self.name,
            "subjects": list(self.subjects),
            "description": self.description,
            "retention": self.retention,
            "storage": self.storage,
            "discard": self.discard,
            "max_age": self.max_age,
            "duplicate_window": self.duplicate_window,
            "max_msg_size": self.max_msg_size,
            "num_replicas": replicas,
            **self.extra,
            **overrides,
        }
        return StreamConfig(**values)  # type: ignore[arg-type]


ZALO_EVENTS_STREAM = StreamSpec(
    name="ZALO_EVENTS",
    subjects=(ZALO_EVENTS_ALL,),
    description="Normalized Zalo OA webhook events, one message per accepted event.",
    max_age=90 * DAY,
)

ZALO_QUARANTINE_STREAM = StreamSpec(
    name="ZALO_QUARANTINE",
    subjects=(ZALO_QUARANTINE,),
    description="Signed webhook bodies that failed validation, kept whole with the reason.",
    max_age=90 * DAY,
)
