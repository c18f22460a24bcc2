"""Reports intake end to end: a citizen's message on ZALO_EVENTS -> `tips.triaged.<ward>.>`.

Starts its own nats-server (JetStream) and MongoDB-wire server (mongod, else FerretDB on
PostgreSQL, or on SQLite with `FERRETDB_BACKEND=sqlite`) on loopback, runs the reports service
in this process (replies off, one replica), then for each run (a) publishes `--paced` tips from
as many citizens at `--rate` tips/s and times each from publish to the moment a core subscriber
on `tips.triaged.>` receives its TipTriaged, and (b) stops the intake consumer, publishes a
backlog of `--backlog` tips, starts the consumer and times until the last is triaged. Every
run checks that each message opened exactly one case and produced exactly one dispatch card.
Reports each run, the median over runs of the per-run p50/p99 latency and drain rate, and the
load average. The database grows across runs.
Run: `.venv/bin/python -m bench.reports` (or `make bench`).
"""

import argparse
import asyncio
import json
import os
import statistics
import tempfile
import time
import uuid
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from fastapi import FastAPI
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from services.reports.app import create_app
from services.reports.cases import case_id_for
from services.reports.intake_consumer import IntakeConsumer
from services.reports.settings import ReportsSettings
from services.reports.store import ReportsStore
from shared.events.zalo import MessageType, ZaloEventKind, ZaloEventReceived
from shared.jetstream import connect
from shared.subjects import TIPS_PREFIX, zalo_event_subject
from tools.localstack.servers import mongo_server_label, start_mongo, start_nats

TEXTS = (
    "Có trộm chó ở xã Quang Phú, 2 người đi xe máy",
    "Đang có đánh nhau trước quán nhậu phường Bắc Lý, có người cầm dao",
    "nha hang xom o Loc Ninh mo nhac to qua, on ao ca dem",
    "Có người lạ mặt lảng vảng quanh trường học phường Nam Lý",
)


@dataclass
class Run:
    latencies: list[float]  # seconds, sorted
    seconds: float  # first publish to last card
    extra_cards: int  # cards beyond one per message (must be 0)


def event(index: int) -> ZaloEventReceived:
    now = datetime.now(UTC)
    return ZaloEventReceived(
        event_id=f"bench-{uuid.uuid4().hex}",
        occurred_at=now,
        kind=ZaloEventKind.USER_MESSAGE,
        event_name="user_send_text",
        received_at=now,
        app_id="bench",
        user_id=f"bench-user-{uuid.uuid4().hex}",
        message_type=MessageType.TEXT,
        text=TEXTS[index % len(TEXTS)],
    )


async def run_once(
    nc: NatsClient, count: int, rate: float | None, consumer: IntakeConsumer | None = None
) -> Run:
    """Paced at `rate`, or with `consumer` a backlog: published while the consumer is
    stopped, timed from its start to the last card."""
    sent: dict[str, float] = {}
    latencies: list[float] = []
    cards: Counter[str] = Counter()
    done = asyncio.Event()

    async def received(msg: Msg) -> None:
        card = json.loads(msg.data)
        if card.get("info_only"):
            return
        case_id = card["case_id"]
        cards[case_id] += 1
        if case_id in sent and cards[case_id] == 1:
            latencies.append(time.perf_counter() - sent[case_id])
            if len(latencies) == count:
                done.set()

    sub = await nc.subscribe(f"{TIPS_PREFIX}.triaged.>", cb=received)
    js = nc.jetstream()

    async def publish(ev: ZaloEventReceived) -> None:
        await js.publish(
            zalo_event_subject(ev.kind),
            ev.model_dump_json().encode(),
            headers={"Nats-Msg-Id": ev.event_id},
        )

    if consumer is not None:
        await consumer.stop()
        events = [event(index) for index in range(count)]
        for chunk in range(0, count, 200):
            await asyncio.gather(*(publish(ev) for ev in events[chunk : chunk + 200]))
        start = time.perf_counter()
        sent.update((case_id_for(ev.event_id), start) for ev in events)
        await consumer.start()
    else:
        start = time.perf_counter()
        for index in range(count):
            ev = event(index)
            # Paced from the start, so a slow publish does not slow the rate.
            await asyncio.sleep(max(0.0, start + index / (rate or 1) - time.perf_counter()))
            sent[case_id_for(ev.event_id)] = time.perf_counter()
            await publish(ev)
    await asyncio.wait_for(done.wait(), timeout=600)
    seconds = time.perf_counter() - start
    await asyncio.sleep(1.0)  # a card published twice would arrive by now
    await sub.unsubscribe()
    extra = sum(n - 1 for case_id, n in cards.items() if case_id in sent)
    return Run(sorted(latencies), seconds, extra)


def pct(values: list[float], q: float) -> float:
    return values[min(len(values) - 1, int(q * len(values)))] * 1000


async def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-reports-") as tmp:
        nats = start_nats(Path(tmp) / "nats")
        mongo = start_mongo(Path(tmp) / "mongo")
        try:
            settings = ReportsSettings(
                nats_url=nats.url,
                mongodb_url=mongo.url,
                mongodb_database="bench_reports",
                declare_zalo_stream=True,
                send_replies=False,
                sla_check_seconds=3600,
            )
            app = create_app(settings)
            async with app.router.lifespan_context(app):
                nc = await connect(nats.url, name="bench")
                try:
                    await report(nc, args, app)
                finally:
                    await nc.close()
        finally:
            mongo.stop()
            nats.stop()


async def report(nc: NatsClient, args: argparse.Namespace, app: FastAPI) -> None:
    store: ReportsStore = app.state.service.reports.store
    print(f"reports intake on {mongo_server_label()}, {args.runs} runs, one replica")
    p50s, p99s, rates = [], [], []
    total = 0
    for run in range(args.runs):
        paced = await run_once(nc, args.paced, args.rate)
        backlog = await run_once(nc, args.backlog, None, app.state.service.intake_consumer)
        total += args.paced + args.backlog
        cases = await store.cases.count_documents({})
        p50s.append(pct(paced.latencies, 0.50))
        p99s.append(pct(paced.latencies, 0.99))
        rates.append(args.backlog / backlog.seconds)
        print(
            f"run {run + 1}: {args.paced} tips at {args.rate:g}/s p50 {p50s[-1]:.1f} ms"
            f" p99 {p99s[-1]:.1f} ms max {pct(paced.latencies, 1.0):.1f} ms;"
            f" backlog {args.backlog} drained at {rates[-1]:.0f} tips/s;"
            f" cases {cases} for {total} messages, extra cards"
            f" {paced.extra_cards + backlog.extra_cards}; load {os.getloadavg()[0]:.2f}",
            flush=True,
        )
    print(
        f"median: p50 {statistics.median(p50s):.1f} ms, p99 {statistics.median(p99s):.1f} ms"
        f" at {args.rate:g} tips/s; backlog of {args.backlog}:"
        f" {statistics.median(rates):.0f} tips/s; load average {os.getloadavg()}"
    )


def parse(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--paced", type=int, default=400, help="tips per paced run")
    parser.add_argument("--rate", type=float, default=20.0, help="paced tips per second")
    parser.add_argument("--backlog", type=int, default=2000)
    return parser.parse_args(argv)


if __name__ == "__main__":
    asyncio.run(main(parse()))
