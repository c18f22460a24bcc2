"""The documents of broadcast's send path as typed models, and their MongoDB form.

A delivery's static fields (`Delivery`: what the planner writes once and the work-queue message
carries), the claim and the result of each attempt (`Claim`, `Result`), where a delivery
stands (`Attempt`, `DeliveryView`), Zalo's echo of a post (`Echo`), and the audit log's
entries (`AuditEntry`). Only this module and
`store.py` see the documents; everything else works on these models. No I/O here.
"""

import json
from dataclasses import MISSING, asdict, dataclass, field, fields
from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field, create_model

from services.broadcast.domain import Channel, DeliveryState

Doc = dict[str, Any]  # a MongoDB document or a JSON object (this module and store.py only)

# Fields of a delivery that never change: the planner writes them once and the work-queue
# message carries them. A result keeps only what changes (plus `notice_id`, and the officer of
# a manual group): FerretDB's cost of an insert grows with the document.
TARGET_FIELDS = ("target_kind", "ward", "channel", "group_name", "officer_id", "officer_name")
STATIC_FIELDS = ("notice_id", "target", *TARGET_FIELDS, "code", "msg_type", "category", "test_mode")
# Claims that are not a sender's send: their result follows at once, nothing goes to Zalo.
BOOKKEEPING_CLAIMS = frozenset({"cancel", "confirm", "echo"})
# Of those, the ones that never start a send (an echo resolution may follow a doubtful send).
SENDS_NOTHING = frozenset({"cancel", "confirm"})


@dataclass(frozen=True, slots=True)
class Delivery:
    """One (notice, target) pair: its id is the exactly-once key."""

    id: str
    notice_id: str
    target: str
    target_kind: str  # "group" or "followers"
    ward: str | None = None
    channel: str | None = None  # Channel of a group, "broadcast" for followers
    group_name: str | None = None
    officer_id: str | None = None
    officer_name: str | None = None
    code: str = ""
    msg_type: str | None = None
    category: str | None = None
    test_mode: bool = False

    @property
    def is_echoed(self) -> bool:
        """Zalo echoes a post to an OA group back to us (`oa_send_group_*` webhooks)."""
        return self.target_kind == "group" and self.channel == Channel.OA

    @property
    def is_manual(self) -> bool:
        return self.channel == Channel.MANUAL

    @classmethod
    def from_doc(cls, doc: Doc) -> "Delivery":
        """From a plan page, a work-queue message or a manual result (which repeats them)."""
        values: dict[str, Any] = {key: doc.get(key) for key in STATIC_FIELDS}
        values["code"] = str(values["code"] or "")
        values["test_mode"] = bool(values["test_mode"])
        return cls(id=str(doc["_id"]), **values)

    def to_doc(self) -> Doc:
        return {"_id": self.id, **{key: getattr(self, key) for key in STATIC_FIELDS}}

    def message(self) -> bytes:
        """The work-queue message: the static fields, so a sender needs no read."""
        return json.dumps(self.to_doc()).encode()


def _command_model() -> type[BaseModel]:
    """The work-queue message as a pydantic model, derived from `Delivery` (for the AsyncAPI
    document: one definition of the shape)."""
    static: dict[str, Any] = {
        f.name: (f.type, f.default if f.default is not MISSING else ...)
        for f in fields(Delivery)
        if f.name != "id"
    }
    doc = "One delivery to make: the static fields of a (notice, target); `Nats-Msg-Id` = `_id`."
    return create_model("DeliveryCommand", __doc__=doc, id=(str, Field(alias="_id")), **static)


DeliveryCommand = _command_model()


def parse_delivery(data: bytes) -> Delivery | None:
    """A work-queue message's delivery; None when it is not one (dropped, never retried)."""
    try:
        doc = json.loads(data)
    except ValueError:
        return None
    if not isinstance(doc, dict) or not all(
        isinstance(doc.get(key), str) for key in ("_id", "notice_id", "target", "target_kind")
    ):
        return None
    return Delivery.from_doc(doc)


@dataclass(frozen=True, slots=True)
class Claim:
    """Attempt `k` of a delivery, held by `worker` (a sender's id, or a bookkeeping name)."""

    delivery_id: str
    notice_id: str
    k: int
    worker: str
    created_at: datetime

    @property
    def id(self) -> str:
        return attempt_id(self.delivery_id, self.k)

    @property
    def is_bookkeeping(self) -> bool:
        return self.worker in BOOKKEEPING_CLAIMS

    @classmethod
    def of(cls, delivery: Delivery, k: int, worker: str, now: datetime) -> "Claim":
        return cls(delivery.id, delivery.notice_id, k, worker, now)

    @classmethod
    def from_doc(cls, doc: Doc) -> "Claim":
        return cls(
            str(doc["delivery_id"]),
            str(doc["notice_id"]),
            int(doc["k"]),
            str(doc.get("worker")),
            doc["created_at"],
        )

    def to_doc(self) -> Doc:
        return {
            "_id": self.id,
            "delivery_id": self.delivery_id,
            "notice_id": self.notice_id,
            "worker": self.worker,
            "k": self.k,
            "created_at": self.created_at,
        }


