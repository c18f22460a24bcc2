"""The console's queue page under weight: 1,000 open cases, then 10 new tips per second.

Starts the whole system as `make run` does (`tools.localstack` on a free port range, its own
NATS and MongoDB-wire server, a temporary run folder), writes `--cases` open cases of one ward
(Quang Phú, the DEMO dispatcher's) into reports' store with reports' own `insert_cases` (the
write intake makes; `tests/console/seed.py`), and drives Debian's Chromium with Playwright as
the DEMO dispatcher:

1. **Load.** `--loads` times: open the console (signed in: the session cookie is kept) and
   time, in the page, from navigation start to the moment the queue's list holds its rows
   (a MutationObserver installed before the page's scripts; `performance.now()`).
2. **Live.** On the loaded queue, `--rate` tips per second for `--seconds` through the real
   path: signed webhooks into ingest → JetStream → reports' triage → reports' SSE stream →
   the page. For each tip: wall-clock time from just before its webhook is posted to the moment
   its row is in the DOM (same machine, same clock). Meanwhile the main thread's long tasks
   (PerformanceObserver `longtask`, > 50 ms) and the event-loop lag (a 50 ms timer's lateness).

Prints the medians (and p95 / max) and the load average. All on loopback; the servers and the
browser share this machine's cores.
Run: `.venv/bin/python -m bench.console` (or `make bench`).
"""

import argparse
import os
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from playwright.sync_api import Page, sync_playwright

from shared.settings import ZaloSettings
from tests.browser import CHROMIUM, CHROMIUM_FLAGS
from tests.console.seed import seed_cases, stack_mongodb_url
from tests.system.stack import Stack, running_stack
from tools.localstack.demo_accounts import DEMO_PASSWORD
from tools.zalo_sim.events import EventFactory, encode, signed_request

# Installed before the page's own scripts: when the queue first holds rows, each live tip's
# first appearance, the long tasks and the lateness of a 50 ms timer.
PROBE = """
window.bench = { listed: null, seen: {}, longTasks: [], lags: [] };
new PerformanceObserver((list) => {
  for (const entry of list.getEntries()) {
    window.bench.longTasks.push([entry.startTime, entry.duration]);
  }
}).observe({ type: "longtask", buffered: true });
(() => {
  let expected = performance.now() + 50;
  setInterval(() => {
    const now = performance.now();
    window.bench.lags.push([now, Math.max(0, now - expected)]);
    expected = now + 50;
  }, 50);
})();
// A stream of its own: when each new case's event reaches the browser (by case id).
window.bench.streamed = {};
addEventListener("DOMContentLoaded", () => {
  new EventSource("/api/reports/cases/stream").addEventListener("tip.triaged", (event) => {
    const id = JSON.parse(event.data).case_id;
    if (!(id in window.bench.streamed)) window.bench.streamed[id] = Date.now();
  });
});
const marker = /bench-tip-(\\d+)/;
new MutationObserver((mutations) => {
  const queue = document.getElementById("queue");
  if (!queue) return;
  const complete = queue.dataset.loaded === "all" && queue.childElementCount > 0;
  if (window.bench.listed === null && complete) window.bench.listed = performance.now();
  for (const mutation of mutations) {
    for (const node of mutation.addedNodes) {
      const found = node.textContent && node.textContent.match(marker);
      if (found && queue.contains(node) && !(found[1] in window.bench.seen)) {
        window.bench.seen[found[1]] = [Date.now(), node.dataset ? node.dataset.case : null];
      }
    }
  }
}).observe(document, { childList: true, subtree: true });
"""


def sign_in(page: Page, url: str) -> None:
    page.goto(f"{url}/")
    page.get_by_label("Tên đăng nhập").fill("demo-dispatcher")
    page.get_by_label("Mật khẩu").fill(DEMO_PASSWORD)
    page.get_by_role("button", name="Đăng nhập").click()
    page.locator("#live-state", has_text="Đang cập nhật trực tiếp.").wait_for(timeout=60_000)


# Where a load's time goes: each request's start and end (Resource Timing), and the page's
# own work after the queue's answer.
PARTS = """() => {
  const parts = {};
  for (const entry of performance.getEntriesByType("resource")) {
    const name = new URL(entry.name).pathname.replace(/^\\/api\\//, "");
    parts[name] = [Math.round(entry.startTime), Math.round(entry.responseEnd)];
  }
  return parts;
}"""


def load_once(page: Page, url: str) -> tuple[float, int, dict[str, list[int]]]:
    """Milliseconds from navigation start to the queue's rows, how many rows, and when each
    request started and ended."""
    page.goto(f"{url}/")
    page.wait_for_function("() => window.bench && window.bench.listed !== null", timeout=60_000)
    listed = float(page.evaluate("window.bench.listed"))
    rows = int(page.evaluate("document.querySelectorAll('#queue li').length"))
    return listed, rows, page.evaluate(PARTS)


