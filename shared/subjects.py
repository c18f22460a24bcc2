"""Every NATS subject, JetStream stream, key-value bucket and durable consumer name.

Nothing else in the code base spells a subject string. Grammar: `<family>.<category>.<token>...`,
lowercase ASCII; enum tokens equal their `StrEnum` value, places are kebab-case slugs. Never put
ids, timestamps, free text or user ids in a subject.
"""

from dataclasses import dataclass

from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig

DAY = 24 * 3600.0

# --- Zalo events (producer: ingest) -----------------------------------------------------------
ZALO_EVENT_PREFIX = "zalo.event"
ZALO_EVENTS_ALL = f"{ZALO_EVENT_PREFIX}.>"
ZALO_QUARANTINE = "zalo.quarantine"


def zalo_event_subject(kind: str) -> str:
    """Subject of a normalized Zalo event of the given kind (`zalo.event.user_message`)."""
    return f"{ZALO_EVENT_PREFIX}.{kind}"


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


# --- Broadcast (producer: broadcast) ----------------------------------------------------------
# Work queue: one plan command per notice, one delivery command per (notice, target).
BROADCAST_PLAN = "broadcast.cmd.plan"
BROADCAST_DELIVER = "broadcast.cmd.deliver"
# Events for analytics: `broadcast.outcome.<delivery state>` and the dead-letter subject.
BROADCAST_OUTCOME_PREFIX = "broadcast.outcome"
BROADCAST_DEAD_LETTER = "broadcast.dead_letter"
# The registry's groups as they change (`RegistryGroupChanged`): analytics' source of groups.
BROADCAST_REGISTRY = "broadcast.registry.group"
BROADCAST_PLANNER_DURABLE = "broadcast-planner"
BROADCAST_SENDER_DURABLE = "broadcast-sender"
BROADCAST_GROUP_EVENTS_DURABLE = "broadcast-group-events"
BROADCAST_USER_MESSAGES_DURABLE = "broadcast-user-messages"
BROADCAST_ECHOES_DURABLE = "broadcast-echoes"


def broadcast_outcome_subject(state: str) -> str:
    """Subject of a delivery outcome (`broadcast.outcome.sent`)."""
    return f"{BROADCAST_OUTCOME_PREFIX}.{state}"


BROADCAST_WORK_STREAM = StreamSpec(
    name="BROADCAST_WORK",
    subjects=(BROADCAST_PLAN, BROADCAST_DELIVER),
    description="Broadcast work queue: plan commands and one delivery per (notice, target).",
    max_age=7 * DAY,
    retention=RetentionPolicy.WORK_QUEUE,
)

BROADCAST_EVENTS_STREAM = StreamSpec(
    name="BROADCAST_EVENTS",
    subjects=(f"{BROADCAST_OUTCOME_PREFIX}.>", BROADCAST_DEAD_LETTER, BROADCAST_REGISTRY),
    description="Delivery outcomes, dead letters, registry changes: for analytics and operators.",
    max_age=90 * DAY,
)


# --- Dead letters ---------------------------------------------------------------------------
# Every service records its own poison messages here (shared.dead_letters).
# A message a subscriber failed on as often as its consumer delivers it (`MessageDeadLettered`).
DEAD_LETTER_PREFIX = "deadletter"


def dead_letter_subject(service: str) -> str:
    """Where a service's poison messages are recorded (`deadletter.broadcast`)."""
    return f"{DEAD_LETTER_PREFIX}.{service}"


DEAD_LETTERS_STREAM = StreamSpec(
    name="DEAD_LETTERS",
    subjects=(f"{DEAD_LETTER_PREFIX}.>",),
    description="Records of poison messages (which message, which error), for operators.",
    max_age=90 * DAY,
)

