"""NATS subscribers of the broadcast service: thin adapters over the components."""

import logging
from typing import TYPE_CHECKING

from faststream import AckPolicy
from faststream.nats import JStream, NatsRouter, PullSub
from pydantic import BaseModel

from services.broadcast.domain import find_verification_code
from services.broadcast.groups import group_event_update
from shared.events.zalo import ZaloEventKind, ZaloEventReceived
from shared.subjects import (
    BROADCAST_PLAN,
    BROADCAST_WORK_STREAM,
    ZALO_EVENTS_STREAM,
    zalo_event_subject,
)

if TYPE_CHECKING:
    from services.broadcast.runtime import Runtime

log = logging.getLogger(__name__)


class PlanCommand(BaseModel):
    notice_id: str


def build_router(rt: "Runtime") -> NatsRouter:
    """Subscribers bound to the durables that `Runtime.start` declared."""
    router = NatsRouter()
    work = JStream(BROADCAST_WORK_STREAM.name, declare=False)
    zalo = JStream(ZALO_EVENTS_STREAM.name, declare=False)
    pull = PullSub(batch_size=20, timeout=1.0)
    names = rt.durables

    @router.subscriber(
        BROADCAST_PLAN,
        stream=work,
        durable=names.planner,
        pull_sub=pull,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_plan(cmd: PlanCommand) -> None:
        await rt.planner.plan(cmd.notice_id)

    @router.subscriber(
        zalo_event_subject(ZaloEventKind.GROUP),
        stream=zalo,
        durable=names.groups,
        pull_sub=pull,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_group_event(event: ZaloEventReceived) -> None:
        if not event.group_id:
            log.warning("group event without group id ignored", extra={"event_id": event.event_id})
            return
        change = group_event_update(event.event_name, event.group_id, event.payload)
        if change is None or not await rt.groups.mark_event(event.event_id):
            return
        await rt.groups.apply(event.group_id, *change)

    @router.subscriber(
        zalo_event_subject(ZaloEventKind.USER_MESSAGE),
        stream=zalo,
        durable=names.users,
        pull_sub=pull,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_user_message(event: ZaloEventReceived) -> None:
        if not event.user_id or not event.text:
            return
        if not await rt.groups.mark_event(event.event_id):
            return  # answered already
        try:
            await rt.replies.on_user_text(event.user_id, event.text)
        except Exception:
            await rt.groups.unmark_event(event.event_id)  # let the redelivery answer
            raise

    @router.subscriber(
        zalo_event_subject(ZaloEventKind.OA_MESSAGE),
        stream=zalo,
        durable=names.echoes,
        pull_sub=pull,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_oa_echo(event: ZaloEventReceived) -> None:
        group_id = event.group_id
        code = find_verification_code(event.text or "", rt.settings.verification_prefix)
        if group_id and code:
            await rt.deliveries.record_echo(group_id, code, event.message_id)

    return router
