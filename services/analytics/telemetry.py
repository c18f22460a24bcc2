"""Analytics' Prometheus metrics (docs/observability.md); its lag behind each stream's head is
`binhyen_analytics_consumer_pending_messages` (`shared.metrics.watch_consumers`)."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from nats.aio.msg import Msg

from shared.metrics import counter, histogram
from shared.tracing import batch_span

SERVICE = "analytics"
SIZE_BUCKETS = (1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10000)

BATCH_EVENTS = histogram(
    SERVICE, "batch_events", "Events per ledger batch (group commit)", buckets=SIZE_BUCKETS
)
BATCH_SECONDS = histogram(SERVICE, "batch_write_seconds", "Writing one ledger batch to MongoDB")
EVENTS = counter(
    SERVICE,
    "events",
    "Events by result: counted, duplicate (already counted), rejected (undecodable), failed "
    "(batch to be redelivered)",
    ("result",),
)


@contextmanager
def writing(msgs: Sequence[Msg]) -> Iterator[None]:
    """Around one ledger batch: its size, its duration, a span linked to the events' traces."""
    BATCH_EVENTS.observe(len(msgs))
    with BATCH_SECONDS.time(), batch_span("analytics count", [m.headers for m in msgs]):
        yield


def counted(counted: int, duplicates: int) -> None:
    EVENTS.labels("counted").inc(counted)
    EVENTS.labels("duplicate").inc(duplicates)


def not_counted(result: str, events: int = 1) -> None:
    EVENTS.labels(result).inc(events)
