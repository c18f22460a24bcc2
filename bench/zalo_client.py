"""Zalo client: the shared rate limit across processes, and what one call costs.

Starts its own nats-server (JetStream, temp dir) and the fake Zalo on loopback, then
1. for limits of 20, 50 and 100 calls/s with 2 client processes and 150/s with 3 (4 concurrent
   tasks each, 4 s of demand, 50 ms slot blocks) runs 3 times and reports the median achieved
   rate the fake saw, as a ratio of the limit: (calls - 1) / (last call - first call),
   timestamps taken by the fake, and the most calls in any one-second window;
2. times 2,000 slot reservations on the JetStream key-value bucket (no waiting) and reports the
   median and p99 round trip;
3. CPU per call: `send_group_text` from 64 concurrent tasks of one `ZaloClient` (with NATS, no
   client-side limit) against `python -m tools.fake_zalo` in its own process (as `make run`
   and the broadcast benchmark serve it: uvicorn with uvloop and httptools), fake at zero
   latency and no quota. Client us/call = this process's `time.process_time()` per call; fake
   us/call = the fake process's user + system CPU (/proc/PID/stat) per call; median of 3 runs
   of CALLS calls each;
4. CPU per `RateLimiter.acquire` on the key-value store: a family with no limit, and 2,000/s
   from 64 tasks with one slot per compare-and-set vs 50 ms blocks (median of 3 runs of 2 s of
   demand), with key-value reservations per call and the rate achieved.
Run: `.venv/bin/python -m bench.zalo_client` (or `make bench`).
"""

import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
from nats.aio.client import Client as NatsClient
from nats.js.api import KeyValueConfig

from shared.jetstream import connect, ensure_key_value
from shared.settings import ZaloSettings
from shared.zalo.client import ZaloClient
from shared.zalo.ratelimit import KvRateStore, RateLimiter, SlotBlock
from tools.fake_zalo.rate_probe import measure
from tools.fake_zalo.server import ThreadedFakeZalo
from tools.fake_zalo.settings import FakeZaloSettings
from tools.localstack.servers import free_port, start_nats, wait_for_port

SCENARIOS = ((2, 20.0), (2, 50.0), (2, 100.0), (3, 150.0))  # (client processes, calls/s)
TASKS_PER_PROCESS = 4
RUNS = 3
SECONDS = 4
CALLS = int(os.environ.get("BENCH_ZALO_CALLS", "5000"))
TASKS = 64
LIMITER_RATE, LIMITER_SECONDS = 2000.0, 2.0
TEXT = "Cảnh báo thủ đoạn lừa đảo qua mạng: không chuyển tiền cho người lạ tự xưng công an."


async def rate_runs(nats_url: str, base_url: str) -> None:
    print(
        f"cross-process rate limit ({TASKS_PER_PROCESS} tasks per process, 50 ms slot blocks),"
        f" median of {RUNS} runs"
    )
    for processes, limit in SCENARIOS:
        results = []
        for run in range(RUNS):
            tag = f"{processes}_{int(limit)}_{run}"
            settings = ZaloSettings(
                zalo_api_base=base_url,
                zalo_oauth_base=base_url,
                zalo_token_bucket=f"bench_token_{tag}",
                zalo_rate_bucket=f"bench_rate_{tag}",
                zalo_rate_limits={"read": limit},
                zalo_rate_block_seconds=0.05,
            )
            calls = int(limit * SECONDS / processes)
            result = await measure(
                nats_url,
                settings,
                processes=processes,
                calls_per_process=calls,
                tasks=TASKS_PER_PROCESS,
            )
            await reset(base_url)
            results.append((result.rate / limit, result.max_in_window(1.0)))
        ratio = statistics.median(r for r, _ in results)
        window = statistics.median(w for _, w in results)
        runs = ", ".join(f"{r:.3f} / {w}" for r, w in results)
        print(
            f"  {processes} processes, limit {limit:>4.0f}/s: achieved {ratio * limit:7.2f}/s"
            f" = {ratio:.3f} x limit, busiest 1 s window {window:.0f} calls"
            f" (runs, ratio / window: {runs})"
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
            f"slot reservation (one compare-and-set, revision known): median {median:.0f} us,"
            f" p99 {p99:.0f} us over {len(samples)}"
        )
    finally:
        await nc.close()


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of another process so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def start_fake() -> tuple[subprocess.Popen[bytes], str]:
    """`python -m tools.fake_zalo` in its own process, no quota, no demo data."""
    port = free_port()
    env = os.environ | {
        "HTTP_PORT": str(port),
        "FAKE_RATE_LIMIT_PER_MINUTE": "1000000000",
        "FAKE_SEED_DEMO": "false",
        "LOG_LEVEL": "WARNING",
    }
    fake = subprocess.Popen([sys.executable, "-m", "tools.fake_zalo"], env=env)
    wait_for_port(port, process=fake)
    return fake, f"http://127.0.0.1:{port}"


