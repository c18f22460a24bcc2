"""Every MongoDB query of the broadcast service (runs on MongoDB and FerretDB v1)."""

from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.broadcast.domain import DeliveryState, Notice, NoticeStatus, Targets
from services.broadcast.groups import Group
from shared.mongo import ensure_indexes

Doc = dict[str, Any]


class GroupStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.groups = db["broadcast_groups"]
        self.applied = db["broadcast_group_events"]
        self.members = db["broadcast_group_members"]

    async def ensure_indexes(self) -> None:
        await _ensure(self.groups, [("ward", ASCENDING)], [("officer_id", ASCENDING)])
        await _ensure(self.members, [("group_id", ASCENDING)])

    async def upsert_many(self, groups: list[Group], now: datetime) -> int:
        ops = [
            UpdateOne(
                {"_id": g.group_id},
                {"$set": {**g.model_dump(mode="json", exclude={"group_id"}), "updated_at": now}},
                upsert=True,
            )
            for g in groups
        ]
        if not ops:
            return 0
        result = await self.groups.bulk_write(ops, ordered=False)
        return result.upserted_count + result.modified_count

    async def get(self, group_id: str) -> Group | None:
        doc = await self.groups.find_one({"_id": group_id})
        return _group(doc) if doc else None

    async def find(self, ward: str | None, skip: int, limit: int) -> tuple[list[Group], int]:
        query: Doc = {"ward": ward} if ward else {}
        total = await self.groups.count_documents(query)
        cursor = self.groups.find(query).sort("_id", ASCENDING).skip(skip).limit(limit)
        return [_group(d) async for d in cursor], total

    async def select(self, targets: Targets, test_mode: bool) -> list[Group]:
        """The active groups a notice's targets name (test mode: only test groups)."""
        query: Doc = {"active": True}
        if test_mode:
            query["is_test"] = True
        if not targets.all_groups:
            ors: list[Doc] = []
            if targets.wards:
                ors.append({"ward": {"$in": list(targets.wards)}})
            if targets.groups:
                ors.append({"_id": {"$in": list(targets.groups)}})
            if not ors:
                return []
            query["$or"] = ors
        return [_group(d) async for d in self.groups.find(query)]

    async def mark_event(self, event_id: str) -> bool:
        """False when this group event was applied already (a redelivery)."""
        try:
            await self.applied.insert_one({"_id": event_id})
        except DuplicateKeyError:
            return False
        return True

    async def unmark_event(self, event_id: str) -> None:
        await self.applied.delete_one({"_id": event_id})

    async def apply(self, group_id: str, update: Doc, upsert: bool) -> None:
        await self.groups.update_one({"_id": group_id}, update, upsert=upsert)

    async def change_membership(self, group_id: str, user_id: str, step: int, defaults: Doc) -> int:
        """Record a join (+1) or leave (-1) and recount: members are documents, not a
        counter, because FerretDB v1 loses concurrent `$inc`s."""
        key = {"_id": f"{group_id}:{user_id}"}
        if step > 0:
            await self.members.update_one(key, {"$set": {"group_id": group_id}}, upsert=True)
        else:
            await self.members.delete_one(key)
        count = await self.members.count_documents({"group_id": group_id})
        defaults = {k: v for k, v in defaults.items() if k != "member_count"}
        await self.groups.update_one(
            {"_id": group_id},
            {"$set": {"member_count": count}, "$setOnInsert": defaults},
            upsert=True,
        )
        return count


def _group(doc: Doc) -> Group:
    return Group.model_validate({**doc, "group_id": doc["_id"]})


class NoticeStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.notices = db["broadcast_notices"]
        self.keys = db["broadcast_notice_keys"]

    async def ensure_indexes(self) -> None:
        await self.notices.create_index([("verification_code", ASCENDING)], unique=True)
        await _ensure(
            self.notices,
            [("status", ASCENDING), ("release_at", ASCENDING)],
            [("created_at", DESCENDING)],
            [("cap_key", ASCENDING)],
        )

    async def claim_key(self, key: str, notice_id: str) -> str:
        """The notice id that owns an idempotency key: ours if the key was new."""
        try:
            await self.keys.insert_one({"_id": key, "notice_id": notice_id})
        except DuplicateKeyError:
            doc = await self.keys.find_one({"_id": key})
            return str(doc["notice_id"]) if doc else notice_id
        return notice_id

    async def insert(
        self, notice: Notice, cap_xml: str | None = None, cap_key: str | None = None
    ) -> bool:
        """False if a notice with this id exists; DuplicateKeyError on a taken code.
        An imported CAP alert is kept as its XML text (FerretDB stores no nested arrays)."""
        doc = _notice_doc(notice)
        if cap_xml is not None:
            doc["cap_xml"], doc["cap_key"] = cap_xml, cap_key
        try:
            await self.notices.insert_one(doc)
        except DuplicateKeyError:
            if await self.notices.find_one({"_id": notice.id}, {"_id": 1}):
                return False
            raise
        return True

    async def get_by_cap_key(self, key: str) -> Notice | None:
        doc = await self.notices.find_one({"cap_key": key})
        return _notice(doc) if doc else None

    async def cap_xml(self, notice_id: str) -> str | None:
        doc = await self.notices.find_one({"_id": notice_id}, {"cap_xml": 1})
        return str(doc["cap_xml"]) if doc and doc.get("cap_xml") else None

    async def get(self, notice_id: str) -> Notice | None:
        doc = await self.notices.find_one({"_id": notice_id})
        return _notice(doc) if doc else None

    async def get_by_code(self, code: str) -> Notice | None:
        doc = await self.notices.find_one({"verification_code": code})
        return _notice(doc) if doc else None

    async def transition(
        self, notice_id: str, from_states: list[NoticeStatus], to: NoticeStatus, **fields: Any
    ) -> Notice | None:
        """Compare-and-set of a notice's status; None if it was not in `from_states`."""
        doc = await self.notices.find_one_and_update(
            {"_id": notice_id, "status": {"$in": [s.value for s in from_states]}},
            {"$set": {"status": to.value, **fields}},
            return_document=ReturnDocument.AFTER,
        )
        return _notice(doc) if doc else None

    async def due(self, now: datetime) -> list[str]:
        cursor = self.notices.find(
            {"status": NoticeStatus.SCHEDULED.value, "release_at": {"$lte": now}}, {"_id": 1}
        )
        return [str(d["_id"]) async for d in cursor]

    async def stale_ready(self, before: datetime) -> list[str]:
        cursor = self.notices.find(
            {"status": NoticeStatus.READY.value, "release_at": {"$lte": before}}, {"_id": 1}
        )
        return [str(d["_id"]) async for d in cursor]

    async def find(self, filters: Doc, skip: int, limit: int) -> tuple[list[Notice], int]:
        total = await self.notices.count_documents(filters)
        cursor = self.notices.find(filters).sort("created_at", DESCENDING).skip(skip).limit(limit)
        return [_notice(d) async for d in cursor], total


def _notice_doc(notice: Notice) -> Doc:
    doc = notice.model_dump(mode="python", exclude={"id"})
    doc["_id"] = notice.id
    return doc


def _notice(doc: Doc) -> Notice:
    return Notice.model_validate({**doc, "id": doc["_id"]})


