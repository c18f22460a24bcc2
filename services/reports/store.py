"""Every MongoDB query of the reports service (operators that FerretDB v1 supports)."""

import asyncio
import json
from collections.abc import Iterable, Mapping, Set
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.reports.cases import OPEN_STATUSES, Case, HistoryEntry, Note
from services.reports.duplicates import RECENT_LIMIT, Fingerprint
from services.reports.intake_plan import IntakeRecord, Join, SlaWatch, TipsterNote, TipsterState
from services.reports.outgoing import StagedEvent
from shared.events.tips import CaseStatus, TipKind, TipPriority
from shared.mongo import ensure_indexes

Document = dict[str, Any]
DUPLICATE_KEY = 11000


@dataclass
class Inserted:
    """What inserting a batch's new cases found: cases that already existed (by id, as
    stored) and reference codes another case holds."""

    existing: dict[str, Case] = field(default_factory=dict)
    taken_refs: set[str] = field(default_factory=set)

    @property
    def clean(self) -> bool:
        return not self.existing and not self.taken_refs


class CaseFilter(dict[str, Any]):
    """A Mongo filter over cases built from the staff API's query parameters."""

    @classmethod
    def build(
        cls,
        wards: list[str] | None,
        status: CaseStatus | None = None,
        priority: TipPriority | None = None,
        category: str | None = None,
        kind: TipKind | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        open_only: bool = False,
    ) -> "CaseFilter":
        """`open_only`: the statuses still worked (a queue), unless `status` names one."""
        query = cls()
        if wards is not None:
            query["ward"] = {"$in": wards}
        if open_only and status is None:
            query["status"] = {"$in": [str(s) for s in OPEN_STATUSES]}
        for key, value in (
            ("status", status),
            ("priority", priority),
            ("category", category),
            ("kind", kind),
        ):
            if value is not None:
                query[key] = str(value)
        span: dict[str, datetime] = {}
        if since is not None:
            span["$gte"] = since
        if until is not None:
            span["$lt"] = until
        if span:
            query["created_at"] = span
        return query


