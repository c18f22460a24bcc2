"""The intake subscriber: decode, call intake, publish, reply, ack (thin)."""

import logging
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from faststream import AckPolicy
from faststream.exceptions import NackMessage, RejectMessage
from faststream.nats import ConsumerConfig, JStream, NatsMessage, NatsRouter, PullSub
from nats.js.api import AckPolicy as ConsumerAckPolicy
from nats.js.api import DeliverPolicy
from pymongo.errors import PyMongoError

from services.reports.intake import IntakeResult
from services.reports.services import Reports
from services.reports.settings import ReportsSettings
from shared.events.zalo import ZaloEventKind, ZaloEventReceived
from shared.jetstream import pull_inbox_prefix
from shared.subjects import ZALO_EVENTS_ALL, zalo_event_subject
from shared.zalo.errors import ZaloError

log = logging.getLogger(__name__)

MESSAGE_KINDS = (ZaloEventKind.USER_MESSAGE, ZaloEventKind.GROUP_MESSAGE)
RETRY_DELAY = 2.0


def intake_consumer_config(settings: ReportsSettings) -> ConsumerConfig:
    """The durable `reports-intake` consumer: citizens' 1:1 and group messages only."""
    return ConsumerConfig(
        durable_name=settings.intake_durable,
        filter_subjects=[zalo_event_subject(kind) for kind in MESSAGE_KINDS],
        ack_policy=ConsumerAckPolicy.EXPLICIT,
        deliver_policy=DeliverPolicy.ALL,
        max_deliver=settings.intake_max_deliver,
        ack_wait=settings.intake_ack_wait,
    )


def create_router(settings: ReportsSettings, reports: Callable[[], Reports]) -> NatsRouter:
    router = NatsRouter()

    @router.subscriber(
        ZALO_EVENTS_ALL,
        stream=JStream(settings.zalo_events_stream, declare=False),
        durable=settings.intake_durable,
        pull_sub=PullSub(batch_size=10, timeout=1.0),
        inbox_prefix=pull_inbox_prefix(settings.nats_url),
        config=intake_consumer_config(settings),
        ack_policy=AckPolicy.NACK_ON_ERROR,
        title="reports-intake",
        description="Citizens' messages (OA chats and group messages) to triage.",
    )
    async def on_zalo_message(event: ZaloEventReceived, msg: NatsMessage) -> None:
        if event.kind not in MESSAGE_KINDS:
            log.debug("event kind not triaged", extra={"event_id": event.event_id})
            return
        if not event.user_id:
            log.warning("message without sender rejected", extra={"event_id": event.event_id})
            raise RejectMessage
        services = reports()
        try:
            result = await services.intake.handle(event)
            await services.publisher.flush(result.case_id)
        except PyMongoError as exc:
            log.warning(
                "intake failed, will retry",
                extra={"event_id": event.event_id, "error": type(exc).__name__},
            )
            raise NackMessage(delay=RETRY_DELAY) from exc
        await _reply(services, result, event.user_id)
        log.info(
            "message triaged",
            extra={
                "event_id": event.event_id,
                "outcome": result.outcome,
                "case_id": result.case_id,
                "tipster": services.intake.sealer.pseudonym(event.user_id),
            },
        )

    return router


async def _reply(services: Reports, result: IntakeResult, user_id: str) -> None:
    if not (result.reply and result.reply_key) or services.messenger is None:
        return
    if not services.settings.send_replies:
        return
    if not await services.store.claim_reply(result.reply_key, datetime.now(UTC)):
        return
    try:
        await services.messenger.send_text(user_id, result.reply)
    except (ZaloError, httpx.HTTPError) as exc:
        # At most once: the reply is claimed before sending, so a failure is logged, not retried.
        log.warning(
            "automatic reply failed",
            extra={"case_id": result.case_id, "error": type(exc).__name__},
        )
