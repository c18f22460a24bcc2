"""Snapshots of the OA's follower total and article statistics, polled through the Zalo client.

The poller publishes one snapshot per interval slot (`event_id` = the slot, so replicas
polling the same slot are deduplicated by JetStream), and the consumer keeps each snapshot as
a document keyed by that id: replaying the stream rebuilds the same series.
"""

import asyncio
import logging
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any, Literal

import aiohttp
from nats.errors import Error as NatsError
from pydantic import BaseModel, ConfigDict

from services.analytics.buckets import bucket_labels
from services.analytics.increments import Fact
from shared.events.envelope import Event
from shared.zalo.client import ZaloClient
from shared.zalo.errors import ZaloError

log = logging.getLogger(__name__)

SNAPSHOTS = "zalo_snapshots"
_ARTICLE_PAGES = 10  # up to 10 x 10 newest articles per snapshot


class ArticleCount(BaseModel):
    model_config = ConfigDict(frozen=True)

    article_id: str
    title: str | None = None
    views: int | None = None  # None: the API did not return a view count
    shares: int | None = None


class ZaloStatsSnapshotted(Event):
    """The OA's follower total and its articles' counts at one moment (producer: analytics)."""

    type: Literal["zalo_stats.snapshotted"] = "zalo_stats.snapshotted"
    v: Literal[1] = 1
    producer: str = "analytics"

    num_follower: int
    articles: tuple[ArticleCount, ...] = ()


async def take_snapshot(zalo: ZaloClient, now: datetime, interval: float) -> ZaloStatsSnapshotted:
    """Read the follower total and the newest articles; the id is the interval slot."""
    info = await zalo.get_oa_info()
    articles: list[ArticleCount] = []
    for page in range(_ARTICLE_PAGES):
        batch = await zalo.list_articles(offset=page * 10, limit=10)
        articles += [
            ArticleCount(article_id=a.article_id, title=a.title, views=a.views, shares=a.shares)
            for a in batch
        ]
        if len(batch) < 10:
            break
    slot = int(now.timestamp() // interval)
    return ZaloStatsSnapshotted(
        event_id=f"zalo-stats:{int(interval)}:{slot}",
        occurred_at=now,
        num_follower=info.num_follower,
        articles=tuple(articles),
    )


def snapshot_fact(event: ZaloStatsSnapshotted) -> Fact:
    hour, day = bucket_labels(event.occurred_at)
    data = {
        "day": day,
        "hour": hour,
        "followers": event.num_follower,
        "articles": [a.model_dump() for a in event.articles],
    }
    return Fact(SNAPSHOTS, event.event_id, data, {"at": event.occurred_at})


def daily_last(snapshots: Iterable[Mapping[str, Any]]) -> dict[str, Mapping[str, Any]]:
    """The last snapshot of each Vietnam day."""
    last: dict[str, Mapping[str, Any]] = {}
    for snap in sorted(snapshots, key=lambda s: s["at"]):
        last[snap["day"]] = snap
    return last


def follower_series(snapshots: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per day: the follower total at the day's last snapshot, and the increase over the day."""
    rows, previous = [], None
    for day, snap in sorted(daily_last(snapshots).items()):
        total = int(snap["followers"])
        rows.append(
            {
                "day": day,
                "followers": total,
                "increase": None if previous is None else total - previous,
            }
        )
        previous = total
    return rows


def article_series(snapshots: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Per article and day: views and shares at the day's last snapshot, and the increase."""
    rows: list[dict[str, Any]] = []
    previous: dict[str, Mapping[str, Any]] = {}
    for day, snap in sorted(daily_last(snapshots).items()):
        for article in snap.get("articles", []):
            before = previous.get(article["article_id"], {})
            rows.append(
                {
                    "day": day,
                    "article_id": article["article_id"],
                    "title": article.get("title"),
                    "views": article.get("views"),
                    "shares": article.get("shares"),
                    "views_increase": _increase(article.get("views"), before.get("views")),
                    "shares_increase": _increase(article.get("shares"), before.get("shares")),
                }
            )
            previous[article["article_id"]] = article
    return rows


def _increase(now: int | None, before: int | None) -> int | None:
    return None if now is None or before is None else now - before


# What a round may fail with and succeed at the next interval; anything else is a bug and
# ends the poller loudly instead of being retried every interval.
UNAVAILABLE = (ZaloError, aiohttp.ClientError, NatsError, TimeoutError, ConnectionError)


class SnapshotPoller:
    """Publishes a snapshot every `interval` seconds until stopped (errors are logged)."""

    def __init__(self, zalo: ZaloClient, publish: Any, interval: float) -> None:
        self.zalo, self.publish, self.interval = zalo, publish, interval

    async def run(self) -> None:
        while True:
            try:
                snapshot = await take_snapshot(self.zalo, datetime.now(UTC), self.interval)
                await self.publish(snapshot)
            except UNAVAILABLE as exc:  # the API or NATS is down: try again next interval
                log.warning("snapshot failed", extra={"error": type(exc).__name__})
            await asyncio.sleep(self.interval)