class ReportsStore:
    """Cases, the intake ledger, the outbox, the tipster vault and the audit log."""

    def __init__(self, db: AsyncDatabase[Document]) -> None:
        self.db = db
        self.cases = db["cases"]
        self.intake = db["intake_messages"]
        self.outbox = db["outbox"]
        self.tipsters = db["tipsters"]
        self.audit = db["audit"]
        self.sent = db["sent_replies"]
        self.recent = db["recent_cases"]
        self.sla = db["sla_pending"]
        self.corrections = db["triage_corrections"]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(
            self.cases,
            [
                IndexModel([("ref", ASCENDING)], unique=True),
                IndexModel([("tipster", ASCENDING), ("last_message_at", DESCENDING)]),
                IndexModel([("ward", ASCENDING), ("created_at", DESCENDING)]),
                IndexModel([("status", ASCENDING), ("priority", ASCENDING)]),
            ],
        )
        await ensure_indexes(self.outbox, [IndexModel([("case_id", ASCENDING)])])
        await ensure_indexes(self.audit, [IndexModel([("at", DESCENDING)])])

    # --- cases --------------------------------------------------------------------------------

    async def get(self, case_id: str) -> Case | None:
        doc = await self.cases.find_one({"_id": case_id})
        return Case.model_validate(doc) if doc else None

    async def get_many(self, case_ids: Iterable[str]) -> dict[str, Case | None]:
        """Each case by id (None if absent): concurrent `_id` lookups, which FerretDB pushes
        down to its backend; an `$in` filter is not, and would read the whole collection."""
        ids = sorted(set(case_ids))
        found = await asyncio.gather(*(self.get(case_id) for case_id in ids))
        return dict(zip(ids, found, strict=True))

    async def insert_cases(self, cases: list[Case]) -> Inserted:
        """Insert new cases; report those that existed and the reference codes taken."""
        outcome = Inserted()
        if not cases:
            return outcome
        try:
            await self.cases.insert_many([case.to_document() for case in cases], ordered=False)
        except BulkWriteError as exc:
            errors = exc.details["writeErrors"]
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            clashed = [cases[error["index"]] for error in errors]
            stored = await self.get_many(case.id for case in clashed)
            for case in clashed:
                if (existing := stored[case.id]) is not None:
                    outcome.existing[case.id] = existing
                else:
                    outcome.taken_refs.add(case.ref)  # another case holds this reference code
        return outcome

    async def tipster(self, pseudonym: str) -> TipsterState | None:
        doc = await self.tipsters.find_one({"_id": pseudonym}, {"sealed": 0})
        if doc is None:
            return None
        return TipsterState(
            pseudonym=pseudonym,
            open_case_id=doc.get("open_case_id"),
            last_message_at=doc.get("last_message_at"),
        )

    async def note_tipsters(
        self, notes: list[TipsterNote], sealed: Mapping[str, str], known: Set[str]
    ) -> None:
        """Remember each tipster's newest open case, keeping the sealed id of a first case's
        tipster (once). `sealed` maps pseudonyms to sealed ids; `known` holds the tipsters
        whose document existed when the batch was loaded: the others are inserted (one
        statement for all, far cheaper than upserts on FerretDB), updated if one appeared
        meanwhile."""
        latest = {note.pseudonym: note for note in notes}  # a later note of a tipster wins
        firsts = {note.pseudonym for note in notes if note.first}
        docs = [
            {
                "_id": name,
                "sealed": sealed[name],
                "first_seen": latest[name].at,
                "open_case_id": latest[name].case_id,
                "last_message_at": latest[name].at,
            }
            for name in sorted(firsts - set(known))
        ]
        clashed = {str(doc["_id"]) for doc in await self._insert_new(self.tipsters, docs)}
        inserted = {str(doc["_id"]) for doc in docs} - clashed
        writes = []
        for name, note in latest.items():
            if name in inserted:
                continue
            update: Document = {"$set": {"open_case_id": note.case_id, "last_message_at": note.at}}
            if name in firsts:  # kept once, whoever wrote first
                update["$setOnInsert"] = {"sealed": sealed[name], "first_seen": note.at}
            writes.append(UpdateOne({"_id": name}, update, upsert=name in firsts))
        if writes:
            await self.tipsters.bulk_write(writes, ordered=False)

    async def remember_recent(self, fingerprints: list[Fingerprint]) -> None:
        """Note new cases in their ward's short list of recent cases (duplicate candidates)."""
        by_ward: dict[str, list[Document]] = {}
        for mark in fingerprints:
            by_ward.setdefault(mark.ward, []).append(mark.to_document())
        await asyncio.gather(
            *(
                self.recent.update_one(
                    {"_id": ward}, {"$push": {"items": {"$each": items}}}, upsert=True
                )
                for ward, items in by_ward.items()
            )
        )

    async def forget_recent(self, ward: str, case_id: str) -> None:
        """Take a closed case out of its ward's duplicate candidates."""
        await self.recent.update_one({"_id": ward}, {"$pull": {"items": {"case_id": case_id}}})

    async def recent_fingerprints(self, since: datetime) -> list[Fingerprint]:
        """Cases noted since `since` in every ward's list, pruning older notes."""
        found: list[Fingerprint] = []
        for doc in await self.recent.find({}).to_list(None):
            stored = doc.get("items", [])
            items = [item for item in stored if item["at"] >= since][-RECENT_LIMIT:]
            if len(stored) > 2 * RECENT_LIMIT or (stored and stored[0]["at"] < since):
                await self.recent.update_one({"_id": doc["_id"]}, {"$set": {"items": items}})
            found += [Fingerprint.from_document(item) for item in items]
        return found

    async def add_messages(self, joins: list[Join]) -> None:
        """Join each message to its case once (in order: a case may get two in a batch)."""
        if joins:
            await self.cases.bulk_write([_join_write(join) for join in joins], ordered=True)

    async def update(
        self,
        case_id: str,
        changes: Mapping[str, Any],
        history: HistoryEntry,
        expect: Mapping[str, Any] | None = None,
    ) -> Case | None:
        """Apply `changes` if the case still matches `expect`; the updated case or None."""
        doc = await self.cases.find_one_and_update(
            {"_id": case_id, **(expect or {})},
            {
                "$set": {**changes, "updated_at": history.at},
                "$push": {"history": history.model_dump(mode="python")},
            },
            return_document=ReturnDocument.AFTER,
        )
        return Case.model_validate(doc) if doc else None

    async def keep_correction(self, correction: Document) -> None:
        """Staff's labels for a case's text; a later correction of the case replaces it."""
        await self.corrections.replace_one({"_id": correction["_id"]}, correction, upsert=True)

    async def all_corrections(self) -> list[Document]:
        return await self.corrections.find({}).to_list(None)

    async def add_note(self, case_id: str, note: Note, history: HistoryEntry) -> Case | None:
        doc = await self.cases.find_one_and_update(
            {"_id": case_id},
            {
                "$push": {
                    "notes": note.model_dump(mode="python"),
                    "history": history.model_dump(mode="python"),
                },
                "$set": {"updated_at": note.at},
            },
            return_document=ReturnDocument.AFTER,
        )
        return Case.model_validate(doc) if doc else None

    async def find(self, query: CaseFilter, offset: int, limit: int) -> tuple[list[Case], int]:
        cursor = self.cases.find(dict(query)).sort("created_at", DESCENDING).skip(offset)
        docs = await cursor.limit(limit + 1).to_list(limit + 1)  # one more: is there more?
        more = len(docs) > limit
        docs = docs[:limit]
        total = page_total(offset, len(docs), more)
        if total is None:
            total = await self.cases.count_documents(dict(query))
        return [Case.model_validate(doc) for doc in docs], total

    async def watch_sla(self, watches: list[SlaWatch]) -> None:
        """Start the acknowledgement clock of urgent cases (once each: a clock running is
        kept)."""
        await self._insert_new(self.sla, [{"_id": w.case_id, "since": w.since} for w in watches])

    async def unwatch_sla(self, case_id: str) -> None:
        await self.sla.delete_one({"_id": case_id})

    async def sla_due(self, before: datetime) -> list[tuple[str, datetime]]:
        """Urgent cases whose clock started before `before` (a short list: acked ones leave it)."""
        docs = await self.sla.find({}).to_list(None)
        return [(str(d["_id"]), d["since"]) for d in docs if d["since"] < before]

    async def mark_escalated(self, case_id: str, at: datetime) -> bool:
        result = await self.cases.update_one(
            {"_id": case_id, "escalated_at": None, "acknowledged_at": None},
            {"$set": {"escalated_at": at}},
        )
        return result.modified_count == 1

    # --- intake ledger ------------------------------------------------------------------------

    async def seen(self, event_id: str) -> IntakeRecord | None:
        doc = await self.intake.find_one({"_id": event_id})
        if doc is None:
            return None
        return IntakeRecord(
            event_id=event_id, case_id=doc.get("case_id"), outcome=doc["outcome"], at=doc["at"]
        )

    async def seen_many(self, event_ids: Iterable[str]) -> dict[str, IntakeRecord]:
        ids = sorted(set(event_ids))
        found = await asyncio.gather(*(self.seen(event_id) for event_id in ids))
        return {record.event_id: record for record in found if record is not None}

    async def record(self, records: list[IntakeRecord]) -> None:
        """Ledger entries of handled events; an entry written before is kept."""
        docs = [
            {"_id": r.event_id, "case_id": r.case_id, "outcome": r.outcome, "at": r.at}
            for r in records
        ]
        await self._insert_new(self.intake, docs)

    # --- outbox -------------------------------------------------------------------------------

    async def stage(self, items: list[StagedEvent]) -> None:
        """Keep events until published; staging twice is harmless. The payload is kept as its
        JSON text: one string is far cheaper for FerretDB to store and decode than the event's
        nested fields, and the outbox is read back only after a failure."""
        docs = [
            {
                "_id": i.event_id,
                "case_id": i.case_id,
                "subject": i.subject,
                "payload": i.wire.decode(),
            }
            for i in items
        ]
        await self._insert_new(self.outbox, docs)

    async def staged(self, case_id: str | None = None, limit: int = 100) -> list[StagedEvent]:
        query = {} if case_id is None else {"case_id": case_id}
        cursor = self.outbox.find(query).sort("_id", ASCENDING).limit(limit)
        return [
            StagedEvent(
                event_id=doc["_id"],
                case_id=doc.get("case_id"),
                subject=doc["subject"],
                payload=_payload(doc["payload"]),
            )
            for doc in await cursor.to_list(limit)
        ]

    async def unstage(self, event_ids: list[str]) -> None:
        if event_ids:
            await self.outbox.delete_many({"_id": {"$in": event_ids}})

    async def _insert_new(self, collection: Any, docs: list[Document]) -> list[Document]:
        """Insert documents whose `_id` may exist already (those are kept as they are);
        returns the documents that were not inserted for that reason."""
        if not docs:
            return []
        try:
            await collection.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            errors = exc.details["writeErrors"]
            if any(error.get("code") != DUPLICATE_KEY for error in errors):
                raise
            return [docs[error["index"]] for error in errors]
        return []

    # --- tipsters, audit, replies -------------------------------------------------------------

    async def forget_tipsters(self, last_message_before: datetime) -> int:
        """Retention: drop the sealed ids of tipsters silent since before the cut-off."""
        result = await self.tipsters.delete_many({"last_message_at": {"$lt": last_message_before}})
        return result.deleted_count

    async def sealed_tipster(self, pseudonym: str) -> str | None:
        doc = await self.tipsters.find_one({"_id": pseudonym})
        return str(doc["sealed"]) if doc else None

    async def audit_reveal(self, entry: Document) -> None:
        await self.audit.insert_one(entry)

    async def audit_entries(self, limit: int) -> list[Document]:
        cursor = self.audit.find({}, {"_id": 0}).sort("at", DESCENDING).limit(limit)
        return await cursor.to_list(limit)

    async def claim_reply(self, key: str, at: datetime) -> bool:
        """True the first time a reply with this key is about to be sent (at most once)."""
        try:
            await self.sent.insert_one({"_id": key, "at": at})
        except DuplicateKeyError:
            return False
        return True


def page_total(offset: int, found: int, more: bool) -> int | None:
    """The number of matches, when a page tells it: a page with nothing after it, not past
    the end, is the last one. None: count them (FerretDB reads every match to count, as it
    does to sort, so the console's queue, one last page, costs one scan instead of two)."""
    if not more and (found > 0 or offset == 0):
        return offset + found
    return None


def _payload(stored: str | Document) -> Document:
    """A staged event's payload: JSON text, or (staged by an earlier version) a document."""
    if isinstance(stored, str):
        payload: Document = json.loads(stored)
        return payload
    return stored


def _join_write(join: Join) -> UpdateOne:
    changes = join.fields()
    if join.reasons is not None:
        changes["reasons"] = [reason.model_dump() for reason in join.reasons]
    message = join.message
    return UpdateOne(
        {"_id": join.case_id, "message_ids": {"$ne": message.event_id}},
        {
            "$push": {
                "messages": message.model_dump(mode="python"),
                "message_ids": message.event_id,
            },
            "$set": changes,
        },
    )
