# ruff: noqa: ASYNC212, ASYNC220, ASYNC230, ASYNC240  (the harness drives processes and the fake synchronously)
"""Broadcast fan-out: one notice to 10,000 `oa` groups through three sender replicas.

Run: `python -m bench.broadcast` (part of `make bench`). Starts its own nats-server, the
project's MongoDB-wire server (FerretDB unless MONGODB_URL is set), the fake Zalo server and
three `python -m services.broadcast.sender` processes, all on 127.0.0.1.

1. Throughput: fake at zero latency and no quota; deliveries/s = groups / (time from the
   notice's creation call to the stream timestamp of the last `sent` outcome event; a sender
   publishes an outcome only after its result is recorded in MongoDB, and the counts are then
   read back from MongoDB); also the steady rate of accepted sends from the fake's own
   timestamps, the check that exactly one message per group was recorded, and the CPU each
   process spent per delivery (/proc utime + stime over the fan-out).
2. Quota: the fake enforces N calls/minute and the client's shared limiter is set to 95 % of it
   (headroom for network jitter between the limiter's slot and the call's arrival); the
   highest number of sends in any one-second window (sliding, from the fake's timestamps) is
   compared with N/60.
The planner reads the registry's roster snapshot, which the import builds; BENCH_ROSTER=cold
deletes it right before the notice, so the fan-out also pays the full registry read (a notice
sent just after a registry change, before the scheduler rebuilt the roster).
Options: BENCH_GROUPS (10000; 0 skips step 1), BENCH_ROSTER (warm), BENCH_QUOTA_PER_MIN (2400),
BENCH_QUOTA_GROUPS (400), BENCH_LOG_LEVEL (WARNING; INFO makes the replicas log each batch's
stage times: for diagnosis), BENCH_LOG_DIR (keep the replicas' logs), BENCH_SENDER_LOOPS
(2), BENCH_SENDER_BATCH (200), BENCH_SENDER_CONCURRENCY (64) per replica.
"""

import asyncio
import bisect
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from services.broadcast.composition import BroadcastService, build
from services.broadcast.domain import NoticeDraft
from services.broadcast.groups import Group
from services.broadcast.settings import BroadcastSettings
from shared.auth import Role, StaffUser
from shared.subjects import (
    BROADCAST_EVENTS_STREAM,
    BROADCAST_OUTCOME_PREFIX,
    broadcast_outcome_subject,
)
from tools.localstack.servers import free_port, start_mongo, start_nats, wait_for_port

GROUPS = int(os.environ.get("BENCH_GROUPS", "10000"))
COLD_ROSTER = os.environ.get("BENCH_ROSTER", "warm") == "cold"
QUOTA = int(os.environ.get("BENCH_QUOTA_PER_MIN", "2400"))
QUOTA_GROUPS = int(os.environ.get("BENCH_QUOTA_GROUPS", "400"))
HEADROOM = float(os.environ.get("BENCH_HEADROOM", "0.95"))  # limiter rate / quota
FINAL = ("sent", "failed", "cancelled")
EDITOR = StaffUser(id="bench", name="bench", roles=frozenset({Role.EDITOR}))