async def call_cost(nats_url: str, fake_pid: int, base: str) -> None:
    nc = await connect(nats_url, name="bench-call-cost")
    try:
        groups = [f"7{i:017d}" for i in range(TASKS)]
        async with httpx.AsyncClient(base_url=base) as admin:
            seed = {"groups": [{"group_id": g} for g in groups]}
            (await admin.post("/_admin/seed", json=seed)).raise_for_status()
        settings = ZaloSettings(
            zalo_api_base=base,
            zalo_oauth_base=base,
            zalo_token_bucket="bench_cost_token",
            zalo_rate_bucket="bench_cost_rate",
            zalo_rate_limits={},
        )
        samples: list[tuple[float, float, float]] = []
        async with ZaloClient(settings, nats=nc) as zalo:

            async def sender(group: str, budget: Iterator[int]) -> None:
                for _ in budget:
                    await zalo.send_group_text(group, TEXT)

            await asyncio.gather(*(zalo.send_group_text(g, TEXT) for g in groups))  # warm up
            for _ in range(RUNS):
                budget = iter(range(CALLS))
                cpu, fake_cpu, wall = (
                    time.process_time(),
                    process_cpu(fake_pid),
                    time.perf_counter(),
                )
                await asyncio.gather(*(sender(g, budget) for g in groups))
                samples.append((
                    (time.process_time() - cpu) / CALLS * 1e6,
                    (process_cpu(fake_pid) - fake_cpu) / CALLS * 1e6,
                    CALLS / (time.perf_counter() - wall),
                ))  # fmt: skip
    finally:
        await nc.close()
    client, server, rate = (statistics.median(column) for column in zip(*samples, strict=True))
    runs = ", ".join(f"{c:.0f}/{f:.0f}" for c, f, _ in samples)
    print(
        f"CPU per send_group_text ({TASKS} concurrent, {CALLS} calls, median of {RUNS}):"
        f" client {client:.0f} us, fake {server:.0f} us, {rate:.0f} calls/s"
        f" (client/fake runs: {runs})"
    )


class CountingStore:
    """The key-value store, counting round trips."""

    def __init__(self, inner: KvRateStore) -> None:
        self.inner, self.reservations = inner, 0

    async def reserve(
        self, family: str, interval: float, tolerance: float, now: float, count: int = 1
    ) -> SlotBlock:
        self.reservations += 1
        return await self.inner.reserve(family, interval, tolerance, now, count)


async def limiter_cost(nc: NatsClient, block: float | None, run: int) -> tuple[float, float, float]:
    """(CPU us per acquire, reservations per acquire, acquires/s) from 64 tasks."""
    kv = await ensure_key_value(
        nc.jetstream(), KeyValueConfig(bucket=f"bench_limiter_{run}", history=1, ttl=0.0)
    )
    store = CountingStore(KvRateStore(kv))
    limits = {} if block is None else {"group": LIMITER_RATE}
    limiter = RateLimiter(store, limits, block=block or 0.0)
    calls = int(LIMITER_RATE * LIMITER_SECONDS)
    budget = iter(range(calls))

    async def caller() -> None:
        for _ in budget:
            await limiter.acquire("group")

    cpu, wall = time.process_time(), time.perf_counter()
    await asyncio.gather(*(caller() for _ in range(TASKS)))
    return (
        (time.process_time() - cpu) / calls * 1e6,
        store.reservations / calls,
        calls / (time.perf_counter() - wall),
    )


async def limiter_costs(nats_url: str) -> None:
    nc = await connect(nats_url, name="bench-limiter")
    try:
        print(f"CPU per RateLimiter.acquire ({TASKS} tasks, median of {RUNS}):")
        variants: list[tuple[str, float | None]] = [
            ("no limit", None),
            (f"{LIMITER_RATE:.0f}/s, one slot per CAS", 0.0),
            (f"{LIMITER_RATE:.0f}/s, 50 ms blocks", 0.05),
        ]
        for run_offset, (name, block) in enumerate(variants):
            results = [
                await limiter_cost(nc, block, run_offset * RUNS + run) for run in range(RUNS)
            ]
            cpu = statistics.median(r[0] for r in results)
            trips = statistics.median(r[1] for r in results)
            rate = statistics.median(r[2] for r in results)
            print(f"  {name}: {cpu:.1f} us/call, {trips:.3f} reservations/call, {rate:.0f}/s")
    finally:
        await nc.close()


async def run(nats_url: str, fake_pid: int, fake_base: str) -> None:
    fake = FakeZaloSettings(http_port=free_port(), fake_seed_demo=True)
    with ThreadedFakeZalo(fake) as server:
        await rate_runs(nats_url, server.base_url)
        await slot_cost(nats_url)
    await call_cost(nats_url, fake_pid, fake_base)
    await limiter_costs(nats_url)


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-zalo-") as tmp:
        nats = start_nats(Path(tmp))
        fake, base = start_fake()
        try:
            asyncio.run(run(nats.url, fake.pid, base))
        finally:
            fake.terminate()
            fake.wait(10)
            nats.stop()


if __name__ == "__main__":
    main()
