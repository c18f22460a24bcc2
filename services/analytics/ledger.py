"""Exactly-once counting on a MongoDB-wire server without transactions (FerretDB v1).

The batch journal is the ledger. A batch of events goes through three steps:

1. Journal: one insert of `{_id: batch, ids: [event ids not seen before], ops: [...]}`: the
   claim on those events and the combined counter increments they cause, in one document.
2. Apply: one guarded `$inc` per counter document: the filter
   `{_id: key, "applied.<batch>": {$exists: false}}` with `$set: {"applied.<batch>": 1}`. A
   document that already carries the batch is not matched, so applying the same journal again
   (after a crash in the middle of this step) changes nothing.
3. Mark: insert `{_id: batch}` into the applied set; only then are the messages acknowledged.
   The batch's guard is `$unset` the next time this process updates that document.

Which event ids were seen, and by which batch, is kept in memory and rebuilt from the journals
at start-up, where every journal without a mark (a crash between steps 1 and 3) is applied
again (guarded) and marked. A redelivered or duplicated event is found in that index: its
batch is marked (nothing to do), still running here (wait for it), or failed here (apply its
journal again, then mark). If the journal insert itself failed, whether it was written is
checked before anything else is counted. So an event is counted once however often it comes.

One writer per database, the holder of `lease.WriterLease`: FerretDB v1 loses `$inc`s that
run concurrently on one document (400 concurrent increments left 102, measured), and the index
of seen ids lives in this process. Per-event ledger documents were measured at 10–16k
inserts/s on FerretDB here, below the 20k events/s target; ids inside the journal document
cost one insert per batch. FerretDB also scans the whole collection on each update (about
7 µs per stored document), so counters are folded into few documents and collections (see
`increments.CounterOp`).
"""

import asyncio
import contextlib
import itertools
import logging
import time
import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from pymongo import AsyncMongoClient, UpdateOne, WriteConcern
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from services.analytics.increments import CounterOp, Fact, Increment, combine

log = logging.getLogger(__name__)

JOURNAL = "analytics_batches"
APPLIED = "analytics_applied"
# FerretDB v1 slows down more than linearly with the updates in one command (160 took > 20 s).
_BULK_CHUNK = 16

Events = Sequence[tuple[str, Sequence[Increment]]]


def durable_database(client: AsyncMongoClient[Any], name: str) -> AsyncDatabase[Any]:
    """The database with writes acknowledged by a majority and journaled: messages are acked
    to JetStream after these writes return, so they must survive a failover or a crash."""
    return client.get_database(name, write_concern=WriteConcern(w="majority", j=True))


@dataclass
class BatchResult:
    """What a batch did: events newly counted and duplicates skipped."""

    batch: str
    counted: int = 0
    duplicates: int = 0


