"""Every MongoDB query of the broadcast service (runs on MongoDB and FerretDB v1)."""

import contextlib
import json
import uuid
from collections import Counter, defaultdict
from dataclasses import asdict, replace
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument, UpdateOne
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import BulkWriteError, DuplicateKeyError

from services.broadcast.domain import DeliveryState, Notice, NoticeQuery, NoticeStatus
from services.broadcast.groups import (
    Group,
    LifecycleChange,
    MembershipChange,
    RosterEntry,
    roster_entry,
)
from services.broadcast.records import (
    Attempt,
    AuditEntry,
    Awaiting,
    Claim,
    Delivery,
    DeliveryView,
    Doc,
    Echo,
    Outcome,
    Result,
    attempt_id,
    new_group_fields,
)
from shared.mongo import ensure_indexes
from shared.text import STORED

ROSTER_PAGE = 2000  # groups per roster page (one JSON string of ~0.3 MB)
_VERSION = {"_id": "version"}


class GroupStore:
    """The group registry, and the roster snapshot the planner reads instead of it.

    FerretDB v1 spends ~0.1 ms of CPU on every document a query returns, so reading 10,000
    groups for each notice would cost more than sending to them. The roster is a snapshot of
    what planning needs of every active group, kept per **registry version**: every write that
    can change a plan sets a new random version *after* it has written the registry, and a
    roster is built by reading the version *before* reading the registry. So the roster of the
    current version holds every change whose write had completed when a planner read that
    version (a change still being written may be missed, as if it came after the notice).
    A missing roster is built on demand (a full read); imports build it at once and the
    scheduler after group events, so notices usually find it ready. Pages are stored as JSON
    strings because FerretDB also decodes every value of a document it reads."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.groups = db["broadcast_groups"]
        self.applied = db["broadcast_group_events"]
        self.members = db["broadcast_group_members"]
        self.registry = db["broadcast_registry"]  # one document: the registry's version
        self.rosters = db["broadcast_rosters"]

    async def ensure_indexes(self) -> None:
        await _ensure(self.groups, [("ward", ASCENDING)], [("officer_id", ASCENDING)])
        await _ensure(self.members, [("group_id", ASCENDING)])

    async def upsert_many(self, groups: list[Group], now: datetime) -> int:
        """Insert new groups, update known ones (FerretDB v1 scans the collection for every
        update, so a first import of thousands of groups must be inserts)."""
        docs = {
            g.group_id: {
                **g.model_dump(mode="json", exclude={"group_id"}),
                "member_base": g.member_count,  # membership events count from here
                "updated_at": now,
                "changed_at": datetime.now(UTC),
            }
            for g in groups
        }
        if not docs:
            return 0
        query = {"_id": {"$in": list(docs)}}
        known = {d["_id"] async for d in self.groups.find(query, {"_id": 1})}
        fresh = [{"_id": i, **doc} for i, doc in docs.items() if i not in known]
        known |= await _insert_new(self.groups, fresh)  # inserted meanwhile: update those too
        ops = [UpdateOne({"_id": i}, {"$set": docs[i]}, upsert=True) for i in known]
        modified = 0
        if ops:
            result = await self.groups.bulk_write(ops, ordered=False)
            modified = result.upserted_count + result.modified_count
        await self._changed()
        await self.roster()  # staff import before they send: the next notice finds it ready
        return len(fresh) - len(known & {d["_id"] for d in fresh}) + modified

    async def wards_of(self, group_ids: list[str]) -> dict[str, str | None]:
        """The ward each known group is in now (registry writes compare against it)."""
        cursor = self.groups.find({"_id": {"$in": group_ids}}, {"ward": 1})
        return {str(d["_id"]): d.get("ward") async for d in cursor}

    async def get(self, group_id: str) -> Group | None:
        doc = await self.groups.find_one({"_id": group_id})
        return _group(doc) if doc else None

    async def find(self, ward: str | None, skip: int, limit: int) -> tuple[list[Group], int]:
        query: Doc = {"ward": ward} if ward else {}
        total = await self.groups.count_documents(query)
        cursor = self.groups.find(query).sort("_id", ASCENDING).skip(skip).limit(limit)
        return [_group(d) async for d in cursor], total

    async def roster(self) -> list[RosterEntry]:
        """Every active group's planning fields, sorted by id, as of the current version."""
        version = await self._version()
        found = await self._read_roster(version)
        return found if found is not None else await self._build_roster(version)

    async def refresh_roster(self) -> None:
        """Build the current version's roster if nobody has yet (the scheduler's round)."""
        version = await self._version()
        if await self.rosters.find_one({"_id": version}) is None:
            await self._build_roster(version)

    async def _changed(self) -> None:
        """A plan may differ from now on: rosters of older versions are no longer used."""
        fields = {"version": uuid.uuid4().hex, "changed_at": datetime.now(UTC)}
        try:
            await self.registry.update_one(_VERSION, {"$set": fields}, upsert=True)
        except DuplicateKeyError:  # two first upserts raced (FerretDB): the other one inserted
            await self.registry.update_one(_VERSION, {"$set": fields})

    async def every_group(self) -> list[tuple[Group, datetime]]:
        """Every group (inactive ones too) with the time of its last change (any field)."""
        epoch = datetime.fromtimestamp(0, UTC)
        return [
            (_group(d), d.get("changed_at") or d.get("updated_at") or epoch)
            async for d in self.groups.find({}, batch_size=1000)
        ]

    async def _version(self) -> str:
        doc = await self.registry.find_one(_VERSION)
        if doc is None:  # a registry written before versions existed
            await _insert_new(self.registry, [{**_VERSION, "version": uuid.uuid4().hex}])
            doc = await self.registry.find_one(_VERSION)
        return str(doc["version"]) if doc else ""

    async def _read_roster(self, version: str) -> list[RosterEntry] | None:
        """The roster of `version`: its head names the builder whose pages to read (two
        builders of one version may page differently, so pages are never mixed)."""
        head = await self.rosters.find_one({"_id": version})
        if head is None:
            return None
        entries: list[RosterEntry] = []
        for page in range(int(head["pages"])):
            found = await self.rosters.find_one({"_id": f"{version}:{head['builder']}:{page}"})
            if found is None:  # removed as outdated while we read: read the registry instead
                return None
            entries += [RosterEntry(*row) for row in json.loads(found["groups"])]
        return entries

    async def _build_roster(self, version: str) -> list[RosterEntry]:
        query = {"active": True}
        entries = sorted(
            [roster_entry(_group(doc)) async for doc in self.groups.find(query, batch_size=1000)]
        )
        builder = uuid.uuid4().hex[:8]
        pages = [entries[i : i + ROSTER_PAGE] for i in range(0, len(entries), ROSTER_PAGE)]
        docs = [
            {"_id": f"{version}:{builder}:{n}", "version": version, "groups": json.dumps(page)}
            for n, page in enumerate(pages)
        ]
        await _insert_new(self.rosters, docs)
        # The head last: a reader that finds it finds every page.
        head = {"_id": version, "version": version, "builder": builder, "pages": len(pages)}
        if not await _insert_new(self.rosters, [head]) and await self._version() == version:
            # Rosters of older versions are never read again (a reader that was still on one
            # finds a page gone and reads the registry instead).
            await self.rosters.delete_many({"version": {"$ne": version}})
        return entries

    async def mark_event(self, event_id: str) -> bool:
        """False when this group event was applied already (a redelivery)."""
        try:
            await self.applied.insert_one({"_id": event_id})
        except DuplicateKeyError:
            return False
        return True

    async def event_applied(self, event_id: str) -> bool:
        return await self.applied.find_one({"_id": event_id}) is not None

    async def unmark_event(self, event_id: str) -> None:
        await self.applied.delete_one({"_id": event_id})

    async def apply(self, change: LifecycleChange) -> None:
        """Apply a lifecycle event (created, renamed, disbanded) that happened at `change.at`,
        unless the group already holds a later one: redelivery can hand a `create_group` over
        after the `disperse_group` that followed it, and that must not bring the group back.
        A created or renamed group not in the registry yet is added with its event's fields."""
        at = change.at
        newer_than_stored = {
            "$or": [{"lifecycle_at": {"$lt": at}}, {"lifecycle_at": {"$exists": False}}]
        }
        fields: Doc = {"active": change.active}
        if change.name:
            fields["name"] = change.name
        changed = {"lifecycle_at": at, "changed_at": datetime.now(UTC)}
        update: Doc = {"$set": {**fields, **changed}}
        if change.active:
            new = new_group_fields(change.group_id)
            update["$setOnInsert"] = {k: v for k, v in new.items() if k not in fields}
        # DuplicateKeyError: the group exists with a later event (the upsert found no match).
        with contextlib.suppress(DuplicateKeyError):
            await self.groups.update_one(
                {"_id": change.group_id, **newer_than_stored}, update, upsert=change.active
            )
        await self._changed()

    async def change_membership(self, change: MembershipChange, redone: bool = False) -> int:
        """Record a join (+1) or leave (-1) that happened at `change.at`, and recount. A group
        first seen here (`new_group_fields`) can be planned from now on: the registry's version
        moves on (also when `redone`: a first attempt may have created the group and died
        before that).

        Members are documents, not a counter, because FerretDB v1 loses concurrent `$inc`s.
        Each keeps its latest event: redelivery can hand a join over after a later leave, and
        that older join must not bring the member back. A leave is kept (`present` false)
        rather than deleted, so that it can outrank a join that comes late."""
        group_id, user_id, step, at = change
        newer_than_stored = {"$or": [{"at": {"$lt": at}}, {"at": {"$exists": False}}]}
        state = {"group_id": group_id, "present": step > 0, "at": at}
        base = await self._member_base(group_id)
        # DuplicateKeyError: the member's stored event is as new or newer, this one changes nothing.
        with contextlib.suppress(DuplicateKeyError):
            await self.members.update_one(
                {"_id": f"{group_id}:{user_id}", **newer_than_stored},
                # The first event seen of a member tells whether the imported member count
                # (if any) included it: a leave means it did, a join that it did not.
                {"$set": state, "$setOnInsert": {"counted": step < 0 and base > 0}},
                upsert=True,
            )
        count = await self._member_count(group_id, base)
        defaults = {k: v for k, v in new_group_fields(group_id).items() if k != "member_count"}
        result = await self.groups.update_one(
            {"_id": group_id},
            {
                "$set": {"member_count": count, "changed_at": datetime.now(UTC)},
                "$setOnInsert": defaults,
            },
            upsert=True,
        )
        if result.upserted_id is not None or redone:
            await self._changed()
        return count

    async def _member_base(self, group_id: str) -> int:
        """The member count the last import gave the group (0 for a group known by events)."""
        group = await self.groups.find_one({"_id": group_id}, {"member_base": 1})
        return int((group or {}).get("member_base") or 0)

    async def _member_count(self, group_id: str, base: int) -> int:
        """The imported count, plus every member now present, minus those the import had
        already counted (present or since gone)."""
        present = await self.members.count_documents(
            {"group_id": group_id, "present": {"$ne": False}}
        )
        counted = await self.members.count_documents({"group_id": group_id, "counted": True})
        return max(0, base + present - counted)


