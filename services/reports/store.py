"""Every MongoDB query of the reports service (operators that FerretDB v1 supports)."""

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.reports.cases import Case, CaseMessage, HistoryEntry, Note
from services.reports.duplicates import Fingerprint
from shared.events.tips import CaseStatus, TipKind, TipPriority
from shared.mongo import ensure_indexes

Document = dict[str, Any]
DUPLICATE_KEY = 11000
RECENT_LIMIT = 50  # duplicate candidates per ward (the most recent ones)


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
    ) -> "CaseFilter":
        query = cls()
        if wards is not None:
            query["ward"] = {"$in": wards}
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

    async def insert(self, case: Case) -> bool:
        """Insert a new case; False when a case with this id already exists."""
        try:
            await self.cases.insert_one(case.to_document())
        except DuplicateKeyError:
            if await self.cases.find_one({"_id": case.id}, {"_id": 1}) is None:
                raise  # another case holds this reference code
            return False
        return True

    async def find_open_for_tipster(self, tipster: str, since: datetime) -> Case | None:
        """The tipster's open case if their last message was at or after `since`.

        Kept on the tipster's document, so this is two `_id` lookups however many cases exist.
        """
        doc = await self.tipsters.find_one({"_id": tipster})
        if not doc or not doc.get("open_case_id") or doc["last_message_at"] < since:
            return None
        case = await self.get(str(doc["open_case_id"]))
        return case if case is not None and case.is_open else None

    async def remember_open_case(self, tipster: str, case_id: str, at: datetime) -> None:
        await self.tipsters.update_one(
            {"_id": tipster}, {"$set": {"open_case_id": case_id, "last_message_at": at}}
        )

    async def remember_recent(self, fingerprint: Fingerprint) -> None:
        """Note a new case in its ward's short list of recent cases (duplicate candidates)."""
        await self.recent.update_one(
            {"_id": fingerprint.ward},
            {"$push": {"items": fingerprint.to_document()}},
            upsert=True,
        )

    async def recent_fingerprints(
        self, wards: list[str] | None, since: datetime
    ) -> list[Fingerprint]:
        """Cases noted since `since` in `wards` (all wards if None), pruning older notes."""
        query: dict[str, Any] = {} if wards is None else {"_id": {"$in": wards}}
        found: list[Fingerprint] = []
        for doc in await self.recent.find(query).to_list(None):
            stored = doc.get("items", [])
            items = [item for item in stored if item["at"] >= since][-RECENT_LIMIT:]
            if len(stored) > 2 * RECENT_LIMIT or (stored and stored[0]["at"] < since):
                await self.recent.update_one({"_id": doc["_id"]}, {"$set": {"items": items}})
            found += [Fingerprint.from_document(item) for item in items]
        return found

    async def add_message(
        self, case_id: str, message: CaseMessage, changes: Mapping[str, Any]
    ) -> bool:
        """Join a message to a case once; False if it was already joined."""
        result = await self.cases.update_one(
            {"_id": case_id, "message_ids": {"$ne": message.event_id}},
            {
                "$push": {
                    "messages": message.model_dump(mode="python"),
                    "message_ids": message.event_id,
                },
                "$set": dict(changes),
            },
        )
        return result.modified_count == 1

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
        total = await self.cases.count_documents(dict(query))
        cursor = self.cases.find(dict(query)).sort("created_at", DESCENDING).skip(offset)
        docs = await cursor.limit(limit).to_list(limit)
        return [Case.model_validate(doc) for doc in docs], total

    async def watch_sla(self, case_id: str, since: datetime) -> None:
        """Start the acknowledgement clock of an urgent case (once)."""
        await self.sla.update_one({"_id": case_id}, {"$setOnInsert": {"since": since}}, upsert=True)

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

    async def seen(self, event_id: str) -> Document | None:
        return await self.intake.find_one({"_id": event_id})

    async def record(self, event_id: str, case_id: str | None, outcome: str, at: datetime) -> None:
        try:
            await self.intake.insert_one(
                {"_id": event_id, "case_id": case_id, "outcome": outcome, "at": at}
            )
        except DuplicateKeyError:
            return

    # --- outbox -------------------------------------------------------------------------------

    async def stage(self, case_id: str | None, items: list[tuple[str, str, Document]]) -> None:
        """Keep (event id, subject, payload) until published; staging twice is harmless."""
        docs = [
            {"_id": event_id, "case_id": case_id, "subject": subject, "payload": payload}
            for event_id, subject, payload in items
        ]
        if not docs:
            return
        try:
            await self.outbox.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(error.get("code") != DUPLICATE_KEY for error in exc.details["writeErrors"]):
                raise

    async def staged(self, case_id: str | None = None, limit: int = 100) -> list[Document]:
        query = {} if case_id is None else {"case_id": case_id}
        return await self.outbox.find(query).sort("_id", ASCENDING).limit(limit).to_list(limit)

    async def unstage(self, event_ids: list[str]) -> None:
        if event_ids:
            await self.outbox.delete_many({"_id": {"$in": event_ids}})

    # --- tipsters, audit, replies -------------------------------------------------------------

    async def keep_tipster(self, pseudonym: str, sealed: str, case_id: str, at: datetime) -> None:
        """Keep the sealed id of a tipster (once) and remember their newest open case."""
        await self.tipsters.update_one(
            {"_id": pseudonym},
            {
                "$setOnInsert": {"sealed": sealed, "first_seen": at},
                "$set": {"open_case_id": case_id, "last_message_at": at},
            },
            upsert=True,
        )

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