@dataclass(frozen=True, slots=True)
class Outcome:
    """What an attempt came to: the changing fields of its result (None = not set)."""

    state: DeliveryState
    failures: int | None = None  # None: as many as before this attempt
    last_error: str | None = None
    not_before: datetime | None = None  # a pending delivery is not tried before this
    doubt: bool = False  # Zalo may have posted: the next attempt checks the echo first
    doubt_at: datetime | None = None
    sent_at: datetime | None = None
    finished_at: datetime | None = None
    zalo_message_id: str | None = None
    resolved_by: str | None = None
    confirmed_at: datetime | None = None
    officer_message_id: str | None = None
    notified_at: datetime | None = None
    next_action_at: datetime | None = None
    reminders: int | None = None

    def to_doc(self) -> Doc:
        doc = {k: v for k, v in asdict(self).items() if v is not None}
        doc["state"] = self.state.value
        if not self.doubt:
            del doc["doubt"]
        return doc


_OUTCOME_FIELDS = tuple(f.name for f in fields(Outcome))


@dataclass(frozen=True, slots=True)
class Result:
    """The result of attempt `k` of a delivery, written once by the attempt's holder."""

    delivery: Delivery
    k: int
    outcome: Outcome
    recorded_at: datetime
    failures: int = 0  # failed attempts up to this one
    worker: str | None = None

    @property
    def id(self) -> str:
        return attempt_id(self.delivery.id, self.k)

    @property
    def state(self) -> DeliveryState:
        return self.outcome.state

    @classmethod
    def of(
        cls,
        delivery: Delivery,
        k: int,
        outcome: Outcome,
        now: datetime,
        failures: int = 0,
        worker: str | None = None,
    ) -> "Result":
        counted = outcome.failures if outcome.failures is not None else failures
        return cls(delivery, k, outcome, now, counted, worker)

    @classmethod
    def from_doc(cls, doc: Doc, delivery: Delivery | None = None) -> "Result":
        """`delivery`: its static fields; a manual delivery's result repeats them itself."""
        if delivery is None:
            delivery = Delivery.from_doc({**doc, "_id": doc["delivery_id"]})
        # The count is the result's (`failures`), not an outcome's change of it.
        values = {k: doc[k] for k in _OUTCOME_FIELDS if k != "failures" and doc.get(k) is not None}
        values["state"] = DeliveryState(doc["state"])
        failures = int(doc.get("failures") or 0)
        outcome = Outcome(**values)
        worker = doc.get("worker")
        return cls(delivery, int(doc["k"]), outcome, doc["recorded_at"], failures, worker)

    def to_doc(self) -> Doc:
        """A manual delivery's results repeat its static fields: the officers' reminders and
        replies start from a result, and there are few of them."""
        static = self.delivery.to_doc() if self.delivery.is_manual else {}
        static.pop("_id", None)
        worker = {"worker": self.worker} if self.worker is not None else {}
        return {
            "notice_id": self.delivery.notice_id,
            **static,
            **self.outcome.to_doc(),
            "failures": self.failures,
            **worker,
            "_id": self.id,
            "delivery_id": self.delivery.id,
            "k": self.k,
            "recorded_at": self.recorded_at,
        }


@dataclass(frozen=True, slots=True)
class Attempt:
    """Where a delivery stands: its highest claimed attempt `k` (0: none), that claim, the
    result of attempt k (None while it is open) and the latest result written (k or earlier)."""

    k: int
    claim: Claim | None
    result: Result | None
    latest: Result | None

    @property
    def failures(self) -> int:
        return self.latest.failures if self.latest else 0


@dataclass(frozen=True, slots=True)
class Awaiting:
    """Bookkeeping of a manual delivery that waits for its officer's confirmation."""

    result_id: str
    next_action_at: datetime | None = None
    reminders: int = 0
    escalated_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class DeliveryView:
    """A delivery as its latest result shows it (`result` None: nobody finished an attempt)."""

    delivery: Delivery
    result: Result | None = None
    open_claim: Claim | None = None  # the next attempt, claimed without a result yet
    awaiting: Awaiting | None = field(default=None)

    @property
    def id(self) -> str:
        return self.delivery.id

    @property
    def state(self) -> DeliveryState:
        return self.result.state if self.result else DeliveryState.PENDING

    @property
    def claims(self) -> int:
        """The attempt the view shows (0: none)."""
        return self.result.k if self.result else 0

    @property
    def failures(self) -> int:
        return self.result.failures if self.result else 0


@dataclass(frozen=True, slots=True)
class Echo:
    """Zalo's echo of a post of ours to a group: proof that it went out."""

    group_id: str
    code: str
    message_id: str | None = None


def attempt_id(delivery_id: str, k: int) -> str:
    return f"{delivery_id}#{k}"


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of broadcast's audit log: who (`actor`) did what (`action`) when, to which
    notice if any, and the action's own `details` (never the notice text)."""

    id: str
    action: str
    actor: str
    at: datetime
    notice_id: str | None
    details: dict[str, Any]

    @classmethod
    def from_doc(cls, doc: Doc) -> "AuditEntry":
        rest = {k: v for k, v in doc.items() if k not in {"_id", "action", "actor", "at"}}
        notice_id = rest.pop("notice_id", None)
        return cls(doc["_id"], doc["action"], doc["actor"], doc["at"], notice_id, rest)


def new_group_fields(group_id: str) -> Doc:
    """The registry fields of a group first seen through a Zalo event: OA-owned (only those
    send events), active, not yet assigned to a ward (staff assign it by CSV import or the
    API), named after its id until Zalo gives its name."""
    return {
        "name": f"Nhóm {group_id}",
        "ward": None,
        "hamlet": None,
        "households": None,
        "officer_id": None,
        "officer_name": None,
        "channel": Channel.OA.value,
        "is_test": False,
        "active": True,
        "member_count": 0,
    }
