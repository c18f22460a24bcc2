"""The reports store's hot queries on FerretDB's two backends, PostgreSQL and SQLite.

For each backend (`--backends`), starts FerretDB (its PostgreSQL too) on loopback, fills the
store with `--cases` cases opened by the real intake core from the benchmark's tips (each
case with its tipster, ledger entry and duplicate-list note), then times each query `--rounds`
times and prints the median per call, in milliseconds:

- intake, per message: the ledger (`seen`), the tipster, a case by id, a batch of 100 new cases
  (`insert_cases`), a join (`add_messages`), staging and unstaging 100 events;
- the duplicate lists (`recent_fingerprints`);
- the staff API: a ward's newest 50 cases with the total (`find`), and one status.

Run: `.venv/bin/python -m bench.reports_store` (about a minute per backend).
"""

import argparse
import asyncio
import os
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import timedelta
from pathlib import Path

from bench.reports import event
from services.reports.app import load_gazetteer
from services.reports.intake_core import IntakeCore
from services.reports.intake_plan import Arrival, IntakeConfig, Join, Plan, Snapshot
from services.reports.knowledge import KnowledgeBase
from services.reports.roster import Roster
from services.reports.settings import ReportsSettings
from services.reports.store import CaseFilter, ReportsStore
from services.reports.triage import Triager
from shared.events.tips import CaseStatus
from shared.mongo import connect_mongo
from tools.localstack.servers import start_mongo


def intake_core() -> IntakeCore:
    settings = ReportsSettings()
    gazetteer = load_gazetteer(settings)
    triager = Triager.from_files(
        settings.triage_rules_file, settings.triage_model_file, settings.safety_rules_file
    )
    names = {u.slug: f"{u.kind} {u.name}" for u in gazetteer.current_units()}
    config = IntakeConfig(
        group_window=timedelta(minutes=10),
        duplicate_window=timedelta(hours=2),
        duplicate_threshold=0.35,
        ref_prefix="BY",
        group_wards={},
    )
    knowledge = KnowledgeBase.load(settings.knowledge_file, names)
    return IntakeCore(triager, gazetteer, knowledge, Roster({}, "Asia/Ho_Chi_Minh"), config)


async def fill(store: ReportsStore, core: IntakeCore, count: int) -> list[Arrival]:
    arrivals = [Arrival.of(e, f"p-{e.user_id}") for e in (event(i) for i in range(count))]
    for start in range(0, count, 250):
        batch = arrivals[start : start + 250]
        plan = core.plan(batch, Snapshot())
        await store.insert_cases(plan.new_cases)
        sealed = {a.tipster: "sealed" for a in batch}
        await store.note_tipsters(plan.tipsters, sealed, set())
        await store.remember_recent(plan.fingerprints)
        await store.record(plan.records)
    return arrivals


async def timed(rounds: int, call: Callable[[int], Awaitable[object]]) -> float:
    """Median milliseconds of `rounds` sequential calls (`call(i)` for round i)."""
    times = []
    for i in range(rounds):
        start = time.perf_counter()
        await call(i)
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


async def measure(
    store: ReportsStore, core: IntakeCore, args: argparse.Namespace
) -> dict[str, float]:
    arrivals = await fill(store, core, args.cases)
    ids = [a.event.event_id for a in arrivals]
    cases = [c.id for c in core.plan(arrivals[:200], Snapshot()).new_cases]
    rounds = args.rounds
    extra = [Arrival.of(e, f"p-{e.user_id}") for e in (event(i) for i in range(100 * rounds))]
    plans = [core.plan(extra[i * 100 : (i + 1) * 100], Snapshot()) for i in range(rounds)]
    since = arrivals[0].event.received_at - timedelta(hours=2)
    ward = CaseFilter.build(["quang-phu"])
    results = {
        "seen (ledger, by _id)": await timed(rounds, lambda i: store.seen(ids[i])),
        "tipster (by _id)": await timed(rounds, lambda i: store.tipster(arrivals[i].tipster)),
        "case (by _id)": await timed(rounds, lambda i: store.get(cases[i % len(cases)])),
        "insert_cases (100 new)": await timed(
            rounds, lambda i: store.insert_cases(plans[i].new_cases)
        ),
        "add_messages (1 join)": await timed(
            rounds,
            lambda i: store.add_messages(
                [Join(cases[i % len(cases)], extra[i].message, extra[i].event.received_at)]
            ),
        ),
        "stage + unstage (100 events)": await timed(
            rounds, lambda i: _stage_and_unstage(store, plans[i])
        ),
        "recent_fingerprints (all wards)": await timed(
            rounds, lambda i: store.recent_fingerprints(since)
        ),
        "staff list: a ward's newest 50 + total": await timed(
            rounds, lambda i: store.find(ward, 0, 50)
        ),
        "staff list: one status, newest 50": await timed(
            rounds, lambda i: store.find(CaseFilter.build(None, CaseStatus.NEW), 0, 50)
        ),
    }
    return results


async def _stage_and_unstage(store: ReportsStore, plan: Plan) -> None:
    staged = plan.staged
    await store.stage(staged)
    await store.unstage([item.event_id for item in staged])


async def one_backend(backend: str, core: IntakeCore, args: argparse.Namespace) -> dict[str, float]:
    os.environ["FERRETDB_BACKEND"] = backend
    with tempfile.TemporaryDirectory(prefix="bench-store-") as tmp:
        server = start_mongo(Path(tmp) / "mongo")
        client = connect_mongo(server.url)
        try:
            store = ReportsStore(client["bench_store"])
            await store.ensure_indexes()
            return await measure(store, core, args)
        finally:
            await client.close()
            server.stop()


async def main(args: argparse.Namespace) -> None:
    core = intake_core()
    figures = {backend: await one_backend(backend, core, args) for backend in args.backends}
    print(f"reports store, {args.cases} cases, median ms per call of {args.rounds}")
    print("| query | " + " | ".join(f"FerretDB on {b}" for b in args.backends) + " |")
    for name in figures[args.backends[0]]:
        row = " | ".join(f"{figures[b][name]:.2f}" for b in args.backends)
        print(f"| {name} | {row} |")
    print(f"load average {os.getloadavg()}")


def parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--cases", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=30)
    parser.add_argument("--backends", nargs="+", default=["postgresql", "sqlite"])
    return parser.parse_args()


if __name__ == "__main__":
    asyncio.run(main(parse()))
