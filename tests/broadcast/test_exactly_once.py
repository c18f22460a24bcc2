"""Exactly once under a crash: kill -9 a sender replica (a real process) mid fan-out."""

import asyncio
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from tests.broadcast.builders import (
    EDITOR,
    add_groups,
    bridge_echoes,
    notice_body,
    settings_env,
    wait_settled,
)
from tests.polling import eventually

# The replicas share the group-send quota of a real OA app: Zalo allows 4,000 calls/minute per
# app, so the client's shared limiter runs them at 60 posts/s (3,600/min); the fake itself has
# no quota. 2,000 groups then take ~35 s, and the kill lands after ~1/7 of them.
# Deadlines are generous (only a hang should fail them): on a loaded 2-core CI machine the
# replicas start slowly and send below the quota.
pytestmark = [pytest.mark.integration, pytest.mark.slow, pytest.mark.timeout(600)]
GROUP_RATE = 60.0
GROUPS = int(os.environ.get("BC_KILL_GROUPS", "2000"))
REPLICAS = 3


@pytest.fixture
def spawn(tmp_path):
    """Start sender replicas as real processes; every one is ended after the test."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str]) -> subprocess.Popen[bytes]:
        with open(tmp_path / f"replica{len(started)}.log", "ab") as log:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.broadcast.sender"],
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
        started.append(process)
        return process

    yield start
    for process in started:
        if process.poll() is None:
            process.kill()
            process.wait(10)


async def replica_worker(log: Path) -> str:
    """The worker id a replica logged when it started (its claims carry it)."""

    def read() -> list[str]:
        return log.read_text(errors="replace").splitlines() if log.exists() else []

    async def started() -> str | None:
        for line in await asyncio.to_thread(read):
            if line.startswith("{"):
                entry = json.loads(line)
                if entry.get("message") == "sender replica started":
                    return str(entry["worker"])
        return None

    worker: str = await eventually(started, timeout=120, interval=0.2)
    return worker


async def open_claims(h: Any, notice_id: str, worker: str) -> set[str]:
    """The attempts `worker` has claimed of a notice and not recorded a result for."""
    query = {"notice_id": notice_id, "worker": worker}
    claimed = {str(d["_id"]) async for d in h.service.deliveries.claims.find(query, {"_id": 1})}
    recorded = h.service.deliveries.results.find({"_id": {"$in": list(claimed)}}, {"_id": 1})
    return claimed - {str(d["_id"]) async for d in recorded}


async def test_kill_9_sender_replica_during_2000_group_fan_out(
    broadcast, make_settings, spawn, tmp_path
) -> None:
    overrides = {
        "sender_ack_wait": 8.0,
        "claim_lease": 6.0,
        "echo_grace": 4.0,
        "event_ack_wait": 2.0,
        "zalo_rate_limits": {"group": GROUP_RATE, "message": 20.0, "read": 10.0},
    }
    h = await broadcast(workers=False, **overrides)
    wards = ["dong-hai", "bac-ly", "nam-ly", "phu-hai"]
    groups = [g for ward in wards for g in await add_groups(h, GROUPS // 4, ward=ward)]
    env = settings_env(make_settings(**overrides, sender_loops=2, sender_batch=50))
    replicas = [spawn(env) for _ in range(REPLICAS)]
    stop_bridge = asyncio.Event()
    bridge = asyncio.create_task(bridge_echoes(h, stop_bridge, interval=0.5))
    h.fake.admin.set_latency(0.004)
    try:
        body = notice_body(targets={"wards": wards})
        notice = (await h.http.post("/notices", json=body, headers=EDITOR)).json()

        victim = replicas[0]
        victim_worker = await replica_worker(tmp_path / "replica0.log")

        async def under_way() -> bool:
            sent = len(await asyncio.to_thread(h.fake.admin.messages, "group"))
            if sent < GROUPS // 7:
                return False
            # Not only the fan-out under way: the victim itself mid-batch (a slow start under
            # load could otherwise leave it holding nothing when it is killed). It is frozen
            # while its claims are read, so it cannot finish them between the look and the kill
            # (on a loaded host that gap can outlast a batch's last sends).
            os.kill(victim.pid, signal.SIGSTOP)
            if await open_claims(h, notice["id"], victim_worker):
                return True
            os.kill(victim.pid, signal.SIGCONT)
            return False

        await eventually(under_way, timeout=120, interval=0.2)
        os.kill(victim.pid, signal.SIGKILL)  # mid-send: claims held, sends in flight
        await asyncio.to_thread(victim.wait, 30)
        assert victim.returncode == -signal.SIGKILL
        held = await open_claims(h, notice["id"], victim_worker)
        assert held, "the victim held no claim when it was killed"
        counts = await wait_settled(
            h, notice["id"], GROUPS, timeout=120 + GROUPS / GROUP_RATE * 6, interval=1.0
        )
        assert counts == {"sent": GROUPS}
    finally:
        stop_bridge.set()
        await bridge
        for replica in replicas[1:]:
            replica.send_signal(signal.SIGTERM)
        for replica in replicas[1:]:
            await asyncio.to_thread(replica.wait, 60)

    async def echoes_recorded() -> bool:  # the bridge's last echoes are consumed after it stops
        return await h.service.deliveries.echoes.count_documents({}) == GROUPS

    await eventually(echoes_recorded, timeout=60, interval=0.5)  # the echo bridge ran
    # The victim held claims when it died: other replicas took each of those attempts over (by
    # echo, or by sending once the grace had passed and no echo had come).
    taken_over = h.service.deliveries.results.find(
        {"notice_id": notice["id"], "k": {"$gte": 2}}, {"delivery_id": 1}
    )
    finished_later = {str(d["delivery_id"]) async for d in taken_over}
    assert {attempt.rsplit("#", 1)[0] for attempt in held} <= finished_later
    per_group = Counter(m["group_id"] for m in h.fake.admin.messages("group"))
    assert set(per_group) == set(groups)
    assert set(per_group.values()) == {1}
    assert all(r.returncode == 0 for r in replicas[1:])
