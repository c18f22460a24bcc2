"""Every golden sample decoded by every consumer of its subject, with the consumer's real
decoder; every subject of `shared/subjects.py` has golden samples; events carry their whole
envelope. No server: the samples are the bytes producers put on NATS (see `golden.py`)."""

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from services.analytics.pullers import (
    decode_delivery,
    decode_registry,
    decode_snapshot,
    decode_tip,
    decode_zalo,
)
from services.broadcast.handlers import PlanCommand
from services.broadcast.records import parse_delivery
from services.reports.watch import format_event
from shared import subjects
from shared.events.broadcast import DeliveryDeadLettered
from shared.events.dead_letter import MessageDeadLettered
from shared.events.identity import StaffAccessRevoked
from shared.events.quarantine import WebhookQuarantined
from shared.events.zalo import ZaloEventReceived
from tests.contracts.golden import GOLDEN_DIR, check_golden

Decoder = Callable[[bytes], Any]


def _handler_argument(model: Any) -> Decoder:
    """What FastStream does for a handler whose argument is a pydantic model."""
    return lambda data: model.model_validate_json(data)


def _sender_delivery(data: bytes) -> Any:
    found = parse_delivery(data)
    assert found is not None, "the sender would drop this delivery command"
    return found


def _desk(data: bytes) -> Any:
    line = format_event(json.loads(data))
    assert line.strip()
    return line


# Subject family (first two tokens) -> every consumer in the code base, by name.
CONSUMERS: dict[str, dict[str, Decoder]] = {
    "zalo.event": {
        "analytics": decode_zalo,
        "reports intake, broadcast group/user/echo handlers": _handler_argument(ZaloEventReceived),
    },
    "zalo.quarantine": {"operators (the record's model)": _handler_argument(WebhookQuarantined)},
    "tips.triaged": {"analytics": decode_tip, "dispatcher desk (reports.watch)": _desk},
    "tips.updated": {"analytics": decode_tip, "dispatcher desk (reports.watch)": _desk},
    "tips.escalated": {"analytics": decode_tip, "dispatcher desk (reports.watch)": _desk},
    "broadcast.outcome": {"analytics": decode_delivery},
    "broadcast.dead_letter": {
        "operators (the record's model)": _handler_argument(DeliveryDeadLettered)
    },
    "broadcast.registry": {"analytics": decode_registry},
    "broadcast.cmd": {"broadcast planner": _handler_argument(PlanCommand)},
    "analytics.snapshot": {"analytics": decode_snapshot},
    "deadletter.broadcast": {
        "operators (the record's model)": _handler_argument(MessageDeadLettered)
    },
    "deadletter.analytics": {
        "operators (the record's model)": _handler_argument(MessageDeadLettered)
    },
    "identity.revoked": {
        "every staff service's verifier (shared.identity.verifier)": _handler_argument(
            StaffAccessRevoked
        )
    },
}
DELIVER_CONSUMERS: dict[str, Decoder] = {"broadcast sender": _sender_delivery}
ENVELOPE = ("event_id", "type", "v", "occurred_at", "producer")


def golden_files() -> list[Path]:
    return sorted(GOLDEN_DIR.glob("*.json"))


def family(path: Path) -> str:
    return ".".join(path.name.split("--")[0].removesuffix(".json").split(".")[:2])


def consumers_of(path: Path) -> dict[str, Decoder]:
    if path.name.startswith(subjects.BROADCAST_DELIVER):
        return DELIVER_CONSUMERS
    return CONSUMERS[family(path)]


@pytest.mark.parametrize("path", golden_files(), ids=lambda p: p.name)
def test_every_consumer_decodes_the_sample(path: Path) -> None:
    data = path.read_bytes()
    for consumer, decode in consumers_of(path).items():
        try:
            decode(data)
        except Exception as exc:
            raise AssertionError(f"{consumer} rejects {path.name}: {exc}") from exc


@pytest.mark.parametrize(
    "path",
    [p for p in golden_files() if family(p) != "broadcast.cmd"],
    ids=lambda p: p.name,
)
def test_events_carry_their_whole_envelope(path: Path) -> None:
    event = json.loads(path.read_bytes())
    assert [field for field in ENVELOPE if field not in event] == []


def published_subjects() -> list[str]:
    """One subject of every family `shared/subjects.py` declares."""
    return [
        subjects.zalo_event_subject("user_message"),
        subjects.ZALO_QUARANTINE,
        subjects.BROADCAST_PLAN,
        subjects.BROADCAST_DELIVER,
        subjects.broadcast_outcome_subject("sent"),
        subjects.BROADCAST_DEAD_LETTER,
        subjects.BROADCAST_REGISTRY,
        subjects.tips_triaged_subject("{ward}", "{priority}"),
        subjects.tips_updated_subject("{ward}"),
        subjects.tips_escalated_subject("{ward}"),
        subjects.ANALYTICS_SNAPSHOTS_STREAM.subjects[0].replace(">", "zalo"),
        subjects.dead_letter_subject("broadcast"),
        subjects.IDENTITY_REVOKED,
    ]


@pytest.mark.parametrize("subject", published_subjects())
def test_every_subject_has_golden_samples(subject: str) -> None:
    names = [p.name for p in golden_files()]
    assert any(name.startswith(subject) for name in names), f"no golden sample of {subject}"


def test_the_consumer_table_knows_every_family() -> None:
    families = {family(p) for p in golden_files()}
    assert families <= CONSUMERS.keys()
    assert len(golden_files()) > 20


@pytest.mark.parametrize("dropped", ENVELOPE)
def test_a_producer_that_drops_a_field_no_longer_matches_its_golden_sample(dropped: str) -> None:
    path = GOLDEN_DIR / "zalo.event.user_message--user_send_text.json"
    event = json.loads(path.read_bytes())
    del event[dropped]
    with pytest.raises(AssertionError, match=f".{dropped}: missing"):
        check_golden("zalo.event.user_message", json.dumps(event).encode())


def test_a_new_field_or_a_changed_type_fails_too() -> None:
    path = GOLDEN_DIR / "tips.triaged.{ward}.{priority}--tip.json"
    card = json.loads(path.read_bytes())
    with pytest.raises(AssertionError, match="new"):
        check_golden("tips.triaged.bac-ly.high", json.dumps(card | {"extra": 1}).encode())
    with pytest.raises(AssertionError, match="photos"):
        check_golden("tips.triaged.bac-ly.high", json.dumps(card | {"photos": "2"}).encode())
