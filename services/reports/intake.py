"""From citizens' messages to cases: load what the store holds, let `IntakeCore` decide,
perform the plan with a few bulk writes per batch.

Idempotent: a case opened by an event has an id derived from that event, a message joins a
case at most once, and staged events carry deterministic ids (`Nats-Msg-Id`). The ledger
entries are written last (`finish`), so a batch interrupted before them is decided again: its
cases exist, so it re-stages what they announce, and JetStream drops a republished event.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from datetime import datetime

from pymongo.errors import PyMongoError

from services.reports.duplicates import Fingerprint
from services.reports.intake_core import IntakeCore
from services.reports.intake_plan import Arrival, IntakeResult, Plan, Snapshot
from services.reports.intake_planning import Planner
from services.reports.store import ReportsStore
from services.reports.vault import TipsterVault
from shared.events.zalo import ZaloEventReceived
from shared.process import log_failure, stop_task

log = logging.getLogger(__name__)
MAX_PLANS = 5  # a batch is re-planned when it meets cases or codes it did not know
RECENT_TTL = 1.0  # seconds the wards' recent-case lists are reused before being read again


class RecentCases:
    """The wards' recent-case lists (duplicate candidates), read from the store at most every
    `ttl` seconds, with the cases this process noted since. Reading them was the largest part
    of a quiet stream's latency; the cost is that another replica's new case, or a case closed
    by staff, is seen about `ttl` later (a suggestion only: staff still decide).

    Only the first read is waited for: later ones run in the background while messages are
    decided with the lists as last read plus this process's own notes (the read and its
    pruning took ~20 ms, on the path of one message a second). This process's notes are
    written in the background too, gathered for up to `write_delay` seconds (one write per
    ward instead of one per batch: each rewrites the ward's whole list, 10 ms at 20 tips/s).
    A note lost in a crash costs at most a suggestion. Reads and writes take turns, so a
    read's pruning never drops a note written meanwhile, and notes made during a read are
    kept beside what it found."""

    def __init__(
        self,
        store: ReportsStore,
        ttl: float,
        clock: Callable[[], float] = time.monotonic,
        write_delay: float | None = None,
    ) -> None:
        self.store, self.ttl, self.clock = store, ttl, clock
        self.write_delay = ttl if write_delay is None else write_delay
        self._marks: list[Fingerprint] = []
        self._noted_during_read: list[Fingerprint] = []
        self._unwritten: list[Fingerprint] = []
        self._read_at: float | None = None
        self._reading: asyncio.Task[None] | None = None
        self._writing: asyncio.Task[None] | None = None
        self._turns = asyncio.Lock()

    async def since(self, since: datetime) -> list[Fingerprint]:
        if self._read_at is None:
            self._begin_read()
            await self._read(since)
        elif self.clock() - self._read_at > self.ttl:
            if self._reading is not None and self._reading.done():
                reading, self._reading = self._reading, None
                reading.result()  # a read that failed unexpectedly fails this batch, loudly
            if self._reading is None:
                self._begin_read()
                self._reading = asyncio.create_task(self._read_quietly(since))
        return [mark for mark in self._marks if mark.at >= since]

    def noted(self, marks: list[Fingerprint]) -> None:
        """New cases this process has stored: written to the lists within `write_delay`."""
        self._marks += marks
        self._noted_during_read += marks
        self._unwritten += marks
        if self._unwritten and self._writing is None:
            self._writing = asyncio.create_task(self._write_soon(), name="recent cases")
            self._writing.add_done_callback(log_failure)

    async def close(self) -> None:
        """Stop the background work; what is not written yet is written now if it can be."""
        for task in (self._reading, self._writing):
            if task is not None:
                with contextlib.suppress(Exception):
                    await stop_task(task)
        try:
            await self._write()
        except PyMongoError as exc:
            log.warning("recent cases not written", extra={"error": type(exc).__name__})

    async def _write_soon(self) -> None:
        try:
            while self._unwritten:
                await asyncio.sleep(self.write_delay)
                try:
                    await self._write()
                except PyMongoError as exc:  # kept for the next round
                    log.warning("recent cases not written", extra={"error": type(exc).__name__})
        finally:
            self._writing = None

    async def _write(self) -> None:
        marks, self._unwritten = self._unwritten, []
        try:
            async with self._turns:
                await self.store.remember_recent(marks)
        except BaseException:
            self._unwritten = marks + self._unwritten
            raise

    def _begin_read(self) -> None:
        """From now on, notes are kept beside what the read finds."""
        self._read_at = self.clock()
        self._noted_during_read = []

    async def _read(self, since: datetime) -> None:
        async with self._turns:
            stored = await self.store.recent_fingerprints(since)
        known = {mark.case_id for mark in stored}
        self._marks = stored + [m for m in self._noted_during_read if m.case_id not in known]

    async def _read_quietly(self, since: datetime) -> None:
        try:
            await self._read(since)
        except PyMongoError as exc:  # the lists as last read are kept; retried after `ttl`
            log.warning("recent cases not read", extra={"error": type(exc).__name__})


class Intake:
    """Turns `ZaloEventReceived` message events into cases and staged tip events."""

    def __init__(
        self,
        store: ReportsStore,
        core: IntakeCore,
        sealer: TipsterVault,
        recent_ttl: float = RECENT_TTL,
    ) -> None:
        self.store = store
        self.core = core
        self.sealer = sealer
        self.recent = RecentCases(store, recent_ttl)

    async def handle(self, event: ZaloEventReceived) -> IntakeResult:
        """One message; its tip events stay staged for the publisher."""
        plan = await self.process(await self.read([event]))
        await self.finish(plan)
        return plan.results[0]

    async def read(self, events: list[ZaloEventReceived]) -> list[Arrival]:
        """The batch's arrivals with their own triage, yielding to the event loop between
        messages: run beside another batch's store round trips, it uses their waiting time."""
        arrivals = []
        for event in events:
            tipster = self._pseudonym(event)
            try:
                arrivals.append(self.core.read(event, tipster))
            except Exception:  # raised again by `process`, where its message is retried alone
                arrivals.append(Arrival.of(event, tipster))
            await asyncio.sleep(0)
        return arrivals

    async def process(
        self, arrivals: list[Arrival], first_deliveries: frozenset[str] = frozenset()
    ) -> Plan:
        """A batch of messages, in order, up to the ledger: the plan performed, with each
        message's result and the events it staged. `finish` writes the ledger entries; it may
        run beside the publishing of the staged events (both only follow the writes here).

        `first_deliveries`: ids of events the consumer delivers for the first time, which
        cannot have been handled before (ingest publishes one stream message per event id:
        the stream's duplicate window covers its acceptance horizon), so the ledger is read
        only for redeliveries. A consumer recreated over old messages would break that
        premise: it must start after the last handled message."""
        snapshot = await self._load(arrivals, first_deliveries)
        plan = await self._plan(arrivals, snapshot)
        await self._perform(plan, arrivals, known_tipsters=set(snapshot.tipsters))
        self.recent.noted(plan.fingerprints)
        return plan

    async def finish(self, plan: Plan) -> None:
        """The ledger entries, last: a batch interrupted before them is decided again. (The
        new cases' notes in the wards' duplicate lists are written by `RecentCases`.)"""
        await self.store.record(plan.records)

    async def close(self) -> None:
        """Stop reading the duplicate lists in the background."""
        await self.recent.close()

    def _pseudonym(self, event: ZaloEventReceived) -> str:
        if event.user_id is None:
            raise ValueError("message event without a user id")
        return self.sealer.pseudonym(event.user_id)

    async def _load(self, arrivals: list[Arrival], first_deliveries: frozenset[str]) -> Snapshot:
        config = self.core.config
        first = min(arrival.event.received_at for arrival in arrivals)
        redelivered = {a.event.event_id for a in arrivals} - first_deliveries
        seen, tipsters, fingerprints = await asyncio.gather(
            self.store.seen_many(redelivered),
            asyncio.gather(*(self.store.tipster(t) for t in {a.tipster for a in arrivals})),
            self.recent.since(first - config.duplicate_window),
        )
        since = first - config.group_window
        wanted = {
            t.open_case_id
            for t in tipsters
            if t and t.open_case_id and t.last_message_at and t.last_message_at >= since
        }
        wanted |= {r.case_id for r in seen.values() if r.case_id and r.outcome == "opened"}
        return Snapshot(
            seen=seen,
            tipsters={t.pseudonym: t for t in tipsters if t is not None},
            cases=await self.store.get_many(wanted),
            fingerprints=tuple(fingerprints),
        )

    async def _plan(self, arrivals: list[Arrival], snapshot: Snapshot) -> Plan:
        """Plan until the plan holds: every case it needs is known, and its new cases are in."""
        for _ in range(MAX_PLANS):
            planner = Planner(self.core, snapshot)
            while missing := planner.advance(arrivals):
                loaded = await self.store.get_many(missing)
                planner.learn(loaded)
                snapshot = snapshot.adding(loaded)
            plan = planner.plan
            inserted = await self.store.insert_cases(plan.new_cases)
            if inserted.clean:
                return plan
            # A case that existed, or a reference code that is taken: plan the batch again.
            known = {case.id: case for case in plan.new_cases} | inserted.existing
            snapshot = snapshot.adding(
                {i: case for i, case in known.items() if case.ref not in inserted.taken_refs},
                frozenset(inserted.taken_refs),
            )
        raise RuntimeError(f"intake could not settle a batch in {MAX_PLANS} plans")

    async def _perform(self, plan: Plan, arrivals: list[Arrival], known_tipsters: set[str]) -> None:
        first_cases = {note.pseudonym for note in plan.tipsters if note.first}
        sealed = {
            a.tipster: self.sealer.seal(a.event.user_id or "")
            for a in arrivals
            if a.tipster in first_cases
        }
        await asyncio.gather(
            self.store.add_messages(plan.joins),  # the batch's new cases are in (`_plan`)
            self.store.note_tipsters(plan.tipsters, sealed, known_tipsters),
            self.store.watch_sla(plan.sla),
            self.store.stage(plan.staged),
        )
        for arrival, result in zip(arrivals, plan.results, strict=True):
            if result.outcome in ("opened", "joined"):
                log.info(
                    f"case {result.outcome}",
                    extra={"case_id": result.case_id, "tipster": arrival.tipster},
                )