def env_of(settings: BroadcastSettings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump(mode="json").items():
        if value is not None:
            env[name.upper()] = value if isinstance(value, str) else json.dumps(value)
    return env


def max_window(times: list[float], width: float = 1.0) -> int:
    """Most events in any window [t, t + width) that starts at an event."""
    times = sorted(times)
    return max((bisect.bisect_left(times, t + width) - i for i, t in enumerate(times)), default=0)


async def final_outcomes(service: BroadcastService) -> int:
    """Outcome events stored so far in a final state. Completion is seen from the stream (a
    sender publishes an outcome only after its result is recorded), with one cheap request per
    poll, so the bench neither scans MongoDB nor handles each event while the workers run; the
    last `sent` event's stream timestamp ends the measured time."""
    subject = f"{BROADCAST_OUTCOME_PREFIX}.>"
    info = await service.js.stream_info(BROADCAST_EVENTS_STREAM.name, subjects_filter=subject)
    per_subject = info.state.subjects or {}
    return sum(per_subject.get(broadcast_outcome_subject(s), 0) for s in FINAL)


def cpu_seconds(pid: int) -> float:
    """User + system CPU seconds a process has used so far (from /proc)."""
    with open(f"/proc/{pid}/stat") as stat:
        fields = stat.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_of(pids: dict[str, int]) -> dict[str, float]:
    found = {}
    for name, pid in pids.items():
        with contextlib.suppress(OSError):
            found[name] = cpu_seconds(pid)
    found["bench (API, planner)"] = time.process_time()
    return found


async def fan_out(
    settings: BroadcastSettings,
    admin: httpx.Client,
    groups: int,
    tag: str,
    log_dir: Path,
    servers: dict[str, int],
) -> dict[str, Any]:
    async with build(settings, workers=False, scheduler=False) as service:
        replicas: list[subprocess.Popen[bytes]] = []
        try:
            ids = [f"9{tag}{i:08d}" for i in range(groups)]
            admin.post(
                "/_admin/seed", json={"groups": [{"group_id": g} for g in ids]}
            ).raise_for_status()
            rows = [Group(group_id=g, name=f"Tổ {g[-5:]}", ward="dong-hai") for g in ids]
            await service.groups.upsert_many(rows, datetime.now(UTC))
            env = env_of(settings)
            for n in range(3):
                with open(log_dir / f"{tag}-replica{n}.log", "ab") as log:
                    replicas.append(
                        subprocess.Popen(
                            [sys.executable, "-m", "services.broadcast.sender"],
                            env=env,
                            stdout=log,
                            stderr=subprocess.STDOUT,
                        )
                    )
            await asyncio.sleep(5)  # replicas connected and fetching
            pids = servers | {f"replica {n}": r.pid for n, r in enumerate(replicas)}
            draft = NoticeDraft.model_validate(
                {
                    "title": "Cảnh báo lừa đảo",
                    "body": "Không chuyển tiền cho người lạ tự xưng công an.",
                    "category": "fraud_warning",
                    "severity": "Severe",
                    "urgency": "Immediate",
                    "certainty": "Likely",
                    "targets": {"wards": ["dong-hai"]},
                }
            )
            if COLD_ROSTER:
                await service.groups.rosters.delete_many({})
            before = await final_outcomes(service)
            cpu_before = cpu_of(pids)
            started = datetime.now(UTC)
            notice, _ = await service.notice_service.create(draft, EDITOR)
            deadline = time.monotonic() + max(600.0, groups / 5)
            while await final_outcomes(service) - before < groups:
                if time.monotonic() > deadline:
                    raise TimeoutError("fan-out did not finish")
                await asyncio.sleep(0.1)
            cpu_after = cpu_of(pids)
            last = await service.js.get_last_msg(
                BROADCAST_EVENTS_STREAM.name, broadcast_outcome_subject("sent")
            )
            elapsed = ((last.time or datetime.now(UTC)) - started).total_seconds()
            counts, _ = await service.deliveries.progress(notice.id)
        finally:
            for replica in replicas:
                replica.terminate()
            for replica in replicas:
                replica.wait(30)
    messages = admin.get("/_admin/messages", params={"kind": "group"}).json()
    mine = [m for m in messages if m["group_id"].startswith(f"9{tag}")]
    times = sorted(float(m["sent_time"]) for m in mine)
    per_group = Counter(m["group_id"] for m in mine)
    steady = (len(times) - 1) / (times[-1] - times[0]) if len(times) > 1 else 0.0
    cpu_ms = {
        name: round((cpu_after[name] - cpu_before[name]) * 1000 / groups, 3)
        for name in cpu_after
        if name in cpu_before
    }
    return {
        "roster": "cold" if COLD_ROSTER else "warm",
        "groups": groups,
        "sent": counts.get("sent", 0),
        "failed": counts.get("failed", 0),
        "recorded": len(mine),
        "exactly_once": set(per_group.values()) == {1} and len(per_group) == groups,
        "seconds": round(elapsed, 2),
        "deliveries_per_s": round(groups / elapsed, 1),
        "fake_accept_rate_per_s": round(steady, 1),
        "max_1s_window": max_window(times),
        "cpu_ms_per_delivery": cpu_ms,
        "cpu_ms_per_delivery_total": round(sum(cpu_ms.values()), 3),
    }


async def main() -> None:
    with tempfile.TemporaryDirectory(prefix="bench-broadcast-") as tmp:
        root = Path(tmp)
        logs = Path(os.environ.get("BENCH_LOG_DIR") or root)
        logs.mkdir(parents=True, exist_ok=True)
        nats = start_nats(root / "nats") if not os.environ.get("NATS_URL") else None
        mongo = start_mongo(root / "mongo") if not os.environ.get("MONGODB_URL") else None
        port = free_port()
        fake_env = dict(os.environ, HTTP_PORT=str(port), FAKE_RATE_LIMIT_PER_MINUTE="100000000")
        fake_env["FAKE_SEED_DEMO"] = "false"
        fake = subprocess.Popen(
            [sys.executable, "-m", "tools.fake_zalo"],
            env=fake_env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        admin = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        servers = {"fake zalo": fake.pid}
        if nats:
            servers["nats-server"] = nats.process.pid
        if mongo:
            servers["mongodb (ferretdb)"] = mongo.process.pid
        try:
            wait_for_port(port)
            base = {
                "nats_url": os.environ.get("NATS_URL") or (nats.url if nats else ""),
                "mongodb_url": os.environ.get("MONGODB_URL") or (mongo.url if mongo else ""),
                "zalo_api_base": f"http://127.0.0.1:{port}",
                "zalo_oauth_base": f"http://127.0.0.1:{port}",
                "log_level": os.environ.get("BENCH_LOG_LEVEL", "WARNING"),
                "zalo_retry_attempts": 1,
                "sender_batch": int(os.environ.get("BENCH_SENDER_BATCH", "200")),
                "sender_concurrency": int(os.environ.get("BENCH_SENDER_CONCURRENCY", "64")),
                "sender_loops": int(os.environ.get("BENCH_SENDER_LOOPS", "2")),
            }
            fast = BroadcastSettings(
                **base, mongodb_database="bench_fast", zalo_rate_limits={}, zalo_rate_bucket="rb1"
            )
            if GROUPS > 0:
                result = await fan_out(fast, admin, GROUPS, "1", logs, servers)
                print(json.dumps({"scenario": "no quota, 3 replicas", **result}))
            admin.post("/_admin/quota", params={"per_minute": QUOTA}).raise_for_status()
            limited = BroadcastSettings(
                **base,
                mongodb_database="bench_quota",
                zalo_rate_limits={"group": QUOTA / 60 * HEADROOM},
                zalo_rate_bucket="rb2",
            )
            result = await fan_out(limited, admin, QUOTA_GROUPS, "2", logs, servers)
            ratio = result["max_1s_window"] / (QUOTA / 60)
            print(
                json.dumps({"scenario": f"quota {QUOTA}/min", **result, "ratio": round(ratio, 3)})
            )
        finally:
            admin.close()
            fake.terminate()
            fake.wait(10)
            if mongo:
                mongo.stop()
            if nats:
                nats.stop()


if __name__ == "__main__":
    asyncio.run(main())
