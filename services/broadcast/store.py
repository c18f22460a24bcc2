"""Every MongoDB query of the broadcast service (runs on MongoDB and FerretDB v1)."""

from collections import Counter, defaultdict
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.broadcast.domain import DeliveryState, Notice, NoticeStatus, Targets
from services.broadcast.groups import Group

Doc = dict[str, Any]


class GroupStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.groups = db["broadcast_groups"]
        self.applied = db["broadcast_group_events"]

    async def ensure_indexes(self) -> None:
        await self.groups.create_indexes(
            [IndexModel([("ward", ASCENDING)]), IndexModel([("officer_id", ASCENDING)])]
        )

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


def _group(doc: Doc) -> Group:
    return Group.model_validate({**doc, "group_id": doc["_id"]})


class NoticeStore:
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.notices = db["broadcast_notices"]
        self.keys = db["broadcast_notice_keys"]

    async def ensure_indexes(self) -> None:
        await self.notices.create_indexes(
            [
                IndexModel([("verification_code", ASCENDING)], unique=True),
                IndexModel([("status", ASCENDING), ("release_at", ASCENDING)]),
                IndexModel([("created_at", DESCENDING)]),
                IndexModel([("cap_key", ASCENDING)]),
            ]
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
    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.deliveries = db["broadcast_deliveries"]
        self.echoes = db["broadcast_echoes"]

    async def ensure_indexes(self) -> None:
        await self.deliveries.create_indexes(
            [
                IndexModel([("notice_id", ASCENDING), ("state", ASCENDING)]),
                IndexModel([("claim", ASCENDING)]),
                IndexModel([("state", ASCENDING), ("next_action_at", ASCENDING)]),
                IndexModel([("officer_id", ASCENDING), ("state", ASCENDING)]),
            ]
        )

    async def insert_many(self, docs: list[Doc]) -> None:
        """Create deliveries; ones that exist already (a re-run plan) are left as they are."""
        if not docs:
            return
        try:
            await self.deliveries.insert_many(docs, ordered=False)
        except BulkWriteError as exc:
            if any(e.get("code") != 11000 for e in exc.details.get("writeErrors", [])):
                raise

    async def claim(self, ids: list[str], token: str, now: datetime, lease: datetime) -> list[Doc]:
        """Claim the pending ones among `ids` for `token`; returns every delivery asked for."""
        await self.deliveries.update_many(
            {
                "_id": {"$in": ids},
                "state": DeliveryState.PENDING.value,
                "not_before": {"$lte": now},
            },
            {
                "$set": {
                    "state": DeliveryState.SENDING.value,
                    "claim": token,
                    "lease_until": lease,
                },
                "$inc": {"attempts": 1},
            },
        )
        return [d async for d in self.deliveries.find({"_id": {"$in": ids}})]

    async def take_over(
        self, delivery_id: str, old_claim: str, token: str, lease: datetime
    ) -> bool:
        """Re-claim a delivery whose worker died (compare-and-set on the old claim)."""
        result = await self.deliveries.update_one(
            {"_id": delivery_id, "state": DeliveryState.SENDING.value, "claim": old_claim},
            {"$set": {"claim": token, "lease_until": lease}, "$inc": {"attempts": 1}},
        )
        return result.modified_count == 1

    async def extend(self, token: str, lease: datetime) -> None:
        await self.deliveries.update_many(
            {"claim": token, "state": DeliveryState.SENDING.value}, {"$set": {"lease_until": lease}}
        )

    async def record(self, results: list[tuple[str, str, Doc]]) -> None:
        """Write each (delivery id, claim, fields) only if the claim is still ours."""
        ops = [
            UpdateOne({"_id": d, "claim": claim, "state": DeliveryState.SENDING.value}, {"$set": f})
            for d, claim, f in results
        ]
        if ops:
            await self.deliveries.bulk_write(ops, ordered=False)

    async def set_fields(self, delivery_id: str, claim: str, fields: Doc) -> None:
        await self.deliveries.update_one({"_id": delivery_id, "claim": claim}, {"$set": fields})

    async def get(self, delivery_id: str) -> Doc | None:
        return await self.deliveries.find_one({"_id": delivery_id})

    async def of_notice(self, notice_id: str, states: list[DeliveryState]) -> list[Doc]:
        query = {"notice_id": notice_id, "state": {"$in": [s.value for s in states]}}
        return [d async for d in self.deliveries.find(query)]

    async def cancel_open(self, notice_id: str, now: datetime) -> int:
        """Drop every delivery of a notice that has not gone out yet."""
        result = await self.deliveries.update_many(
            {
                "notice_id": notice_id,
                "state": {
                    "$in": [
                        DeliveryState.PENDING.value,
                        DeliveryState.AWAITING_CONFIRMATION.value,
                    ]
                },
            },
            {"$set": {"state": DeliveryState.CANCELLED.value, "finished_at": now}},
        )
        return result.modified_count

    async def progress(self, notice_id: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """Counts by state, and by ward then state (computed in Python: FerretDB-safe)."""
        by_state: Counter[str] = Counter()
        by_ward: dict[str, Counter[str]] = defaultdict(Counter)
        cursor = self.deliveries.find({"notice_id": notice_id}, {"state": 1, "ward": 1})
        async for doc in cursor:
            by_state[doc["state"]] += 1
            by_ward[doc.get("ward") or "-"][doc["state"]] += 1
        return dict(by_state), {w: dict(c) for w, c in sorted(by_ward.items())}

    async def next_manual_due(self, now: datetime, push_to: datetime) -> Doc | None:
        """Take one unconfirmed manual delivery whose reminder or escalation is due."""
        return await self.deliveries.find_one_and_update(
            {"state": DeliveryState.AWAITING_CONFIRMATION.value, "next_action_at": {"$lte": now}},
            {"$set": {"next_action_at": push_to}},
            return_document=ReturnDocument.BEFORE,
        )

    async def awaiting_for_officer(self, officer_id: str) -> list[Doc]:
        query = {"officer_id": officer_id, "state": DeliveryState.AWAITING_CONFIRMATION.value}
        return [d async for d in self.deliveries.find(query).sort("created_at", ASCENDING)]

    async def confirm(self, delivery_id: str, now: datetime) -> bool:
        result = await self.deliveries.update_one(
            {"_id": delivery_id, "state": DeliveryState.AWAITING_CONFIRMATION.value},
            {"$set": {"state": DeliveryState.SENT.value, "sent_at": now, "confirmed_at": now}},
        )
        return result.modified_count == 1

    async def set_manual(self, delivery_id: str, **fields: Any) -> None:
        await self.deliveries.update_one(
            {"_id": delivery_id, "state": DeliveryState.AWAITING_CONFIRMATION.value},
            {"$set": fields},
        )

    async def record_echo(self, group_id: str, code: str, message_id: str | None) -> None:
        await self.echoes.update_one(
            {"_id": f"{group_id}:{code}"},
            {"$setOnInsert": {"message_id": message_id}},
            upsert=True,
        )

    async def echo_seen(self, group_id: str, code: str) -> Doc | None:
        return await self.echoes.find_one({"_id": f"{group_id}:{code}"})
