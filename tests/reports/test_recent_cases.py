"""The wards' duplicate lists as intake reads them (`RecentCases`), on the real store."""

from datetime import UTC, datetime, timedelta

import pytest

from services.reports.duplicates import Fingerprint
from services.reports.intake import RecentCases
from services.reports.store import ReportsStore
from tests.polling import eventually

NOW = datetime(2026, 12, 4, 22, 0, tzinfo=UTC)


def mark(case_id: str, ward: str = "quang-phu") -> Fingerprint:
    return Fingerprint(
        case_id=case_id,
        tipster="t",
        ward=ward,
        category="theft",
        places=frozenset({"quang phu"}),
        words=frozenset({"trom", "cho"}),
        at=NOW,
    )


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def ids(marks: list[Fingerprint]) -> list[str]:
    return sorted(mark.case_id for mark in marks)


async def test_lists_are_read_again_in_the_background_keeping_this_process_notes(
    store: ReportsStore,
) -> None:
    clock = Clock()
    recent = RecentCases(store, ttl=1.0, clock=clock, write_delay=0.05)
    since = NOW - timedelta(hours=1)
    await store.remember_recent([mark("c1")])
    assert ids(await recent.since(since)) == ["c1"]  # the first read is waited for

    await store.remember_recent([mark("c2", "nam-ly")])  # another replica's new case
    assert ids(await recent.since(since)) == ["c1"]  # within the ttl: not read again
    clock.now = 1.5
    assert ids(await recent.since(since)) == ["c1"]  # stale: read in the background
    reading = recent._reading
    assert reading is not None
    assert not reading.done()
    recent.noted([mark("c3")])  # decided while the read runs, not yet written
    await reading
    assert ids(await recent.since(since)) == ["c1", "c2", "c3"]
    assert ids(await store.recent_fingerprints(since)) == ["c1", "c2"]  # c3 not yet written

    await eventually(lambda: len(recent._unwritten) == 0 and recent._writing is None)
    assert ids(await store.recent_fingerprints(since)) == ["c1", "c2", "c3"]
    clock.now = 3.0
    await recent.since(since)
    assert recent._reading is not None
    await recent._reading
    assert ids(await recent.since(since)) == ["c1", "c2", "c3"]  # now from the store
    assert ids(await recent.since(NOW + timedelta(seconds=1))) == []  # older than `since`
    await recent.close()


async def test_a_read_that_fails_keeps_the_lists_and_is_retried(store: ReportsStore) -> None:
    clock = Clock()
    recent = RecentCases(store, ttl=1.0, clock=clock)
    since = NOW - timedelta(hours=1)
    await store.remember_recent([mark("c1")])
    assert ids(await recent.since(since)) == ["c1"]
    await store.recent.insert_one({"_id": "broken", "items": "not a list"})
    clock.now = 1.5
    await recent.since(since)
    assert recent._reading is not None
    with pytest.raises(TypeError):
        await recent._reading
    clock.now = 3.0
    with pytest.raises(TypeError):  # an unexpected failure surfaces in the next batch
        await recent.since(since)
    await store.recent.delete_one({"_id": "broken"})
    await recent.since(since)  # read again at once
    assert recent._reading is not None
    await recent._reading
    assert ids(await recent.since(since)) == ["c1"]
    await recent.close()


async def test_notes_are_gathered_into_one_write_and_closing_writes_the_rest(
    store: ReportsStore,
) -> None:
    recent = RecentCases(store, ttl=1.0, write_delay=60.0)
    since = NOW - timedelta(hours=1)
    assert await recent.since(since) == []
    recent.noted([mark("c1")])
    recent.noted([mark("c2", "nam-ly"), mark("c3")])
    writer = recent._writing
    assert writer is not None
    assert not writer.done()  # one writer for every note of the delay
    assert await store.recent_fingerprints(since) == []
    await recent.close()
    assert writer.cancelled()
    assert ids(await store.recent_fingerprints(since)) == ["c1", "c2", "c3"]
