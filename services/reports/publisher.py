"""Publishes staged tip events to the TIPS stream, each once (`Nats-Msg-Id` = event id)."""

import logging
from typing import Any

from faststream.nats import NatsBroker

from services.reports import metrics
from services.reports.store import ReportsStore

log = logging.getLogger(__name__)


class TipPublisher:
    def __init__(self, broker: NatsBroker, store: ReportsStore, stream: str) -> None:
        self.broker = broker
        self.store = store
        self.stream = stream

    async def flush(self, case_id: str | None = None) -> int:
        """Publish what is staged (for one case, or all); returns how many were published."""
        done: list[str] = []
        try:
            for item in await self.store.staged(case_id):
                await self.publish(item["_id"], item["subject"], item["payload"])
                done.append(item["_id"])
        finally:
            # What was published leaves the outbox; a republish after a crash is deduplicated.
            await self.store.unstage(done)
        return len(done)

    async def publish(self, event_id: str, subject: str, payload: dict[str, Any]) -> None:
        ack = await self.broker.publish(
            payload, subject, stream=self.stream, headers={"Nats-Msg-Id": event_id}
        )
        if not getattr(ack, "duplicate", False):  # the SLA loop's flush may race the handler's
            metrics.tip_published(payload)
        log.info("tip event published", extra={"event_id": event_id, "subject": subject})
