"""The intake subscriber in memory (FastStream's TestNatsBroker): the paths that need no I/O."""

import logging

import pytest
from faststream.nats import NatsBroker, TestNatsBroker

from services.reports import handlers
from services.reports.services import Reports
from services.reports.settings import ReportsSettings
from shared.events.zalo import ZaloEventKind
from shared.subjects import zalo_event_subject
from tests.reports.builders import message

calls: list[str] = []


def _reports() -> Reports:
    calls.append("reports")
    raise AssertionError("these events must not reach intake")


async def test_non_message_events_and_senderless_messages_skip_intake(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.reports.handlers")
    broker = NatsBroker()
    broker.include_router(handlers.create_router(ReportsSettings(), _reports))
    follow = message(text=None).model_copy(update={"kind": ZaloEventKind.FOLLOW})
    senderless = message(text="Có trộm").model_copy(update={"user_id": None})
    async with TestNatsBroker(broker) as br:
        await br.publish(follow.model_dump(mode="json"), zalo_event_subject(follow.kind))
        await br.publish(senderless.model_dump(mode="json"), zalo_event_subject(senderless.kind))
    seen = [r.getMessage() for r in caplog.records if r.name == "services.reports.handlers"]
    # Both reached the handler, and neither went further.
    assert seen == ["event kind not triaged", "message without sender rejected"]
    assert calls == []


def test_consumer_filters_citizen_messages_only() -> None:
    config = handlers.intake_consumer_config(
        ReportsSettings(intake_durable="x", intake_max_deliver=4)
    )
    assert config.filter_subjects == ["zalo.event.user_message", "zalo.event.group_message"]
    assert (config.durable_name, config.max_deliver) == ("x", 4)
