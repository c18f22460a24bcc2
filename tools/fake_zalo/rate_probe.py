"""Measure the Zalo client's shared rate limit from several OS processes against the fake.

    python -m tools.fake_zalo.rate_probe worker NATS_URL SETTINGS_JSON GO READY CALLS TASKS

is one client process (used by `measure`): it connects, reports ready, waits for the go message
(a NATS barrier, no clock), makes CALLS `get_oa_info` calls from TASKS concurrent tasks and
prints how many it made. `measure` starts the processes and reads the fake's call log: the
achieved rate is (calls - 1) / (last call - first call) as the fake saw them, and
`max_in_window(1.0)` the most calls in any one-second window.
"""

import asyncio
import bisect
import json
import sys
from dataclasses import dataclass, field

import httpx
from nats.aio.msg import Msg

from shared.jetstream import connect
from shared.settings import ZaloSettings
from shared.zalo.client import ZaloClient

PROBED_PATH = "/v2.0/oa/getoa"


@dataclass(frozen=True)
class RateMeasurement:
    calls: int
    per_process: list[int]
    seconds: float
    stamps: list[float] = field(default_factory=list, repr=False)  # sorted, as the fake saw them

    @property
    def rate(self) -> float:
        return (self.calls - 1) / self.seconds if self.seconds > 0 else float("inf")

    def max_in_window(self, width: float = 1.0) -> int:
        """The most calls in any window [t, t + width) that starts at a call."""
        stamps = self.stamps
        return max(
            (bisect.bisect_left(stamps, t + width) - i for i, t in enumerate(stamps)), default=0
        )


async def worker(url: str, settings_json: str, go: str, ready: str, calls: int, tasks: int) -> int:
    """One client process: ready -> wait for go -> `calls` calls from `tasks` tasks."""
    nc = await connect(url, name="rate-probe")
    started = asyncio.Event()

    async def on_go(_msg: Msg) -> None:
        started.set()

    try:
        subscription = await nc.subscribe(go, cb=on_go)
        async with ZaloClient(ZaloSettings(**json.loads(settings_json)), nats=nc) as zalo:
            await nc.publish(ready, b"ready")
            await asyncio.wait_for(started.wait(), 60)
            budget = iter(range(calls))

            async def run() -> int:
                made = 0
                for _ in budget:
                    await zalo.get_oa_info()
                    made += 1
                return made

            made = sum(await asyncio.gather(*(run() for _ in range(tasks))))
        await subscription.unsubscribe()
        return made
    finally:
        await nc.close()


async def measure(
    nats_url: str,
    settings: ZaloSettings,
    *,
    processes: int = 2,
    calls_per_process: int = 100,
    tasks: int = 4,
) -> RateMeasurement:
    """Run `processes` client processes at once and measure the rate the fake received."""
    nc = await connect(nats_url, name="rate-probe-driver")
    try:
        go, ready = nc.new_inbox(), nc.new_inbox()
        readies: asyncio.Queue[bytes] = asyncio.Queue()

        async def on_ready(msg: Msg) -> None:
            await readies.put(msg.data)

        await nc.subscribe(ready, cb=on_ready)
        args = [settings.model_dump_json(), go, ready, str(calls_per_process), str(tasks)]
        children = [
            await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                __name__,
                "worker",
                nats_url,
                *args,
                stdout=asyncio.subprocess.PIPE,
            )
            for _ in range(processes)
        ]
        for _ in children:
            await asyncio.wait_for(readies.get(), 60)
        await nc.publish(go, b"go")
        outputs = [await asyncio.wait_for(child.communicate(), 120) for child in children]
    finally:
        await nc.close()
    if any(child.returncode for child in children):
        raise RuntimeError(f"a probe process failed: {[c.returncode for c in children]}")
    async with httpx.AsyncClient(base_url=settings.zalo_api_base) as http:
        log = (await http.get("/_admin/calls", params={"path": PROBED_PATH})).json()
    stamps = sorted(call["at"] for call in log)
    return RateMeasurement(
        calls=len(stamps),
        per_process=[int(out.decode().strip().splitlines()[-1]) for out, _ in outputs],
        seconds=stamps[-1] - stamps[0],
        stamps=stamps,
    )


if __name__ == "__main__" and sys.argv[1:2] == ["worker"]:
    nats_url, settings_json, go, ready, calls, tasks = sys.argv[2:8]
    print(asyncio.run(worker(nats_url, settings_json, go, ready, int(calls), int(tasks))))
