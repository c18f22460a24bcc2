"""NATS subscribers of the broadcast service: thin adapters over the components.

They reach the components through `Collaborators` (`composition.BroadcastService` is one), not
through the composition module, so this module imports nothing that imports it back."""

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from faststream import AckPolicy
from faststream.exceptions import NackMessage
from faststream.nats import JStream, NatsMessage, NatsRouter, PullSub
from nats.aio.client import Client as NatsClient
from pydantic import BaseModel

from services.broadcast.groups import MembershipChange, group_event_change
from services.broadcast.planner import PlanLater, Planner
from services.broadcast.records import Echo
from services.broadcast.replies import Replies
from services.broadcast.settings import BroadcastSettings
from services.broadcast.store import DeliveryStore, GroupStore
from shared.dead_letters import dead_letters
from shared.events.zalo import ZaloEventKind, ZaloEventReceived
from shared.jetstream import pull_inbox_prefix
from shared.subjects import (
    BROADCAST_ECHOES_DURABLE,
    BROADCAST_GROUP_EVENTS_DURABLE,
    BROADCAST_PLAN,
    BROADCAST_PLANNER_DURABLE,
    BROADCAST_SENDER_DURABLE,
    BROADCAST_USER_MESSAGES_DURABLE,
    BROADCAST_WORK_STREAM,
    ZALO_EVENTS_STREAM,
    zalo_event_subject,
)
from shared.verification import find_verification_code

MAX_DELIVER = 20  # deliveries of a command or event before it is a poison message

log = logging.getLogger(__name__)


class PlanCommand(BaseModel):
    notice_id: str


@dataclass(frozen=True)
class Durables:
    planner: str = BROADCAST_PLANNER_DURABLE
    sender: str = BROADCAST_SENDER_DURABLE
    groups: str = BROADCAST_GROUP_EVENTS_DURABLE
    users: str = BROADCAST_USER_MESSAGES_DURABLE
    echoes: str = BROADCAST_ECHOES_DURABLE


class Collaborators(Protocol):
    """What the subscribers use (read-only, as `composition.BroadcastService` holds them)."""

    @property
    def nc(self) -> NatsClient: ...
    @property
    def planner(self) -> Planner: ...
    @property
    def groups(self) -> GroupStore: ...
    @property
    def deliveries(self) -> DeliveryStore: ...
    @property
    def replies(self) -> Replies: ...


def build_router(
    settings: BroadcastSettings, names: Durables, collaborators: Callable[[], Collaborators]
) -> NatsRouter:
    """Subscribers bound to the durables that `composition.build` declared. `collaborators`
    gives the built service when a message arrives (the AsyncAPI document declares the router
    without building one)."""
    # A message that fails on every delivery is recorded on deadletter.broadcast, then acked.
    router = NatsRouter(
        middlewares=[dead_letters(lambda: collaborators().nc, "broadcast", MAX_DELIVER)]
    )
    work = JStream(BROADCAST_WORK_STREAM.name, declare=False)
    zalo = JStream(ZALO_EVENTS_STREAM.name, declare=False)
    pull = PullSub(batch_size=20, timeout=1.0)
    replies = pull_inbox_prefix(settings.nats_url)
    membership_lock = asyncio.Lock()

    @router.subscriber(
        BROADCAST_PLAN,
        stream=work,
        durable=names.planner,
        pull_sub=pull,
        inbox_prefix=replies,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_plan(cmd: PlanCommand) -> None:
        rt = collaborators()
        try:
            await rt.planner.plan(cmd.notice_id)
        except PlanLater as exc:
            log.info("plan deferred", extra={"notice_id": cmd.notice_id, "reason": str(exc)})
            raise NackMessage(delay=1.0) from exc

    @router.subscriber(
        zalo_event_subject(ZaloEventKind.GROUP),
        stream=zalo,
        durable=names.groups,
        pull_sub=pull,
        inbox_prefix=replies,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_group_event(event: ZaloEventReceived, msg: NatsMessage) -> None:
        rt = collaborators()
        if not event.group_id:
            log.warning("group event without group id ignored", extra={"event_id": event.event_id})
        change = group_event_change(
            event.event_name, event.group_id, event.user_id, event.payload, event.occurred_at
        )
        if change is None or await rt.groups.event_applied(event.event_id):
            return
        # Marked applied only once the change is written and the registry's version has moved
        # on (both are idempotent), so a crash in between is redone by the redelivery; a
        # redelivered membership event moves the version on even if its group exists by now.
        redelivered = msg.raw_message.metadata.num_delivered > 1
        async with membership_lock:  # recounts of one process must not overtake each other
            if isinstance(change, MembershipChange):
                await rt.groups.change_membership(change, redelivered)
            else:
                await rt.groups.apply(change)
        await rt.groups.mark_event(event.event_id)

    @router.subscriber(
        zalo_event_subject(ZaloEventKind.USER_MESSAGE),
        stream=zalo,
        durable=names.users,
        pull_sub=pull,
        inbox_prefix=replies,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_user_message(event: ZaloEventReceived) -> None:
        rt = collaborators()
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
        inbox_prefix=replies,
        ack_policy=AckPolicy.NACK_ON_ERROR,
    )
    async def on_oa_echo(event: ZaloEventReceived) -> None:
        group_id = event.group_id
        code = find_verification_code(event.text or "", settings.verification_prefix)
        if group_id and code:
            await collaborators().deliveries.record_echo(Echo(group_id, code, event.message_id))

    return router