# --- Tips (producer: reports) -----------------------------------------------------------------
# `tips.triaged.<ward>.<priority>` for a new case, `tips.updated.<ward>` for every later change,
# `tips.escalated.<ward>` when an urgent case waits too long. Ward = ASCII slug or `unknown`.
TIPS_PREFIX = "tips"
TIPS_ALL = f"{TIPS_PREFIX}.>"
REPORTS_INTAKE_DURABLE = "reports-intake"
REPORTS_DESK_DURABLE_PREFIX = "reports-desk"


def tips_triaged_subject(ward: str, priority: str) -> str:
    """Subject of a newly triaged tip (`tips.triaged.quang-phu.urgent`)."""
    return f"{TIPS_PREFIX}.triaged.{ward}.{priority}"


def tips_updated_subject(ward: str) -> str:
    """Subject of a change to a case (`tips.updated.quang-phu`)."""
    return f"{TIPS_PREFIX}.updated.{ward}"


def tips_escalated_subject(ward: str) -> str:
    """Subject of an SLA escalation (`tips.escalated.quang-phu`)."""
    return f"{TIPS_PREFIX}.escalated.{ward}"


def tips_ward_filters(ward: str) -> list[str]:
    """Every tips subject of one ward: what a dispatcher desk subscribes to."""
    return [
        f"{TIPS_PREFIX}.triaged.{ward}.>",
        tips_updated_subject(ward),
        tips_escalated_subject(ward),
    ]


def reports_desk_durable(ward: str) -> str:
    """Durable consumer name of a ward's dispatcher desk (`reports-desk-quang-phu`)."""
    return f"{REPORTS_DESK_DURABLE_PREFIX}-{ward}"


TIPS_STREAM = StreamSpec(
    name="TIPS",
    subjects=(TIPS_ALL,),
    description="Triaged citizens' tips and every change to them, per ward (pseudonyms only).",
    max_age=90 * DAY,
)


# --- Zalo OA client (producer: shared.zalo.client, used by every service that calls Zalo) ---
# The OA token pair (one entry, compare-and-set refresh) and the shared rate-limit state.
ZALO_TOKEN_BUCKET = "zalo_oa_token"
ZALO_RATE_BUCKET = "zalo_rate"


# --- Analytics (producer: analytics; consumes zalo, tips and broadcast events) ---------------
ANALYTICS_ZALO_DURABLE = "analytics-zalo-events"
ANALYTICS_BROADCAST_DURABLE = "analytics-broadcast-outcomes"
ANALYTICS_TIPS_DURABLE = "analytics-tips"
ANALYTICS_REGISTRY_DURABLE = "analytics-registry"
ANALYTICS_SNAPSHOTS_DURABLE = "analytics-snapshots"
# Snapshots of the OA's follower total and article statistics, polled from the Zalo API.
ANALYTICS_ZALO_SNAPSHOT = "analytics.snapshot.zalo"
ANALYTICS_SNAPSHOTS_STREAM = StreamSpec(
    name="ANALYTICS_SNAPSHOTS",
    subjects=("analytics.snapshot.>",),
    description="Polled Zalo OA statistics (follower total, article views and shares).",
    max_age=400 * DAY,
)
# Lease of the one analytics replica that writes counters (the others serve HTTP only).
ANALYTICS_WRITER_BUCKET = "analytics_writer"


# --- Staff identity (producer: identity) ------------------------------------------------------
# A session or API token ended, or an account changed (sign-out, deactivation, password or
# second-factor reset, token revocation, new roles or wards): every staff service drops what
# its verifier has cached (`shared.identity.verifier`), so the change applies at once instead of
# at the cache's expiry (`IDENTITY_CACHE_SECONDS`, 2 s). Core NATS, not a stream: a service that
# misses one still refuses the credential when its cache entry expires.
IDENTITY_REVOKED = "identity.revoked"
# Subjects every service may subscribe to, whoever produces them (deploy/nats/render_accounts.py).
SUBSCRIBED_BY_EVERY_SERVICE = (IDENTITY_REVOKED,)
