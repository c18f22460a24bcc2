"""Shaping counter documents into series and tables (pure; no I/O)."""

import csv
import io
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import Any

from services.analytics.buckets import VIETNAM, Grain, day_labels, hour_labels
from services.analytics.increments import MESSAGE_KINDS
from shared.errors import ServiceError

MAX_DAYS = 366
MAX_HOURS = 31 * 24


class PeriodError(ServiceError):
    """A period that cannot be served (reversed, too long): 422."""

    def __init__(self, detail: str) -> None:
        super().__init__(detail, 422, "invalid_period")


def period_labels(first: date, last: date, grain: Grain) -> list[str]:
    """The bucket labels of the period [first, last] (Vietnam days) at `grain`."""
    if last < first:
        raise PeriodError("`from` phải trước hoặc bằng `to`.")
    days = (last - first).days + 1
    if grain is Grain.DAY:
        if days > MAX_DAYS:
            raise PeriodError(f"Khoảng thời gian tối đa {MAX_DAYS} ngày.")
        return day_labels(first, last)
    if days * 24 > MAX_HOURS:
        raise PeriodError(f"Theo giờ: khoảng thời gian tối đa {MAX_HOURS // 24} ngày.")
    start = datetime(first.year, first.month, first.day, tzinfo=VIETNAM)
    return hour_labels(start, start + timedelta(days=days))


def default_period(today: date, days: int = 30) -> tuple[date, date]:
    return today - timedelta(days=days - 1), today


def sum_fields(docs: Iterable[Mapping[str, Any]]) -> dict[str, dict[str, int]]:
    """Bucket label → field → total over all dimensions."""
    totals: dict[str, dict[str, int]] = {}
    for doc in docs:
        row = totals.setdefault(doc["b"], {})
        for name, value in doc.get("n", {}).items():
            row[name] = row.get(name, 0) + int(value)
    return totals


def followers_series(
    docs: Iterable[Mapping[str, Any]], labels: Sequence[str]
) -> list[dict[str, Any]]:
    totals = sum_fields(docs)
    rows = []
    for label in labels:
        follows = totals.get(label, {}).get("follow", 0)
        unfollows = totals.get(label, {}).get("unfollow", 0)
        rows.append(
            {
                "bucket": label,
                "follows": follows,
                "unfollows": unfollows,
                "net": follows - unfollows,
            }
        )
    return rows


def messages_series(
    docs: Iterable[Mapping[str, Any]], labels: Sequence[str]
) -> list[dict[str, Any]]:
    by_kind: dict[str, dict[str, int]] = {}
    for doc in docs:
        kind = doc.get("d", {}).get("kind", "")
        if kind in MESSAGE_KINDS:
            row = by_kind.setdefault(doc["b"], {})
            row[kind] = row.get(kind, 0) + int(doc.get("n", {}).get("n", 0))
    rows = []
    for label in labels:
        counts = {str(kind): by_kind.get(label, {}).get(kind, 0) for kind in MESSAGE_KINDS}
        rows.append({"bucket": label, **counts, "total": sum(counts.values())})
    return rows


def net_total(docs: Iterable[Mapping[str, Any]]) -> int:
    """Follows minus unfollows over all the given documents."""
    totals = sum_fields(docs)
    return sum(row.get("follow", 0) - row.get("unfollow", 0) for row in totals.values())


def per_dim(docs: Iterable[Mapping[str, Any]], dim: str, name: str) -> dict[str, int]:
    """Total of field `name` per value of dimension `dim`."""
    totals: dict[str, int] = {}
    for doc in docs:
        key = doc.get("d", {}).get(dim)
        if key:
            totals[key] = totals.get(key, 0) + int(doc.get("n", {}).get(name, 0))
    return totals


def to_csv(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as CSV with a header taken from the first row (empty string for no rows)."""
    if not rows:
        return ""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return out.getvalue()
