"""The intake consumer's screening of deliveries: the paths that need no I/O."""

import logging

import pytest

from services.reports import intake_consumer
from services.reports.settings import ReportsSettings
from shared.events.zalo import ZaloEventKind
from tests.reports.builders import message


def test_non_message_events_and_senderless_messages_skip_intake(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="services.reports.intake_consumer")
    follow = message(text=None).model_copy(update={"kind": ZaloEventKind.FOLLOW})
    senderless = message(text="Có trộm").model_copy(update={"user_id": None})
    tip = message(text="Có trộm")
    verdicts = [
        intake_consumer.screen(event.model_dump_json().encode())
        for event in (follow, senderless, tip)
    ]
    assert [(v.event is None, v.verdict) for v in verdicts] == [
        (True, "skip"),  # acked: not for intake
        (True, "reject"),  # terminated: never redelivered
        (False, "triage"),
    ]
    assert verdicts[2].event == tip
    seen = [r.getMessage() for r in caplog.records if r.name == "services.reports.intake_consumer"]
    assert seen == ["event kind not triaged", "message without sender rejected"]


def test_undecodable_deliveries_are_rejected() -> None:
    assert intake_consumer.screen(b'{"kind": "user_message"}').verdict == "reject"
    assert intake_consumer.screen(b"not json").verdict == "reject"


def test_consumer_filters_citizen_messages_only() -> None:
    config = intake_consumer.intake_consumer_config(
        ReportsSettings(intake_durable="x", intake_max_deliver=4)
    )
    assert config.filter_subjects == ["zalo.event.user_message", "zalo.event.group_message"]
    assert (config.durable_name, config.max_deliver) == ("x", 4)