def send_tips(stack: Stack, rate: float, seconds: float, sent: dict[int, float]) -> None:
    """`rate` tips/s for `seconds` through ingest's webhook, each from a resident who has not
    written before (so each opens its own case); `sent[n]` = wall-clock ms before posting."""
    settings = ZaloSettings()
    factory = EventFactory(settings.zalo_app_id, seed=int(time.time()))
    url = f"{stack.url('ingest')}/webhooks/zalo"
    start = time.monotonic()
    with httpx.Client(timeout=10) as client:
        for n in range(int(rate * seconds)):
            time.sleep(max(0.0, start + n / rate - time.monotonic()))
            body = factory.make("user_send_text")
            urgent = n % 10 == 0  # one in ten says a knife: urgent, so it rings and goes on top
            what = "Có kẻ cầm dao cướp" if urgent else "Mất trộm xe đạp"
            body["message"]["text"] = f"{what} ở phường Quang Phú, mã bench-tip-{n}"
            raw = encode(body)
            headers = signed_request(
                raw, settings.zalo_app_id, settings.zalo_oa_secret_key, body["timestamp"]
            )
            sent[n] = time.time() * 1000
            client.post(url, content=raw, headers=headers).raise_for_status()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def live(page: Page, stack: Stack, rate: float, seconds: float) -> dict[str, Any]:
    began = float(page.evaluate("performance.now()"))
    sent: dict[int, float] = {}
    sender = threading.Thread(target=send_tips, args=(stack, rate, seconds, sent))
    sender.start()
    while sender.is_alive():
        page.wait_for_timeout(200)  # the page runs; Playwright's loop stays in this thread
    sender.join()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if int(page.evaluate("Object.keys(window.bench.seen).length")) >= len(sent):
            break
        page.wait_for_timeout(200)
    page.wait_for_timeout(1_000)
    bench: dict[str, Any] = page.evaluate("window.bench")
    seen = {int(n): at for n, (at, _) in bench["seen"].items()}
    latencies = [seen[n] - at for n, at in sent.items() if n in seen]
    # webhook → the stream's event in the browser (the services), then → the row (the page)
    case_of = {int(n): case_id for n, (_, case_id) in bench["seen"].items()}
    streamed = {n: bench["streamed"][c] for n, c in case_of.items() if c in bench["streamed"]}
    to_stream = [streamed[n] - sent[n] for n in streamed if n in sent]
    to_row = [seen[n] - streamed[n] for n in streamed]
    tasks = [duration for start, duration in bench["longTasks"] if start >= began]
    lags = [lag for at, lag in bench["lags"] if at >= began]
    return {
        "tips": len(sent),
        "shown": len(latencies),
        "latency_ms": latencies,
        "to_stream_ms": to_stream,
        "to_row_ms": to_row,
        "long_tasks": tasks,
        "lags_ms": lags,
        "rows": int(page.evaluate("document.querySelectorAll('#queue li').length")),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=1000)
    parser.add_argument("--loads", type=int, default=7)
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--more", type=int, default=3, help="'show more' clicks before live")
    args = parser.parse_args()
    assert CHROMIUM is not None, "no chromium: run `make browser`"
    with (
        tempfile.TemporaryDirectory(prefix="bench-console-") as run_dir,
        running_stack(Path(run_dir)) as stack,
    ):
        seed_cases(stack_mongodb_url(stack.banner), args.cases, label="bench-console")
        with sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            context = browser.new_context(viewport={"width": 1366, "height": 768}, locale="vi-VN")
            page = context.new_page()
            page.add_init_script(PROBE)
            url = stack.url("console")
            sign_in(page, url)
            loads = [load_once(page, url) for _ in range(args.loads)]
            page.locator("#live-state", has_text="Đang cập nhật trực tiếp.").wait_for()
            # Rows enough that new normal tips (below the urgent and high ones) are shown.
            for _ in range(args.more):
                page.get_by_role("button", name="Hiển thị thêm").click()
            result = live(page, stack, args.rate, args.seconds)
            browser.close()
    times = [ms for ms, _, _ in loads]
    print(f"open cases in the store: {args.cases}; rows rendered at load: {loads[-1][1]}")
    median_load = sorted(loads, key=lambda load: load[0])[len(loads) // 2]
    print(
        "the median load's requests (start → end, ms after navigation start): "
        + ", ".join(f"{name} {a}→{b}" for name, (a, b) in median_load[2].items())
    )
    print(
        f"queue load (navigation start → rows rendered), {args.loads} loads: "
        f"median {statistics.median(times):.0f} ms, max {max(times):.0f} ms "
        f"({', '.join(f'{t:.0f}' for t in times)})"
    )
    latency = result["latency_ms"]
    print(
        f"live: {result['tips']} tips at {args.rate:g}/s, {result['shown']} shown "
        f"({result['rows']} rows after); webhook → row median {statistics.median(latency):.0f} ms, "
        f"p95 {percentile(latency, 0.95):.0f} ms, max {max(latency):.0f} ms"
    )
    to_stream, to_row = result["to_stream_ms"], result["to_row_ms"]
    if to_stream:
        print(
            f"  of which webhook → stream event in the browser median "
            f"{statistics.median(to_stream):.0f} ms (p95 {percentile(to_stream, 0.95):.0f}), "
            f"stream event → row median {statistics.median(to_row):.0f} ms "
            f"(p95 {percentile(to_row, 0.95):.0f}; the page reads the case, then renders)"
        )
    tasks, lags = result["long_tasks"], result["lags_ms"]
    busy = sum(tasks) / (args.seconds * 1000)
    print(
        f"main thread while live: {len(tasks)} long tasks (> 50 ms), "
        f"longest {max(tasks, default=0):.0f} ms, {busy:.1%} of the time in long tasks; "
        f"event-loop lag median {statistics.median(lags):.1f} ms, "
        f"p99 {percentile(lags, 0.99):.0f} ms, max {max(lags):.0f} ms"
    )
    print(f"load average: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")


if __name__ == "__main__":
    main()