class DeliveryStore:
    """Deliveries, their send claims and Zalo's echoes.

    FerretDB v1 does not make a conditional update atomic (two concurrent `update_one` with the
    same filter can both match), so every "only one may do this" decision is an insert of a
    document with a deterministic `_id`: the unique index lets exactly one insert win, on
    MongoDB and on FerretDB alike. Updates are only ever made by the holder of such a claim.
    """

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.deliveries = db["broadcast_deliveries"]
        self.claims = db["broadcast_claims"]
        self.receipts = db["broadcast_receipts"]
        self.workers = db["broadcast_workers"]
        self.echoes = db["broadcast_echoes"]

    async def ensure_indexes(self) -> None:
        await _ensure(
            self.deliveries,
            [("notice_id", ASCENDING), ("state", ASCENDING)],
            [("state", ASCENDING), ("next_action_at", ASCENDING)],
            [("officer_id", ASCENDING), ("state", ASCENDING)],
        )
        await _ensure(self.claims, [("notice_id", ASCENDING)])

    async def insert_many(self, docs: list[Doc]) -> None:
        """Create deliveries; ones that exist already (a re-run plan) are left as they are."""
        await _insert_new(self.deliveries, docs)

    async def get_many(self, ids: list[str]) -> dict[str, Doc]:
        return {d["_id"]: d async for d in self.deliveries.find({"_id": {"$in": ids}})}

    async def insert_claims(self, claims: list[Doc]) -> set[str]:
        """Insert send claims; returns the ids that someone else holds already."""
        return await _insert_new(self.claims, claims)

    async def get_claim(self, claim_id: str) -> Doc | None:
        return await self.claims.find_one({"_id": claim_id})

    async def beat(self, worker: str, alive_until: datetime) -> None:
        """A worker's liveness: one document per worker, written only by that worker (one
        update per heartbeat instead of one per claim: FerretDB updates are slow)."""
        await self.workers.update_one(
            {"_id": worker}, {"$set": {"alive_until": alive_until}}, upsert=True
        )

    async def alive_until(self, worker: str) -> datetime | None:
        doc = await self.workers.find_one({"_id": worker})
        return doc["alive_until"] if doc else None

    async def in_flight(self, notice_id: str, now: datetime) -> int:
        """Pending deliveries of a notice whose current attempt is held by a live worker."""
        pending = await self.of_notice(notice_id, [DeliveryState.PENDING])
        live = 0
        for doc in pending:
            claim = await self.get_claim(f"{doc['_id']}#{int(doc.get('claims', 0)) + 1}")
            if claim is None or claim.get("worker") == "cancel":
                continue
            until = await self.alive_until(str(claim.get("worker")))
            live += until is not None and _utc(until) > now
        return live

    async def record(self, results: list[tuple[str, Doc]]) -> None:
        """Write what the claim holders learned, one `update_many` per distinct change (a
        batch of sends is mostly one change: FerretDB pays per statement). A retry never
        revives a cancelled delivery."""
        groups: dict[str, tuple[Doc, list[str]]] = {}
        for delivery, fields in results:
            key = repr(sorted(fields.items()))
            groups.setdefault(key, (fields, []))[1].append(delivery)
        for fields, ids in groups.values():
            query: Doc = {"_id": {"$in": ids}}
            if fields.get("state") == DeliveryState.PENDING.value:
                query["state"] = {"$ne": DeliveryState.CANCELLED.value}
            await self.deliveries.update_many(query, {"$set": fields})

    async def record_receipts(self, batch: str, receipts: list[Doc]) -> None:
        """Zalo's message ids of one batch of sends, kept in one document."""
        if receipts:
            await _insert_new(self.receipts, [{"_id": batch, "receipts": receipts}])

    async def set_fields(self, delivery_id: str, fields: Doc) -> None:
        await self.deliveries.update_one({"_id": delivery_id}, {"$set": fields})

    async def get(self, delivery_id: str) -> Doc | None:
        return await self.deliveries.find_one({"_id": delivery_id})

    async def of_notice(self, notice_id: str, states: list[DeliveryState]) -> list[Doc]:
        query = {"notice_id": notice_id, "state": {"$in": [s.value for s in states]}}
        return [d async for d in self.deliveries.find(query)]

    async def cancel_open(self, notice_id: str, now: datetime) -> int:
        """Drop every delivery of a notice that has not gone out yet.

        A pending delivery is cancelled by claiming its next attempt (the same insert a sender
        makes), so a sender either loses that race and never sends, or wins it and its send
        counts as in flight (the withdrawal waits for it)."""
        awaiting = {"notice_id": notice_id, "state": DeliveryState.AWAITING_CONFIRMATION.value}
        cancelled = {"$set": {"state": DeliveryState.CANCELLED.value, "finished_at": now}}
        result = await self.deliveries.update_many(awaiting, cancelled)
        query = {"notice_id": notice_id, "state": DeliveryState.PENDING.value}
        pending = [d async for d in self.deliveries.find(query, {"claims": 1})]
        claims = [
            {
                "_id": f"{d['_id']}#{int(d.get('claims', 0)) + 1}",
                "delivery_id": d["_id"],
                "notice_id": notice_id,
                "worker": "cancel",
                "k": int(d.get("claims", 0)) + 1,
                "created_at": now,
            }
            for d in pending
        ]
        taken = await _insert_new(self.claims, claims)
        won = [c for c in claims if c["_id"] not in taken]
        await self.record(
            [(str(c["delivery_id"]), {**cancelled["$set"], "claims": c["k"]}) for c in won]
        )
        return result.modified_count + len(won)

    async def progress(self, notice_id: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """Counts by state, and by ward then state (computed in Python: FerretDB-safe)."""
        by_state: Counter[str] = Counter()
        by_ward: dict[str, Counter[str]] = defaultdict(Counter)
        cursor = self.deliveries.find({"notice_id": notice_id}, {"state": 1, "ward": 1})
        async for doc in cursor:
            by_state[doc["state"]] += 1
            by_ward[doc.get("ward") or "-"][doc["state"]] += 1
        return dict(by_state), {w: dict(c) for w, c in sorted(by_ward.items())}

    async def manual_due(self, now: datetime, limit: int = 100) -> list[Doc]:
        """Unconfirmed manual deliveries whose reminder or escalation is due."""
        query = {
            "state": DeliveryState.AWAITING_CONFIRMATION.value,
            "next_action_at": {"$lte": now},
        }
        return [d async for d in self.deliveries.find(query).limit(limit)]

    async def take_step(self, delivery_id: str, step: str, now: datetime) -> bool:
        """True for the one replica that may do `step` (remind, escalate) for a delivery."""
        taken = await _insert_new(self.claims, [{"_id": f"{delivery_id}#{step}", "at": now}])
        return not taken

    async def awaiting_for_officer(self, officer_id: str) -> list[Doc]:
        query = {"officer_id": officer_id, "state": DeliveryState.AWAITING_CONFIRMATION.value}
        return [d async for d in self.deliveries.find(query).sort("created_at", ASCENDING)]

    async def confirm(self, delivery_id: str, now: datetime) -> bool:
        result = await self.deliveries.update_one(
            {"_id": delivery_id, "state": DeliveryState.AWAITING_CONFIRMATION.value},
            {"$set": {"state": DeliveryState.SENT.value, "sent_at": now, "confirmed_at": now}},
        )
        return result.modified_count == 1

    async def record_echo(self, group_id: str, code: str, message_id: str | None) -> None:
        await _insert_new(self.echoes, [{"_id": f"{group_id}:{code}", "message_id": message_id}])

    async def echo_seen(self, group_id: str, code: str) -> Doc | None:
        return await self.echoes.find_one({"_id": f"{group_id}:{code}"})


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


async def _ensure(collection: Any, *keys: list[tuple[str, int]]) -> None:
    await ensure_indexes(collection, [IndexModel(key) for key in keys])


async def _insert_new(collection: Any, docs: list[Doc]) -> set[str]:
    """Insert documents; returns the ids that existed already (duplicate keys)."""
    if not docs:
        return set()
    try:
        await collection.insert_many(docs, ordered=False)
    except BulkWriteError as exc:
        errors = exc.details.get("writeErrors", [])
        if any(e.get("code") != 11000 for e in errors):
            raise
        return {str(docs[e["index"]]["_id"]) for e in errors}
    return set()
