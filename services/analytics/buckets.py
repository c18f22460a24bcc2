"""Time buckets in Vietnam time: an hour and a day, labelled and keyed the same everywhere."""

from datetime import UTC, date, datetime, timedelta, timezone
from enum import StrEnum
from functools import lru_cache

# Asia/Ho_Chi_Minh has been UTC+7 without daylight saving since 1975: a fixed offset gives
# the same answer as the tz database and needs no tzdata on the host.
VIETNAM = timezone(timedelta(hours=7), "Asia/Ho_Chi_Minh")


class Grain(StrEnum):
    HOUR = "hour"
    DAY = "day"


GRAINS = (Grain.HOUR, Grain.DAY)


def as_utc(moment: datetime) -> datetime:
    """`moment` itself if it knows its zone; a naive datetime (as BSON stores them) is UTC."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def local(moment: datetime) -> datetime:
    """The moment in Vietnam time (a naive datetime is taken as UTC)."""
    return as_utc(moment).astimezone(VIETNAM)


def bucket_start(moment: datetime, grain: Grain) -> datetime:
    """Start of the hour or day (Vietnam time) that contains `moment`, as an aware datetime."""
    here = local(moment)
    if grain is Grain.HOUR:
        return here.replace(minute=0, second=0, microsecond=0)
    return here.replace(hour=0, minute=0, second=0, microsecond=0)


def bucket_label(moment: datetime, grain: Grain) -> str:
    """`2026-11-29` for a day, `2026-11-29T13` for an hour, both in Vietnam time."""
    start = bucket_start(moment, grain)
    return start.strftime("%Y-%m-%dT%H" if grain is Grain.HOUR else "%Y-%m-%d")


def label_start(label: str) -> datetime:
    """The aware start of a bucket from its label (inverse of `bucket_label`)."""
    if "T" in label:
        return datetime.strptime(label, "%Y-%m-%dT%H").replace(tzinfo=VIETNAM)
    return datetime.strptime(label, "%Y-%m-%d").replace(tzinfo=VIETNAM)


def day_labels(first: date, last: date) -> list[str]:
    """Every day label from `first` to `last` inclusive."""
    days = (last - first).days
    return [(first + timedelta(days=i)).isoformat() for i in range(max(days + 1, 0))]


def hour_labels(start: datetime, end: datetime) -> list[str]:
    """Every hour label whose bucket starts in [start, end)."""
    cursor = bucket_start(start, Grain.HOUR)
    stop = local(end)
    labels = []
    while cursor < stop:
        labels.append(cursor.strftime("%Y-%m-%dT%H"))
        cursor += timedelta(hours=1)
    return labels


def bucket_labels(moment: datetime) -> tuple[str, str]:
    """The hour and day labels of `moment` (fast path: Vietnam's offset is whole hours, so
    Vietnam hours start with UTC hours and one cache entry serves a whole hour)."""
    return hour_labels_of(int(as_utc(moment).timestamp()) // 3600)


@lru_cache(maxsize=8192)
def hour_labels_of(hour_index: int) -> tuple[str, str]:
    """The hour and day labels of the `hour_index`-th UTC hour since the epoch."""
    start = datetime.fromtimestamp(hour_index * 3600, VIETNAM)
    return start.strftime("%Y-%m-%dT%H"), start.strftime("%Y-%m-%d")
