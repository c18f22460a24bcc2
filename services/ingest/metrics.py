"""Ingest's Prometheus metrics (docs/observability.md)."""

import json
import time
from datetime import datetime
from functools import cache

from prometheus_client import Counter

from services.ingest.spool import Spool
from shared.metrics import counter, gauge

SERVICE = "ingest"

WEBHOOK_REQUESTS = counter(
    SERVICE,
    "webhook_requests",
    "Webhook requests by HTTP status and outcome (published, duplicate, spooled, quarantined, "
    "or the refusal's reason)",
    ("status", "outcome"),
)


@cache
def webhook_answered(status: str, outcome: str) -> Counter:
    """The bound counter of one (status, outcome): `labels()` once, not per webhook."""
    return WEBHOOK_REQUESTS.labels(status, outcome)


SPOOL_EVENTS = gauge(SERVICE, "spool_events", "Events waiting in the disk spool for NATS")
SPOOL_OLDEST_AGE = gauge(
    SERVICE,
    "spool_oldest_event_age_seconds",
    "Age of the oldest spooled event (by the event's own time; 0 when empty)",
)


class SpoolReader:
    """Reads the spool's depth and its oldest event's age at scrape time."""

    def __init__(self, spool: Spool) -> None:
        self.spool = spool

    async def __call__(self) -> None:
        SPOOL_EVENTS.set(self.spool.size)
        oldest = await self.spool.peek(1) if self.spool.size else []
        SPOOL_OLDEST_AGE.set(_age(oldest[0].data) if oldest else 0.0)


def _age(data: bytes) -> float:
    occurred = json.loads(data).get("occurred_at")
    if not isinstance(occurred, str):
        return 0.0
    return max(0.0, time.time() - datetime.fromisoformat(occurred).timestamp())