class CounterLedger:
    """Applies batches of per-event increments exactly once (one writer per database)."""

    def __init__(self, db: AsyncDatabase[Any]) -> None:
        self.db = db
        self.journal = db[JOURNAL]
        self.applied = db[APPLIED]
        self.instance = uuid.uuid4().hex[:8]
        self._sequence = itertools.count(1)
        self._owner: dict[str, str] = {}  # event id -> batch that journaled it
        self._marked: set[str] = set()
        self._running: dict[str, asyncio.Future[None]] = {}
        self._unresolved: list[str] = []  # batches whose journal insert raised
        self._unreported: set[str] = set()  # claimed by a batch that raised: not reported yet
        self._stale_guards: dict[tuple[str, str], set[str]] = {}
        self._known_keys: set[tuple[str, str]] = set()
        self._counter_writes = asyncio.Lock()  # see the module docstring: one $inc at a time

    async def load(self, retention: timedelta | None = None) -> int:
        """Rebuild the index of seen ids from the journals; finish unmarked journals. Applied
        journals older than `retention` are deleted: their events are older than the streams
        keep (and than ingest accepts), so they cannot come again."""
        self._marked = {doc["_id"] async for doc in self.applied.find({}, {"_id": 1})}
        cutoff = None if retention is None else datetime.now(UTC) - retention
        finished, expired = 0, []
        async for record in self.journal.find({}):
            if cutoff and record["_id"] in self._marked and record.get("t", cutoff) < cutoff:
                expired.append(record["_id"])
                continue
            for event_id in record.get("ids", []):
                self._owner[event_id] = record["_id"]
            if record["_id"] not in self._marked:
                await self._finish(record)
                finished += 1
        if expired:
            await self.journal.delete_many({"_id": {"$in": expired}})
            await self.applied.delete_many({"_id": {"$in": expired}})
            self._marked.difference_update(expired)
            log.info("expired journals deleted", extra={"batches": len(expired)})
        return finished

    async def apply(self, events: Events) -> BatchResult:
        """Count each event of the batch exactly once; raises if the effect is not durable."""
        await self._resolve_unknown()
        batch = f"{self.instance}-{int(time.time() * 1000)}-{next(self._sequence)}"
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._running[batch] = done
        try:
            result = await self._apply(batch, events)
            done.set_result(None)
        except BaseException:
            done.cancel()
            raise
        finally:
            del self._running[batch]
        return result

    async def _apply(self, batch: str, events: Events) -> BatchResult:
        unique = dict(events)  # the same event twice in one batch counts once
        new = [e for e in unique if e not in self._owner]
        result = BatchResult(batch, counted=len(new), duplicates=len(events) - len(new))
        earlier = {self._owner[e] for e in unique if e in self._owner}
        self._unreported.difference_update(new)
        try:
            if new:
                ops = combine(itertools.chain.from_iterable(unique[e] for e in new))
                record = {
                    "_id": batch,
                    "t": datetime.now(UTC),
                    "ids": new,
                    "ops": [op.to_document() for op in ops],
                }
                await self._insert_journal(record)
                await self._finish(record)
            for owner in sorted(earlier):
                await self._settle(owner)
        except BaseException:
            self._unreported.update(new)  # claimed, but this batch did not report them counted
            raise
        late = [e for e in unique if e in self._unreported and self._owner.get(e) in self._marked]
        self._unreported.difference_update(late)
        result.counted += len(late)  # their counts were written for a batch that then failed
        result.duplicates -= len(late)
        return result

    async def _insert_journal(self, record: dict[str, Any]) -> None:
        for event_id in record["ids"]:
            self._owner.setdefault(event_id, record["_id"])
        try:
            await self.journal.insert_one(record)
        except BaseException:
            self._unresolved.append(record["_id"])  # written or not: checked before going on
            raise

    async def _resolve_unknown(self) -> None:
        while self._unresolved:
            batch = self._unresolved[0]
            record = await self.journal.find_one({"_id": batch})
            if record is None:
                self._forget(batch)
            else:
                await self._finish(record)
            self._unresolved.pop(0)

    def _forget(self, batch: str) -> None:
        for event_id in [e for e, owner in self._owner.items() if owner == batch]:
            del self._owner[event_id]

    async def _settle(self, owner: str) -> None:
        """Make sure an earlier batch that claimed some of these events is applied."""
        running = self._running.get(owner)
        if running is not None:
            await asyncio.wait([running])
        if owner in self._marked:
            return
        record = await self.journal.find_one({"_id": owner})
        if record is None:
            raise RuntimeError(f"journal {owner} is missing")  # resolved before the next batch
        await self._finish(record)

    async def _finish(self, record: dict[str, Any]) -> None:
        """Apply a journal (guarded, so again is harmless) and mark it applied."""
        ops = [CounterOp.from_document(doc) for doc in record["ops"]]
        async with self._counter_writes:
            await self._write_counters(record["_id"], ops)
        with contextlib.suppress(DuplicateKeyError):  # marked already: the same state
            await self.applied.insert_one({"_id": record["_id"]})
        self._marked.add(record["_id"])
        for op in ops:
            self._stale_guards.setdefault((op.collection, op.key), set()).add(record["_id"])

    async def _write_counters(self, batch: str, ops: list[CounterOp]) -> None:
        by_collection: dict[str, list[CounterOp]] = {}
        for op in ops:
            by_collection.setdefault(op.collection, []).append(op)
        for name, group in by_collection.items():
            await self._create_missing(name, group)
            writes = [self._guarded_update(name, batch, op) for op in group]
            for start in range(0, len(writes), _BULK_CHUNK):
                await self.db[name].bulk_write(writes[start : start + _BULK_CHUNK], ordered=False)
            for op in group:  # the stale guards were unset together with this update
                self._stale_guards.pop((name, op.key), None)

    def _guarded_update(self, collection: str, batch: str, op: CounterOp) -> UpdateOne:
        update: dict[str, Any] = {"$inc": dict(op.inc), "$set": {f"applied.{batch}": 1}}
        stale = self._stale_guards.get((collection, op.key), set()) - {batch}
        if stale:
            update["$unset"] = {f"applied.{old}": "" for old in sorted(stale)}
        return UpdateOne({"_id": op.key, f"applied.{batch}": {"$exists": False}}, update)

    async def write_facts(self, facts: Iterable[Fact]) -> None:
        """Keep the earliest timestamps of entities (`$min` upserts: idempotent, order-free)."""
        merged: dict[tuple[str, str], tuple[dict[str, Any], dict[str, datetime]]] = {}
        for fact in facts:
            on_insert, earliest = merged.setdefault((fact.collection, fact.key), ({}, {}))
            on_insert.update(fact.on_insert)
            for name, at in fact.earliest.items():
                earliest[name] = min(at, earliest.get(name, at))
        by_collection: dict[str, list[UpdateOne]] = {}
        for (collection, key), (on_insert, earliest) in sorted(merged.items()):
            by_collection.setdefault(collection, []).append(
                UpdateOne({"_id": key}, {"$setOnInsert": on_insert, "$min": earliest}, upsert=True)
            )
        async with self._counter_writes:
            for collection, writes in by_collection.items():
                for start in range(0, len(writes), _BULK_CHUNK):
                    await self.db[collection].bulk_write(
                        writes[start : start + _BULK_CHUNK], ordered=False
                    )

    async def _create_missing(self, collection: str, ops: list[CounterOp]) -> None:
        """Insert empty counter documents first: FerretDB cannot upsert behind a guard."""
        new = [op for op in ops if (collection, op.key) not in self._known_keys]
        if not new:
            return
        existing = {
            doc["_id"]
            async for doc in self.db[collection].find(
                {"_id": {"$in": [op.key for op in new]}}, {"_id": 1}
            )
        }
        docs = [
            {"_id": op.key, "g": str(op.grain), "b": op.bucket, "c": {}, "applied": {}}
            for op in new
            if op.key not in existing
        ]
        if docs:
            await self.db[collection].insert_many(docs, ordered=False)
        self._known_keys.update((collection, op.key) for op in new)
