"""Analytics throughput: JetStream → analytics → MongoDB-wire server, batched vs naive.

Run: `python -m bench.analytics` (part of `make bench`). Uses NATS_URL / MONGODB_URL when set,
else starts a nats-server and the project's FerretDB in temporary folders. The same backlog
of Zalo events is consumed twice, from the same stream, by two durables:
- batched: the service's own pipeline (`pullers.consuming`: batch pulls, decoding, the ledger's
  one journal insert per batch, counters folded per bucket and written with `bulk_write`, then
  the acks), in a process set up as the service's (`collect_less_often`, unless `--default-gc`);
- naive: one event at a time: `insert_one` into the ledger, one `$inc` upsert per counter
  document, then the ack (what a straightforward subscriber does).
Both are timed from the start of consumption until every event is counted, and the stored
counts are checked to equal the number of events sent.
"""

import argparse
import asyncio
import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from nats.js.api import ConsumerConfig, StreamConfig

from services.analytics.app import declare_consumers
from services.analytics.buckets import GRAINS, Grain, bucket_label
from services.analytics.increments import ZALO_EVENTS
from services.analytics.ledger import CounterLedger, durable_database
from services.analytics.pullers import consuming, decode_zalo
from services.analytics.settings import AnalyticsSettings
from services.analytics.store import MetricsStore
from services.ingest.normalize import normalize
from shared.events.envelope import event_bytes
from shared.jetstream import connect
from shared.mongo import connect_mongo
from shared.process import collect_less_often
from tools.localstack.servers import start_mongo, start_nats
from tools.zalo_sim.events import EVENT_NAMES, EventFactory

APP_ID = "360846524940903967"


def make_events(count: int, seed: int) -> list[bytes]:
    """Live-like traffic of the last four hours, as ingest puts it on the stream: webhook bodies
    of every event kind from the simulator, normalized and serialized by ingest's own code
    (`normalize`, then `event_bytes`, what `WebhookApp.answer` publishes)."""
    rng = random.Random(seed)
    factory = EventFactory(APP_ID, seed=seed, users=5000)
    now = datetime.now(UTC)
    out = []
    for _ in range(count):
        # Milliseconds, as Zalo stamps them: at whole seconds, two events of one user and kind
        # would collide (their ids derive from user, kind and time) and be counted once.
        at_ms = int(now.timestamp() * 1000) - rng.randrange(4 * 3600 * 1000)
        body = factory.make(rng.choice(EVENT_NAMES), timestamp_ms=at_ms)
        out.append(event_bytes(normalize(body, now)))
    return out


@asynccontextmanager
async def servers() -> AsyncIterator[tuple[str, str]]:
    if os.environ.get("NATS_URL") and os.environ.get("MONGODB_URL"):
        yield os.environ["NATS_URL"], os.environ["MONGODB_URL"]
        return
    with tempfile.TemporaryDirectory(prefix="bench-analytics-") as tmp:
        nats_server = start_nats(Path(tmp) / "nats")
        mongo_server = start_mongo(Path(tmp) / "mongo")
        try:
            yield nats_server.url, mongo_server.url
        finally:
            nats_server.stop()
            mongo_server.stop()


async def publish(nats_url: str, stream: str | None, prefix: str, events: list[bytes]) -> None:
    """Publish the backlog (creating `stream` first unless the service declared it)."""
    nc = await connect(nats_url, name="bench-publisher")
    try:
        js = nc.jetstream()
        if stream:
            await js.add_stream(StreamConfig(name=stream, subjects=[f"{prefix}.>"]))
        for start in range(0, len(events), 1000):
            await asyncio.gather(
                *(
                    js.publish(f"{prefix}.zalo.event.x", body)
                    for body in events[start : start + 1000]
                )
            )
    finally:
        await nc.close()


async def total_events(db: Any, settings: AnalyticsSettings) -> int:
    store = MetricsStore(db, settings)
    rows = await store.counters(ZALO_EVENTS, Grain.DAY)
    return sum(int(r["n"].get("n", 0)) for r in rows)


async def run_batched(settings: AnalyticsSettings, expected: int) -> float:
    mongo: Any = connect_mongo(settings.mongodb_url)
    db = durable_database(mongo, settings.mongodb_database)
    ledger = CounterLedger(db)
    await ledger.load()
    try:
        started = time.perf_counter()
        async with consuming(settings, ledger) as pipeline:
            await pipeline.wait_until(lambda s: s.counted >= expected, timeout=600)
            elapsed = time.perf_counter() - started
        assert pipeline.stats.counted == expected, pipeline.stats
        stored = await total_events(db, settings)
        assert stored == expected, f"stored {stored} != sent {expected}"
        return expected / elapsed
    finally:
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()


