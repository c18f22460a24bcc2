"""Zalo client: the shared rate limit across processes, and what a rate slot costs.

Starts its own nats-server (JetStream, temp dir) and the fake Zalo on loopback, then
1. for limits of 20, 50 and 100 calls/s, runs 2 client processes (4 concurrent tasks each,
   4 s of demand) 3 times and reports the median achieved rate the fake saw, as a ratio of the
   limit: (calls - 1) / (last call - first call), timestamps taken by the fake;
2. times 2,000 slot reservations on the JetStream key-value bucket (no waiting) and reports the
   median and p99 round trip.
Run: `.venv/bin/python -m bench.zalo_client` (or `make bench`).
"""

import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx
from nats.js.api import KeyValueConfig

from shared.jetstream import connect, ensure_key_value
from shared.settings import ZaloSettings
from shared.zalo.ratelimit import KvRateStore
from tools.fake_zalo.rate_probe import measure
from tools.fake_zalo.server import ThreadedFakeZalo
from tools.fake_zalo.settings import FakeZaloSettings
from tools.localstack.servers import free_port, start_nats

LIMITS = (20.0, 50.0, 100.0)
RUNS = 3
PROCESSES = 2
SECONDS = 4


async def rate_runs(nats_url: str, base_url: str) -> None:
    print(f"cross-process rate limit: {PROCESSES} processes x 4 tasks, median of {RUNS} runs")
    for limit in LIMITS:
        ratios = []
        for run in range(RUNS):
            settings = ZaloSettings(
                zalo_api_base=base_url,
                zalo_oauth_base=base_url,
                zalo_token_bucket=f"bench_token_{int(limit)}_{run}",
                zalo_rate_bucket=f"bench_rate_{int(limit)}_{run}",
                zalo_rate_limits={"read": limit},
            )
            calls = int(limit * SECONDS / PROCESSES)
            result = await measure(nats_url, settings, processes=PROCESSES, calls_per_process=calls)
            await reset(base_url)
            ratios.append(result.rate / limit)
        median = statistics.median(ratios)
        runs = ", ".join(f"{ratio:.3f}" for ratio in ratios)
        print(
            f"  limit {limit:>5.0f}/s: median achieved {median * limit:7.2f}/s"
            f" = {median:.3f} x limit (runs: {runs})"
        )


async def reset(base_url: str) -> None:
    async with httpx.AsyncClient(base_url=base_url) as http:
        await http.post("/_admin/reset")


async def slot_cost(nats_url: str) -> None:
    nc = await connect(nats_url, name="bench-slot")
    try:
        kv = await ensure_key_value(
            nc.jetstream(), KeyValueConfig(bucket="bench_slots", history=1, ttl=0.0)
        )
        store = KvRateStore(kv)
        samples = []
        for _ in range(2000):
            started = time.perf_counter()
            await store.reserve("read", 1e-9, 1e9, time.time())
            samples.append((time.perf_counter() - started) * 1e6)
        samples.sort()
        median, p99 = statistics.median(samples), samples[int(len(samples) * 0.99)]
        print(
            f"slot reservation (KV get + compare-and-set): median {median:.0f} us,"
            f" p99 {p99:.0f} us over {len(samples)}"
        )
    finally:
        await nc.close()


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-zalo-") as tmp:
        nats = start_nats(Path(tmp))
        try:
            fake = FakeZaloSettings(http_port=free_port(), fake_seed_demo=True)
            with ThreadedFakeZalo(fake) as server:
                await rate_runs(nats.url, server.base_url)
                await slot_cost(nats.url)
        finally:
            nats.stop()


if __name__ == "__main__":
    asyncio.run(main())
