"""Broadcast's Prometheus metrics (docs/observability.md); the Zalo client's own are in
`shared.zalo.telemetry`, the consumers' in `shared.metrics.watch_consumers`."""

from collections.abc import Iterator, Sequence
from contextlib import contextmanager

from nats.aio.msg import Msg

from shared.metrics import counter, histogram
from shared.tracing import batch_span

SERVICE = "broadcast"

NOTICES_PLANNED = counter(SERVICE, "notices_planned", "Notices whose deliveries were planned")
DELIVERIES_PLANNED = counter(SERVICE, "deliveries_planned", "Deliveries enqueued by the planner")
DELIVERIES = counter(
    SERVICE,
    "deliveries",
    "Delivery attempts settled by a sender, by resulting state and target kind",
    ("state", "target_kind"),
)
DEAD_LETTERS = counter(
    SERVICE, "dead_letters", "Deliveries given up (broadcast.dead_letter)", ("target_kind",)
)
SENDER_BATCH = histogram(
    SERVICE, "sender_batch_seconds", "Claiming, sending and recording one batch of deliveries"
)


def planned(deliveries: int) -> None:
    NOTICES_PLANNED.inc()
    DELIVERIES_PLANNED.inc(deliveries)


def settled(state: str, target_kind: str, dead: bool) -> None:
    DELIVERIES.labels(state, target_kind).inc()
    if dead:
        DEAD_LETTERS.labels(target_kind).inc()


@contextmanager
def sending(msgs: Sequence[Msg]) -> Iterator[None]:
    """Around one sender batch: its duration, and a span in the notice's trace."""
    with SENDER_BATCH.time(), batch_span("broadcast send", [m.headers for m in msgs]):
        yield
