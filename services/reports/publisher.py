"""Publishes staged tip events to the TIPS stream, each once (`Nats-Msg-Id` = event id)."""

import logging
from itertools import groupby, zip_longest

from nats.aio.client import Client as NatsClient

from services.reports import metrics
from services.reports.outgoing import StagedEvent
from services.reports.store import ReportsStore
from shared.jetstream import Message, publish_all

log = logging.getLogger(__name__)
PUBLISH_TIMEOUT = 5.0  # seconds for the stream to store a wave of events
JSON = {"content-type": "application/json"}


class TipPublisher:
    def __init__(self, nc: NatsClient, store: ReportsStore) -> None:
        self.nc = nc
        self.store = store

    async def flush(self, case_id: str | None = None) -> int:
        """Publish what is staged (for one case, or all); returns how many were published."""
        return await self.publish_staged(await self.store.staged(case_id))

    async def publish_staged(self, items: list[StagedEvent]) -> int:
        """Publish staged events in order within each case, then take what was published out
        of the outbox (a republish after a crash is deduplicated).

        In waves: the first event of every case, sent together and acknowledged together
        (`publish_all`), then every case's second event, and so on. A case's event still goes
        only after its previous one is stored, as when each was published and awaited alone,
        but a batch of 250 new cases costs two round trips instead of 500 (which took a third
        of a drained batch's time). A wave that fails stops the rest: they stay staged."""
        by_case = [list(group) for _, group in groupby(sorted_by_case(items), _case_of)]
        done: list[str] = []
        try:
            for wave in zip_longest(*by_case):
                await self._publish([item for item in wave if item is not None])
                done += [item.event_id for item in wave if item is not None]
        finally:
            await self.store.unstage(done)
        return len(done)

    async def _publish(self, wave: list[StagedEvent]) -> None:
        messages: list[Message] = [(item.subject, item.wire, item.event_id) for item in wave]
        duplicates = await publish_all(self.nc, messages, PUBLISH_TIMEOUT, headers=JSON)
        for item, duplicate in zip(wave, duplicates, strict=True):
            if not duplicate:  # the SLA loop's flush may race the handler's
                metrics.tip_published(item.payload)
            log.info(
                "tip event published", extra={"event_id": item.event_id, "subject": item.subject}
            )


def _case_of(item: StagedEvent) -> str:
    return item.case_id or ""


def sorted_by_case(items: list[StagedEvent]) -> list[StagedEvent]:
    """Items grouped by case, each case's items in their staged order (a stable sort)."""
    return sorted(items, key=_case_of)
