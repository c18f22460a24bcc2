"""A small HTTP/1.1 load generator on raw asyncio streams (keep-alive, pre-built requests).

Two modes, both against loopback only:
- closed loop: `connections` workers send back to back for `seconds` → throughput;
- open loop: requests are *scheduled* at a fixed rate and each latency is measured from its
  scheduled time, so a stalled server cannot hide its queue (no coordinated omission).
Run as a child process so that its CPU use is its own and not the server's event loop.
"""

import asyncio
import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass


@dataclass
class LoadResult:
    sent: int
    ok: int
    errors: int
    seconds: float
    latencies_ms: list[float]

    @property
    def throughput(self) -> float:
        return self.ok / self.seconds

    def percentile(self, p: float) -> float:
        ordered = sorted(self.latencies_ms)
        return (
            ordered[min(len(ordered) - 1, int(p / 100 * len(ordered)))] if ordered else float("nan")
        )

    def summary(self) -> dict[str, float]:
        return {
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "seconds": round(self.seconds, 3),
            "throughput_rps": round(self.throughput, 1),
            "p50_ms": round(self.percentile(50), 2),
            "p99_ms": round(self.percentile(99), 2),
            "mean_ms": round(statistics.fmean(self.latencies_ms), 2) if self.latencies_ms else 0.0,
        }


def http_request(host: str, port: int, path: str, body: bytes, headers: dict[str, str]) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", f"Content-Length: {len(body)}"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, request: bytes
) -> int:
    writer.write(request)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n"):
        if line[:15].lower() == b"content-length:":
            length = int(line[15:])
    if length:
        await reader.readexactly(length)
    return status


async def closed_loop(
    host: str, port: int, requests: Iterator[bytes], connections: int, seconds: float
) -> LoadResult:
    latencies: list[float] = []
    counts = {"sent": 0, "ok": 0, "errors": 0}
    deadline = time.perf_counter() + seconds

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while time.perf_counter() < deadline:
                request = next(requests, None)
                if request is None:  # the pre-built requests ran out: the run ends early
                    break
                started = time.perf_counter()
                counts["sent"] += 1
                status = await _exchange(reader, writer, request)
                latencies.append((time.perf_counter() - started) * 1000)
                counts["ok" if status == 200 else "errors"] += 1
        finally:
            writer.close()

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(connections)))
    return LoadResult(
        counts["sent"], counts["ok"], counts["errors"], time.perf_counter() - started, latencies
    )


async def open_loop(
    host: str, port: int, requests: Iterator[bytes], rate: float, seconds: float, connections: int
) -> LoadResult:
    queue: asyncio.Queue[tuple[float, bytes] | None] = asyncio.Queue()
    latencies: list[float] = []
    counts = {"sent": 0, "ok": 0, "errors": 0}
    total = int(rate * seconds)

    async def worker() -> None:
        reader, writer = await asyncio.open_connection(host, port)
        try:
            while (item := await queue.get()) is not None:
                scheduled, request = item
                counts["sent"] += 1
                status = await _exchange(reader, writer, request)
                latencies.append((time.perf_counter() - scheduled) * 1000)
                counts["ok" if status == 200 else "errors"] += 1
        finally:
            writer.close()

    workers = [asyncio.create_task(worker()) for _ in range(connections)]
    await asyncio.sleep(0.2)  # let the connections open before the clock starts
    start = time.perf_counter()
    for n in range(total):
        scheduled = start + n / rate
        delay = scheduled - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((scheduled, next(requests)))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    return LoadResult(
        counts["sent"], counts["ok"], counts["errors"], time.perf_counter() - start, latencies
    )
