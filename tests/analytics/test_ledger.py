"""Crashes between the journal, the counter writes and the mark never count an event twice."""

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.analytics.buckets import Grain
from services.analytics.increments import FOLLOWERS, Increment
from services.analytics.ledger import CounterLedger
from services.analytics.settings import AnalyticsSettings
from services.analytics.store import MetricsStore
from shared.mongo import connect_mongo

pytestmark = pytest.mark.integration

AT = datetime(2026, 11, 28, 16, 30, tzinfo=UTC)


class Crash(Exception):
    pass


class CrashBeforeCounters(CounterLedger):
    """Dies after the journal insert, before any counter is written."""

    async def _write_counters(self, batch: str, ops: list[Any]) -> None:
        raise Crash


class CrashBeforeMark(CounterLedger):
    """Dies after every counter write, before the batch is marked applied."""

    async def _write_counters(self, batch: str, ops: list[Any]) -> None:
        await super()._write_counters(batch, ops)
        raise Crash


def follows(count: int, offset: int = 0) -> list[tuple[str, list[Increment]]]:
    return [
        (f"e{offset + i}", [Increment(FOLLOWERS, "follow", AT + timedelta(minutes=i))])
        for i in range(count)
    ]


@pytest.fixture
async def db(mongodb_url: str, unique: str) -> AsyncIterator[Any]:
    client: Any = connect_mongo(mongodb_url)
    yield client[f"ledger_{unique}"]
    await client.drop_database(f"ledger_{unique}")
    await client.close()


async def total_follows(db: Any) -> int:
    store = MetricsStore(db, AnalyticsSettings())
    hours = sum(r["n"].get("follow", 0) for r in await store.counters(FOLLOWERS, Grain.HOUR))
    days = sum(r["n"].get("follow", 0) for r in await store.counters(FOLLOWERS, Grain.DAY))
    assert hours == days
    return int(days)


@pytest.mark.parametrize("crashing", [CrashBeforeCounters, CrashBeforeMark])
async def test_restart_finishes_the_journal_once(db: Any, crashing: type[CounterLedger]) -> None:
    with pytest.raises(Crash):
        await crashing(db).apply(follows(50))

    restarted = CounterLedger(db)
    assert await restarted.load() == 1  # the unmarked journal was finished
    assert await total_follows(db) == 50
    result = await restarted.apply(follows(50) + follows(10, offset=50))  # redelivery + new
    assert (result.counted, result.duplicates) == (10, 50)
    assert await total_follows(db) == 60
    assert await CounterLedger(db).load() == 0


@pytest.mark.parametrize("crashing", [CrashBeforeCounters, CrashBeforeMark])
async def test_redelivery_in_the_same_process_finishes_the_failed_batch(
    db: Any, crashing: type[CounterLedger]
) -> None:
    ledger = crashing(db)
    with pytest.raises(Crash):
        await ledger.apply(follows(20))
    ledger.__class__ = CounterLedger  # the database answers again
    result = await ledger.apply(follows(20))
    assert (result.counted, result.duplicates) == (20, 0)  # reported once, when they came again
    assert await total_follows(db) == 20
    again = await ledger.apply(follows(20))
    assert (again.counted, again.duplicates) == (0, 20)
    assert await total_follows(db) == 20


async def test_the_guard_of_a_batch_is_removed_once_marked(db: Any) -> None:
    ledger = CounterLedger(db)
    await ledger.apply(follows(3))
    await ledger.apply(follows(3, offset=3))
    docs = await db["counters_2026_11"].find({}).to_list(None)
    assert all(len(doc["applied"]) == 1 for doc in docs)  # only the latest batch's guard


async def test_old_applied_journals_expire_at_load(db: Any) -> None:
    await CounterLedger(db).apply(follows(4))
    with pytest.raises(Crash):
        await CrashBeforeMark(db).apply(follows(2, offset=4))  # unmarked: finished, not expired
    restarted = CounterLedger(db)
    assert await restarted.load(retention=timedelta(0)) == 1
    assert await db["analytics_batches"].count_documents({}) == 1
    assert await total_follows(db) == 6
    result = await restarted.apply(follows(2, offset=4))
    assert result.duplicates == 2  # the kept journal still knows its events
