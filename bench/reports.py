"""Reports intake end to end: a citizen's message on ZALO_EVENTS -> `tips.triaged.<ward>.>`.

Starts its own nats-server (JetStream) and MongoDB-wire server (mongod or FerretDB) on loopback,
runs the reports service in this process (replies off), then for 3 runs (a) publishes 60 tips from
60 different citizens, one every 250 ms, and times each from publish to the moment a core
subscriber on `tips.triaged.>` receives its TipTriaged, and (b) publishes a backlog of 200 tips at
once and times until the last is triaged. Reports the median over runs of the per-run median and
p95 latency, and of the backlog drain rate. The database grows across runs (up to 780 cases).
Run: `.venv/bin/python -m bench.reports` (or `make bench`).
"""

import asyncio
import json
import statistics
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg

from services.reports.app import create_app
from services.reports.cases import case_id_for
from services.reports.settings import ReportsSettings
from shared.events.zalo import MessageType, ZaloEventKind, ZaloEventReceived
from shared.jetstream import connect
from shared.subjects import TIPS_PREFIX, zalo_event_subject
from tools.localstack.servers import mongo_server_label, start_mongo, start_nats

RUNS = 3
PACED = 60
BACKLOG = 200
INTERVAL = 0.25
TEXTS = (
    "Có trộm chó ở xã Quang Phú, 2 người đi xe máy",
    "Đang có đánh nhau trước quán nhậu phường Bắc Lý, có người cầm dao",
    "nha hang xom o Loc Ninh mo nhac to qua, on ao ca dem",
    "Có người lạ mặt lảng vảng quanh trường học phường Nam Lý",
)


STORE = mongo_server_label()


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


async def run_once(nc: NatsClient, run: int, count: int, paced: bool) -> list[float]:
    sent: dict[str, float] = {}
    latencies: list[float] = []
    done = asyncio.Event()

    async def received(msg: Msg) -> None:
        case_id = json.loads(msg.data)["case_id"]
        if case_id in sent:
            latencies.append(time.perf_counter() - sent.pop(case_id))
            if len(latencies) == count:
                done.set()

    sub = await nc.subscribe(f"{TIPS_PREFIX}.triaged.>", cb=received)
    js = nc.jetstream()
    for index in range(count):
        ev = event(index + run)
        sent[case_id_for(ev.event_id)] = time.perf_counter()
        await js.publish(
            zalo_event_subject(ev.kind),
            ev.model_dump_json().encode(),
            headers={"Nats-Msg-Id": ev.event_id},
        )
        if paced:
            await asyncio.sleep(INTERVAL)
    await asyncio.wait_for(done.wait(), timeout=300)
    await sub.unsubscribe()
    return latencies


async def main() -> None:
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
                    await report(nc)
                finally:
                    await nc.close()
        finally:
            mongo.stop()
            nats.stop()


async def report(nc: NatsClient) -> None:
    medians, p95s, rates = [], [], []
    for run in range(RUNS):
        latencies = sorted(await run_once(nc, run, PACED, paced=True))
        medians.append(statistics.median(latencies) * 1000)
        p95s.append(latencies[int(0.95 * len(latencies)) - 1] * 1000)
        start = time.perf_counter()
        await run_once(nc, run, BACKLOG, paced=False)
        rates.append(BACKLOG / (time.perf_counter() - start))
    print(f"reports intake on {STORE}, median of {RUNS} runs")
    median, p95 = statistics.median(medians), statistics.median(p95s)
    pace = f"{PACED} tips, 1 per {INTERVAL * 1000:.0f} ms"
    print(f"{pace}: publish-to-triaged latency median {median:.0f} ms, p95 {p95:.0f} ms")
    print(f"backlog of {BACKLOG}: {statistics.median(rates):.0f} tips/s publish-to-triaged")


if __name__ == "__main__":
    asyncio.run(main())
