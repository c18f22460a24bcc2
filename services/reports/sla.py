"""SLA: an urgent case nobody acknowledged in time emits one escalation event."""

import logging
from datetime import datetime, timedelta

from services.reports.outgoing import StagedEvent
from services.reports.publisher import TipPublisher
from services.reports.store import ReportsStore
from shared.events.tips import TipEscalated
from shared.subjects import tips_escalated_subject

log = logging.getLogger(__name__)


async def escalate_overdue(
    store: ReportsStore, publisher: TipPublisher, now: datetime, ack_within: timedelta
) -> int:
    """Escalate every overdue urgent case once; returns how many were escalated."""
    escalated = 0
    for case_id, since in await store.sla_due(now - ack_within):
        case = await store.get(case_id)
        if case is None or not case.is_open or case.acknowledged_at is not None:
            await store.unwatch_sla(case_id)
            continue
        if not await store.mark_escalated(case.id, now):
            await store.unwatch_sla(case_id)
            continue  # another replica got there first, or staff acknowledged it meanwhile
        event = TipEscalated(
            event_id=f"te-{case.id}",
            occurred_at=now,
            case_id=case.id,
            ref=case.ref,
            ward=case.ward,
            priority=case.priority,
            created_at=case.created_at,
            waited_seconds=(now - since).total_seconds(),
            assignee=case.assignee,
        )
        await store.stage([StagedEvent.of(event, tips_escalated_subject(case.ward), case.id)])
        await publisher.flush(case.id)
        await store.unwatch_sla(case.id)
        log.warning("urgent case escalated", extra={"case_id": case.id, "ward": case.ward})
        escalated += 1
    return escalated
