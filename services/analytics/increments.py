"""What each event adds to the counters: pure functions from an event to increments.

A counter document is keyed by metric, grain, Vietnam-time bucket and dimensions, so the key
is a pure function of the event and a replay of the same events yields the same documents.
"""

from collections import Counter
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from typing import Any, Literal, NamedTuple

from pydantic import BaseModel, ConfigDict

from services.analytics.buckets import Grain, as_utc, hour_labels_of
from shared.events.zalo import ZaloEventKind

FOLLOWERS = "followers"
ZALO_EVENTS = "zalo_events"
GROUP_MESSAGES = "group_messages"
GROUP_MEMBERS = "group_members"

MESSAGE_KINDS = (
    ZaloEventKind.USER_MESSAGE,
    ZaloEventKind.GROUP_MESSAGE,
    ZaloEventKind.OA_MESSAGE,
)
_JOINED = {"user_join_group", "accept_request_join_group"}
_LEFT = {"user_leave_group", "user_out_group"}


class Increment(NamedTuple):
    """Add `amount` to `field` of the counter `metric` with `dims`, in the buckets of `at`.
    (A named tuple: one is made per counted event, and tuples are made several times faster
    than frozen dataclasses.)"""

    metric: str
    field: str
    at: datetime
    dims: tuple[tuple[str, str], ...] = ()
    amount: int = 1


@dataclass(frozen=True)
class Fact:
    """Timestamps of one entity (a case, a delivery) kept as the earliest seen: `$min` is
    idempotent and order-free, so facts need no ledger and replay to the same values."""

    collection: str
    key: str
    on_insert: Mapping[str, Any]
    earliest: Mapping[str, datetime]


class Decoded(NamedTuple):
    """What one event does: counter increments and entity facts."""

    event_id: str
    increments: Sequence[Increment]
    facts: Sequence[Fact] = ()


@dataclass(frozen=True)
class CounterOp:
    """The combined increments of one counter document: one grain and bucket.

    Metrics and dimensions are folded into the document (`c.<metric>.<dims>.<field>`) rather
    than spread over documents, so a batch updates few documents (an hour and a day under live
    traffic): FerretDB v1 (SQLite) scans the collection on every update and takes milliseconds
    per update, and documents are partitioned into one collection per month for that reason.
    """

    key: str
    grain: Grain
    bucket: str
    inc: Mapping[str, int]  # dotted path under the document -> amount

    @property
    def collection(self) -> str:
        return counters_collection(self.bucket)

    def to_document(self) -> dict[str, Any]:
        """How the op is kept in a batch journal (field names may not contain dots there)."""
        return {
            "key": self.key,
            "g": str(self.grain),
            "b": self.bucket,
            "inc": [{"p": path, "n": amount} for path, amount in self.inc.items()],
        }

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> "CounterOp":
        inc = {item["p"]: int(item["n"]) for item in doc["inc"]}
        return cls(doc["key"], Grain(doc["g"]), doc["b"], inc)


def counters_collection(bucket: str) -> str:
    """`counters_2026_11` for any bucket label of November 2026."""
    return "counters_" + bucket[:7].replace("-", "_")


def dims(**values: str | None) -> tuple[tuple[str, str], ...]:
    """Dimensions in a stable order; unset values are left out."""
    return tuple(sorted((key, value) for key, value in values.items() if value))


@lru_cache(maxsize=4096)
def dims_key(dimensions: tuple[tuple[str, str], ...]) -> str:
    """A field name for a dimension combination (`kind=follow`, `_` for none)."""
    text = ",".join(f"{k}={v}" for k, v in dimensions)
    return (text or "_").replace(".", "_").replace("$", "_")


def parse_dims_key(text: str) -> dict[str, str]:
    if text == "_":
        return {}
    return dict(part.split("=", 1) for part in text.split(","))


def counter_key(grain: Grain, bucket: str) -> str:
    """The `_id` of a counter document (`hour|2026-11-29T13`, `day|2026-11-29`)."""
    return f"{grain}|{bucket}"


class CountedZaloEvent(BaseModel):
    """The fields of `shared.events.zalo.ZaloEventReceived` that analytics counts (decoding
    only these is several times faster than the whole event)."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    event_id: str
    type: Literal["zalo_event.received"]
    v: Literal[1]
    occurred_at: datetime
    kind: ZaloEventKind
    event_name: str
    group_id: str | None = None


_KIND_DIMS = {kind: dims(kind=str(kind)) for kind in ZaloEventKind}


@lru_cache(maxsize=4096)
def _group_dims(group_id: str) -> tuple[tuple[str, str], ...]:
    return dims(group=group_id)


def zalo_increments(event: CountedZaloEvent) -> list[Increment]:
    """Followers, events per kind, group messages and group membership changes."""
    at, kind = event.occurred_at, event.kind
    found = [Increment(ZALO_EVENTS, "n", at, _KIND_DIMS[kind])]
    if kind is ZaloEventKind.FOLLOW:
        found.append(Increment(FOLLOWERS, "follow", at))
    elif kind is ZaloEventKind.UNFOLLOW:
        found.append(Increment(FOLLOWERS, "unfollow", at))
    elif kind is ZaloEventKind.GROUP_MESSAGE and event.group_id:
        found.append(Increment(GROUP_MESSAGES, "n", at, _group_dims(event.group_id)))
    elif kind is ZaloEventKind.GROUP and event.group_id:
        if event.event_name in _JOINED:
            found.append(Increment(GROUP_MEMBERS, "joined", at, _group_dims(event.group_id)))
        elif event.event_name in _LEFT:
            found.append(Increment(GROUP_MEMBERS, "left", at, _group_dims(event.group_id)))
    return found


def combine(increments: Iterable[Increment]) -> list[CounterOp]:
    """Fold increments into one op per counter document, in a stable order."""
    per_hour: Counter[tuple[str, tuple[tuple[str, str], ...], str, int]] = Counter()
    for metric, name, at, dimensions, amount in increments:
        per_hour[metric, dimensions, name, _hour_index(at)] += amount
    folded: dict[tuple[Grain, str], dict[str, int]] = {}
    for (metric, dimensions, name, hour_index), amount in per_hour.items():
        path = f"c.{metric}.{dims_key(dimensions)}.{name}"
        hour, day = hour_labels_of(hour_index)
        for grain, bucket in ((Grain.HOUR, hour), (Grain.DAY, day)):
            inc = folded.setdefault((grain, bucket), {})
            inc[path] = inc.get(path, 0) + amount
    ops = [CounterOp(counter_key(g, b), g, b, inc) for (g, b), inc in folded.items()]
    return sorted(ops, key=lambda op: op.key)


def _hour_index(moment: datetime) -> int:
    """Hours since the epoch (a naive datetime is taken as UTC)."""
    return int(as_utc(moment).timestamp()) // 3600
