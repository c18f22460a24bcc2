"""Every MongoDB read of the analytics service.

Only operators FerretDB v1 has are used (find with `$in`/`$gte`/`$lte`); sums, medians and
percentiles are computed in Python from the counter documents.
"""

import logging
from datetime import timedelta
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from services.analytics.buckets import Grain, label_start
from services.analytics.increments import counters_collection, parse_dims_key
from services.analytics.ledger import APPLIED, JOURNAL
from services.analytics.reach import DELIVERIES
from services.analytics.registry import REGISTRY_GROUPS, Group, latest_groups
from services.analytics.settings import AnalyticsSettings
from services.analytics.snapshots import SNAPSHOTS
from services.analytics.tips import CASES

log = logging.getLogger(__name__)

PREFIX = "counters_"


class MetricsStore:
    """Reads counters and the registry."""

    def __init__(self, db: AsyncDatabase[Any], settings: AnalyticsSettings) -> None:
        self.db = db
        self.settings = settings

    async def ping(self) -> None:
        await self.db.command("ping")

    async def groups(self) -> list[Group]:
        """The registry's groups as broadcast last announced them."""
        versions = await self.db[REGISTRY_GROUPS].find({}).to_list(None)
        return latest_groups(versions)

    async def counter_collections(
        self, first: str | None = None, last: str | None = None
    ) -> list[str]:
        """The monthly counter collections that may hold buckets in [first, last]."""
        low = counters_collection(first) if first else ""
        high = counters_collection(last) if last else "~"
        names = await self.db.list_collection_names()
        return sorted(n for n in names if n.startswith(PREFIX) and low <= n <= high)

    async def counters(
        self, metric: str, grain: Grain, first: str | None = None, last: str | None = None
    ) -> list[dict[str, Any]]:
        """One row per bucket and dimension combination: `{b, d: dims, n: fields}`."""
        query: dict[str, Any] = {"g": str(grain)}
        labels: dict[str, str] = {}
        if first:
            labels["$gte"] = first
        if last:
            labels["$lte"] = last + "~"  # "~" sorts after every hour suffix of the last day
        if labels:
            query["b"] = labels
        rows = []
        for name in await self.counter_collections(first, last):
            async for doc in self.db[name].find(query, {"_id": 0, "b": 1, f"c.{metric}": 1}):
                for key, fields in doc.get("c", {}).get(metric, {}).items():
                    rows.append({"b": doc["b"], "d": parse_dims_key(key), "n": fields})
        return rows

    async def counter_snapshot(self) -> dict[str, dict[str, Any]]:
        """Every counter document without its transient guards (for comparisons)."""
        snapshot = {}
        for name in await self.counter_collections():
            async for doc in self.db[name].find({}, {"applied": 0}):
                snapshot[f"{name}/{doc['_id']}"] = doc
        return snapshot

    async def cases(self, first: str, last: str) -> list[dict[str, Any]]:
        """Tip cases triaged within the Vietnam days [first, last]."""
        start, end = label_start(first), label_start(last) + timedelta(days=1)
        query = {"triaged_at": {"$gte": start, "$lt": end}}
        return await self.db[CASES].find(query, {"_id": 0}).to_list(None)

    async def deliveries(self) -> list[dict[str, Any]]:
        return await self.db[DELIVERIES].find({}).to_list(None)

    async def snapshots(
        self, first: str | None = None, last: str | None = None
    ) -> list[dict[str, Any]]:
        """Zalo statistics snapshots of the Vietnam days [first, last] (all when unbounded)."""
        days: dict[str, str] = {}
        if first:
            days["$gte"] = first
        if last:
            days["$lte"] = last
        query = {"day": days} if days else {}
        return await self.db[SNAPSHOTS].find(query, {"_id": 0}).to_list(None)

    async def latest_snapshot(self) -> dict[str, Any] | None:
        docs = await self.db[SNAPSHOTS].find({}, {"_id": 0}).sort("at", -1).limit(1).to_list(None)
        return docs[0] if docs else None

    async def drop_aggregates(self) -> None:
        """Drop everything derived from the streams (the registry's groups too: the replay
        of broadcast's registry events brings them back)."""
        for name in [
            *await self.counter_collections(),
            JOURNAL,
            APPLIED,
            CASES,
            DELIVERIES,
            SNAPSHOTS,
            REGISTRY_GROUPS,
        ]:
            await self.db.drop_collection(name)