async def run_naive(settings: AnalyticsSettings, expected: int) -> float:
    """One event at a time: ledger insert, one `$inc` upsert per counter document, ack."""
    mongo: Any = connect_mongo(settings.mongodb_url)
    db = durable_database(mongo, settings.mongodb_database)
    nc = await connect(settings.nats_url, name="bench-naive")
    js = nc.jetstream()
    durable = f"naive-{uuid.uuid4().hex[:6]}"
    await js.add_consumer(
        settings.zalo_events_stream,
        ConsumerConfig(
            durable_name=durable, filter_subject=settings.zalo_subject_filter, max_ack_pending=1000
        ),
    )
    sub = await js.pull_subscribe(
        settings.zalo_subject_filter, durable=durable, stream=settings.zalo_events_stream
    )
    counters = db["naive_counters"]
    done = 0
    started = time.perf_counter()
    try:
        while done < expected:
            for msg in await sub.fetch(100, timeout=5):
                decoded = decode_zalo(msg.data)
                await db["naive_ledger"].insert_one({"_id": decoded.event_id})
                for item in decoded.increments:
                    for grain in GRAINS:
                        key = f"{item.metric}|{grain}|{bucket_label(item.at, grain)}|{item.dims}"
                        await counters.update_one(
                            {"_id": key}, {"$inc": {item.field: item.amount}}, upsert=True
                        )
                await msg.ack()
                done += 1
        elapsed = time.perf_counter() - started
        rows = await counters.find({"_id": {"$regex": f"^{ZALO_EVENTS}\\|{Grain.DAY}"}}).to_list(
            None
        )
        stored = sum(int(r.get("n", 0)) for r in rows)
        assert stored == expected, f"naive stored {stored} != sent {expected}"
        return expected / elapsed
    finally:
        await sub.unsubscribe()
        await nc.close()
        await mongo.drop_database(settings.mongodb_database)
        await mongo.close()


async def main(events: int, naive_events: int, runs: int, batch_size: int) -> None:
    batched: list[float] = []
    naive: list[float] = []
    async with servers() as (nats_url, mongodb_url):
        for run in range(runs):
            tag = uuid.uuid4().hex[:8]
            settings = AnalyticsSettings(
                nats_url=nats_url,
                mongodb_url=mongodb_url,
                mongodb_database=f"bench_{tag}",
                zalo_events_stream=f"BENCH_{tag}",
                zalo_subject_filter=f"b{tag}.zalo.event.>",
                tips_stream=f"BENCH_TIPS_{tag}",
                tips_subject_filter=f"b{tag}.tips.>",
                broadcast_stream=f"BENCH_BC_{tag}",
                broadcast_subject_filter=f"b{tag}.broadcast.outcome.>",
                registry_subject_filter=f"b{tag}.broadcast.registry.group",
                snapshots_stream=f"BENCH_SN_{tag}",
                snapshots_subject_filter=f"b{tag}.snapshot.>",
                batch_size=batch_size,
            )
            await declare_consumers(settings)
            await publish(nats_url, None, f"b{tag}", make_events(events, run))
            batched.append(await run_batched(settings, events))
            naive_settings = settings.model_copy(update={"mongodb_database": f"naive_{tag}"})
            naive_rate = await run_naive_on_prefix(naive_settings, tag, naive_events, run)
            naive.append(naive_rate)
            rates = f"batched {batched[-1]:,.0f} events/s, naive {naive_rate:,.0f} events/s"
            print(f"run {run + 1}: {rates}")
    b, n = statistics.median(batched), statistics.median(naive)
    print(
        f"median of {runs}: batched {b:,.0f} events/s ({events:,} events, batch {batch_size}); "
        f"naive {n:,.0f} events/s ({naive_events:,} events); ratio {b / n:.1f}x; counts exact"
    )


async def run_naive_on_prefix(
    settings: AnalyticsSettings, tag: str, count: int, seed: int
) -> float:
    """The naive consumer reads its own backlog of `count` events (a shorter run: it is slow)."""
    stream, prefix = f"NAIVE_{tag}", f"n{tag}"
    await publish(settings.nats_url, stream, prefix, make_events(count, seed + 100))
    naive_settings = settings.model_copy(
        update={"zalo_events_stream": stream, "zalo_subject_filter": f"{prefix}.zalo.event.>"}
    )
    return await run_naive(naive_settings, count)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--naive-events", type=int, default=2_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument(
        "--batch-size", type=int, default=AnalyticsSettings.model_fields["batch_size"].default
    )
    parser.add_argument(
        "--default-gc", action="store_true", help="keep CPython's default collector thresholds"
    )
    args = parser.parse_args()
    if not args.default_gc:
        collect_less_often()  # as `python -m services.analytics` does at start-up
    asyncio.run(main(args.events, args.naive_events, args.runs, args.batch_size))