def _group(doc: Doc) -> Group:
    return Group.model_validate({**doc, "group_id": doc["_id"]}, context=STORED)


class AuditStore:
    """Who did what to notices and the registry, for review: approvals, cancels, holds at
    send time, and registry writes with the ward moves they made. Never the notice text."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.entries = db["broadcast_audit"]

    async def ensure_indexes(self) -> None:
        await _ensure(self.entries, [("at", DESCENDING)], [("notice_id", ASCENDING)])

    async def record(self, action: str, actor: str, **fields: Any) -> None:
        doc = {"_id": uuid.uuid4().hex, "action": action, "actor": actor, "at": datetime.now(UTC)}
        await self.entries.insert_one({**doc, **fields})

    async def find(
        self, *, action: str | None = None, notice_id: str | None = None
    ) -> list[AuditEntry]:
        """The entries of `action` and/or about `notice_id`, oldest first."""
        filters = {"action": action, "notice_id": notice_id}
        query = {k: v for k, v in filters.items() if v is not None}
        cursor = self.entries.find(query).sort("at", ASCENDING)
        return [AuditEntry.from_doc(d) async for d in cursor]


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

    async def find(self, query: NoticeQuery, skip: int, limit: int) -> tuple[list[Notice], int]:
        filters = {
            key: value.value if isinstance(value, StrEnum) else value
            for key, value in asdict(query).items()
            if value is not None
        }
        total = await self.notices.count_documents(filters)
        cursor = self.notices.find(filters).sort("created_at", DESCENDING).skip(skip).limit(limit)
        return [_notice(d) async for d in cursor], total


def _notice_doc(notice: Notice) -> Doc:
    doc = notice.model_dump(mode="python", exclude={"id"})
    doc["_id"] = notice.id
    return doc


def _notice(doc: Doc) -> Notice:
    return Notice.model_validate({**doc, "id": doc["_id"]}, context=STORED)


class DeliveryStore:
    """Deliveries, their attempts and Zalo's echoes: insert-only on the send path.

    FerretDB v1 does not make a conditional update atomic (two concurrent `update_one` with the
    same filter can both match), so every "only one may do this" decision is an insert of a
    document with a deterministic `_id`: the unique index lets exactly one insert win, on
    MongoDB and on FerretDB alike. FerretDB v1 also scans the whole collection for every update
    and every query other than `_id` equality (~40 µs per stored document; an `_id` lookup is
    ~0.8 ms at any size, an insert ~0.05 ms), so the send path only inserts and reads by `_id`:

    - a delivery `D` is written once by the planner, in a page of up to 500 deliveries of its
      notice (`broadcast_plans`, `_id` = `<notice>#<n>`, the deliveries as one JSON string:
      FerretDB's cost is per document and per value, not per byte);
    - attempt k is the claim `D#k` (`broadcast_claims`, exactly one holder) and, once the
      holder knows what happened, the result `D#k` (`broadcast_results`, written only by the
      holder, repeating D's static fields for a manual group);
    - D's state is its latest result; a claimed attempt without a result is in flight while
      its holder is alive and in doubt once it is not.
    """

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.plans = db["broadcast_plans"]
        self.articles = db["broadcast_articles"]  # followers: the OA article a delivery posts
        self.claims = db["broadcast_claims"]
        self.results = db["broadcast_results"]
        self.workers = db["broadcast_workers"]
        self.echoes = db["broadcast_echoes"]
        self.awaiting = db["broadcast_awaiting"]

    async def ensure_indexes(self) -> None:
        await _ensure(self.plans, [("notice_id", ASCENDING)])
        await _ensure(self.claims, [("notice_id", ASCENDING)])
        await _ensure(self.results, [("notice_id", ASCENDING)])
        await _ensure(self.awaiting, [("next_action_at", ASCENDING)], [("officer_id", ASCENDING)])

    async def plan_page(
        self, notice_id: str, page: int, deliveries: list[Delivery]
    ) -> list[Delivery] | None:
        """Store page `page` of a notice's deliveries. None when stored; when another planner
        stored that page first, its deliveries instead."""
        body = json.dumps([d.to_doc() for d in deliveries], ensure_ascii=False)
        doc = {"_id": f"{notice_id}#{page}", "notice_id": notice_id, "deliveries": body}
        if not await _insert_new(self.plans, [doc]):
            return None
        found = await self.plans.find_one({"_id": doc["_id"]})
        return _page(found) if found else []

    async def planned(self, notice_id: str) -> list[list[Delivery]]:
        """The stored pages of a notice's deliveries, in order (probed by `_id`)."""
        pages: list[list[Delivery]] = []
        while True:
            found = await self.plans.find_one({"_id": f"{notice_id}#{len(pages)}"})
            if found is None:
                return pages
            pages.append(_page(found))

    async def article(self, delivery_id: str) -> str | None:
        found = await self.articles.find_one({"_id": delivery_id})
        return str(found["article_id"]) if found else None

    async def keep_article(self, delivery_id: str, article_id: str) -> str:
        """Record the article a followers' delivery broadcasts; the one recorded first wins."""
        if await _insert_new(self.articles, [{"_id": delivery_id, "article_id": article_id}]):
            return await self.article(delivery_id) or article_id
        return article_id

    async def insert_claims(self, claims: list[Claim]) -> set[str]:
        """Insert claims; returns the ids that someone else holds already."""
        return await _insert_new(self.claims, [c.to_doc() for c in claims])

    async def insert_results(self, results: list[Result]) -> None:
        """Record the results of attempts (a result written twice by its holder stays one).

        A manual delivery awaiting its officer also gets an entry in the small
        `broadcast_awaiting` collection first, so the scheduler's and the officers' queries do
        not scan every result (FerretDB scans a collection per query)."""
        awaiting = [
            {
                "_id": r.id,
                "delivery_id": r.delivery.id,
                "k": r.k,
                "officer_id": r.delivery.officer_id,
                "next_action_at": r.outcome.next_action_at,
                "recorded_at": r.recorded_at,
            }
            for r in results
            if r.state == DeliveryState.AWAITING_CONFIRMATION
        ]
        await _insert_new(self.awaiting, awaiting)
        await _insert_new(self.results, [r.to_doc() for r in results])

    async def attempt(self, delivery: Delivery) -> Attempt:
        """Probe the claims `D#1, D#2, …` by `_id` (the only lookup FerretDB does not scan for)."""
        k, claim = 0, None
        while True:
            found = await self.claims.find_one({"_id": attempt_id(delivery.id, k + 1)})
            if found is None:
                break
            k, claim = k + 1, Claim.from_doc(found)
        result = await self._result(delivery, k) if k else None
        latest, j = result, k - 1
        while latest is None and j > 0:
            latest, j = await self._result(delivery, j), j - 1
        return Attempt(k, claim, result, latest)

    async def _result(self, delivery: Delivery, k: int) -> Result | None:
        found = await self.results.find_one({"_id": attempt_id(delivery.id, k)})
        return Result.from_doc(found, delivery) if found else None

    async def beat(self, worker: str, alive_until: datetime) -> None:
        """A worker's liveness: one document per worker, written only by that worker (one
        update per heartbeat instead of one per claim)."""
        await self.workers.update_one(
            {"_id": worker}, {"$set": {"alive_until": alive_until}}, upsert=True
        )

    async def alive_until(self, worker: str) -> datetime | None:
        doc = await self.workers.find_one({"_id": worker})
        return doc["alive_until"] if doc else None

    async def views(self, notice_id: str, open_claims: bool = False) -> list[DeliveryView]:
        """Every delivery of a notice as its latest result shows it (scans; not the send
        path). With `open_claims`, a delivery whose next attempt is claimed without a result
        carries that claim."""
        latest: dict[str, Doc] = {}
        async for found in self.results.find({"notice_id": notice_id}):
            known = latest.get(found["delivery_id"])
            if known is None or int(known["k"]) < int(found["k"]):
                latest[found["delivery_id"]] = found
        claims: dict[str, Claim] = {}
        if open_claims:
            async for stored in self.claims.find({"notice_id": notice_id}):
                claims[str(stored["_id"])] = Claim.from_doc(stored)
        views = []
        for page in await self.planned(notice_id):
            for delivery in page:
                last = latest.get(delivery.id)
                result = Result.from_doc(last, delivery) if last else None
                view = DeliveryView(delivery, result)
                claim = claims.get(attempt_id(delivery.id, view.claims + 1))
                views.append(replace(view, open_claim=claim) if claim else view)
        return views

    async def of_notice(self, notice_id: str, states: list[DeliveryState]) -> list[DeliveryView]:
        return [v for v in await self.views(notice_id) if v.state in states]

    async def in_flight(self, notice_id: str, now: datetime) -> int:
        """Deliveries of a notice whose current attempt is held by a live sender."""
        live = 0
        for view in await self.views(notice_id, open_claims=True):
            claim = view.open_claim
            if claim is None or claim.is_bookkeeping:
                continue
            until = await self.alive_until(claim.worker)
            live += until is not None and until > now
        return live

    async def cancel_open(self, notice_id: str, now: datetime) -> int:
        """Drop every delivery of a notice that has not gone out yet.

        A delivery is cancelled by claiming its next attempt (the same insert a sender
        makes), so a sender either loses that race and never sends, or won it first and its
        send counts as in flight (the withdrawal waits for it)."""
        open_states = {DeliveryState.PENDING, DeliveryState.AWAITING_CONFIRMATION}
        views = [v for v in await self.views(notice_id) if v.state in open_states]
        claims = [Claim.of(v.delivery, v.claims + 1, "cancel", now) for v in views]
        taken = await self.insert_claims(claims)
        cancelled = Outcome(DeliveryState.CANCELLED, finished_at=now)
        await self.insert_results(
            [
                Result.of(v.delivery, c.k, cancelled, now, v.failures)
                for v, c in zip(views, claims, strict=True)
                if c.id not in taken
            ]
        )
        return len(views) - len(taken)

    async def progress(self, notice_id: str) -> tuple[dict[str, int], dict[str, dict[str, int]]]:
        """Counts by state, and by ward then state (computed in Python: FerretDB-safe)."""
        by_state: Counter[str] = Counter()
        by_ward: dict[str, Counter[str]] = defaultdict(Counter)
        for view in await self.views(notice_id):
            by_state[view.state.value] += 1
            by_ward[view.delivery.ward or "-"][view.state.value] += 1
        return dict(by_state), {w: dict(c) for w, c in sorted(by_ward.items())}

    async def _open(self, entries: list[Doc]) -> list[DeliveryView]:
        """Views of the awaiting entries whose result is still their delivery's latest; entries
        overtaken by a later attempt (confirmed, cancelled, re-sent) are removed."""
        views = []
        for entry in entries:
            delivery, k = str(entry["delivery_id"]), int(entry["k"])
            if await self.claims.find_one({"_id": attempt_id(delivery, k + 1)}) is not None:
                await self.awaiting.delete_one({"_id": entry["_id"]})
                continue
            found = await self.results.find_one({"_id": entry["_id"]})
            if found is None:
                continue  # the result is being written (or its writer died: re-sent later)
            result = Result.from_doc(found)  # a manual delivery's results carry its fields
            if result.state == DeliveryState.AWAITING_CONFIRMATION:
                awaiting = Awaiting(
                    result.id,
                    entry.get("next_action_at"),
                    int(entry.get("reminders") or 0),
                    entry.get("escalated_at"),
                )
                views.append(DeliveryView(result.delivery, result, awaiting=awaiting))
        return views

    async def manual_due(self, now: datetime, limit: int = 100) -> list[DeliveryView]:
        """Unconfirmed manual deliveries whose reminder or escalation is due."""
        query = {"next_action_at": {"$lte": now}}
        return await self._open([d async for d in self.awaiting.find(query).limit(limit)])

    async def take_step(self, delivery_id: str, step: str, now: datetime) -> bool:
        """True for the one replica that may do `step` (remind, escalate) for a delivery."""
        taken = await _insert_new(self.claims, [{"_id": f"{delivery_id}#{step}", "at": now}])
        return not taken

    async def set_awaiting(self, awaiting: Awaiting) -> None:
        """Bookkeeping of an unconfirmed manual delivery (reminders, escalation), by the
        holder of that step's claim."""
        fields = {k: v for k, v in asdict(awaiting).items() if v is not None}
        del fields["result_id"]
        await self.awaiting.update_one({"_id": awaiting.result_id}, {"$set": fields})

    async def awaiting_for_officer(self, officer_id: str) -> list[DeliveryView]:
        query = {"officer_id": officer_id}
        found = [d async for d in self.awaiting.find(query).sort("recorded_at", ASCENDING)]
        return await self._open(found)

    async def awaiting_all(self, limit: int = 500) -> list[DeliveryView]:
        """Every manual delivery still waiting for its officer (a small collection)."""
        cursor = self.awaiting.find({}).sort("recorded_at", ASCENDING).limit(limit)
        return await self._open([d async for d in cursor])

    async def confirm(self, view: DeliveryView, now: datetime) -> DeliveryView | None:
        """The officer's «đã đăng»: the delivery's next attempt records it sent (once)."""
        claim = Claim.of(view.delivery, view.claims + 1, "confirm", now)
        if await self.insert_claims([claim]):
            return None
        sent = Outcome(DeliveryState.SENT, sent_at=now, confirmed_at=now)
        result = Result.of(view.delivery, claim.k, sent, now, view.failures)
        await self.insert_results([result])
        return DeliveryView(view.delivery, result)

    async def record_echo(self, echo: Echo) -> None:
        doc = {"_id": f"{echo.group_id}:{echo.code}", "message_id": echo.message_id}
        await _insert_new(self.echoes, [doc])

    async def echo_seen(self, group_id: str, code: str) -> Echo | None:
        found = await self.echoes.find_one({"_id": f"{group_id}:{code}"})
        return Echo(group_id, code, found.get("message_id")) if found else None


def _page(found: Doc) -> list[Delivery]:
    return [Delivery.from_doc(doc) for doc in json.loads(found["deliveries"])]


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
