"""Publishes staged tip events to the TIPS stream, each once (`Nats-Msg-Id` = event id)."""

import asyncio
import logging
from itertools import groupby

from faststream.nats import NatsBroker

from services.reports import metrics
from services.reports.outgoing import StagedEvent
from services.reports.store import ReportsStore

log = logging.getLogger(__name__)


class TipPublisher:
    def __init__(self, broker: NatsBroker, store: ReportsStore, stream: str) -> None:
        self.broker = broker
        self.store = store
        self.stream = stream

    async def flush(self, case_id: str | None = None) -> int:
        """Publish what is staged (for one case, or all); returns how many were published."""
        return await self.publish_staged(await self.store.staged(case_id))

    async def publish_staged(self, items: list[StagedEvent]) -> int:
        """Publish staged events, in order within each case and cases side by side, then take
        what was published out of the outbox (a republish after a crash is deduplicated)."""
        done: list[str] = []
        by_case = [list(group) for _, group in groupby(sorted_by_case(items), _case_of)]
        try:
            results = await asyncio.gather(
                *(self._publish_in_order(group, done) for group in by_case),
                return_exceptions=True,
            )
        finally:
            await self.store.unstage(done)
        for result in results:
            if isinstance(result, BaseException):
                raise result
        return len(done)

    async def _publish_in_order(self, items: list[StagedEvent], done: list[str]) -> None:
        for item in items:
            await self.publish(item)
            done.append(item.event_id)

    async def publish(self, item: StagedEvent) -> None:
        ack = await self.broker.publish(
            item.payload, item.subject, stream=self.stream, headers={"Nats-Msg-Id": item.event_id}
        )
        if not getattr(ack, "duplicate", False):  # the SLA loop's flush may race the handler's
            metrics.tip_published(item.payload)
        log.info("tip event published", extra={"event_id": item.event_id, "subject": item.subject})


def _case_of(item: StagedEvent) -> str:
    return item.case_id or ""


def sorted_by_case(items: list[StagedEvent]) -> list[StagedEvent]:
    """Items grouped by case, each case's items in their staged order (a stable sort)."""
    return sorted(items, key=_case_of)
