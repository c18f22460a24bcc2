"""Reports' Prometheus metrics (docs/observability.md). Labels are categories and ward slugs,
never a tipster, a text or a case id."""

from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager
from datetime import datetime
from typing import Any

from nats.aio.msg import Msg

from shared.metrics import counter, histogram
from shared.tracing import batch_span, in_trace_of

SERVICE = "reports"
# Seconds from a case's creation to its acknowledgement: urgent SLAs are minutes, others hours.
ACK_BUCKETS = (30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 14400, 43200, 86400)

TIPS_TRIAGED = counter(
    SERVICE,
    "tips_triaged",
    "New cases published on tips.triaged.<ward>.<priority>",
    ("kind", "category", "priority", "ward"),
)
TIPS_ESCALATED = counter(
    SERVICE,
    "tips_escalated",
    "Urgent cases not acknowledged within their SLA (tips.escalated.<ward>)",
    ("priority", "ward"),
)
CASE_ACKNOWLEDGEMENT = histogram(
    SERVICE,
    "case_acknowledgement_seconds",
    "From a case's creation to its first acknowledgement by staff",
    ("priority",),
    buckets=ACK_BUCKETS,
)


def tip_published(payload: dict[str, Any]) -> None:
    """Count a tip event once it is on the stream."""
    kind = payload.get("type")
    if kind == "tip.triaged":
        labels = (payload.get(k) for k in ("kind", "category", "priority", "ward"))
        TIPS_TRIAGED.labels(*(str(v) for v in labels)).inc()
    elif kind == "tip.escalated":
        TIPS_ESCALATED.labels(str(payload.get("priority")), str(payload.get("ward"))).inc()


def case_acknowledged(priority: str, created_at: datetime, at: datetime) -> None:
    CASE_ACKNOWLEDGEMENT.labels(str(priority)).observe(max(0.0, (at - created_at).total_seconds()))


MESSAGES = counter(
    SERVICE, "messages_triaged", "Citizens' messages handled by intake, by outcome", ("outcome",)
)
INTAKE_BATCH = histogram(
    SERVICE, "intake_batch_seconds", "Triaging, storing, publishing and acking one intake batch"
)


@contextmanager
def handling(msgs: Sequence[Msg]) -> Iterator[None]:
    """Around one intake batch: its duration, and a span in the first message's trace (linked
    to the others')."""
    with INTAKE_BATCH.time(), batch_span("reports intake", [m.headers for m in msgs]):
        yield


def message_handled(
    outcome: str, headers: Mapping[str, str] | None
) -> AbstractContextManager[None]:
    """Count one message, and give its log line the message's own trace."""
    MESSAGES.labels(outcome).inc()
    return in_trace_of(headers)
