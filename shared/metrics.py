"""Prometheus metrics for every service: names, the `/metrics` endpoint, values read at scrape.

Names are `binhyen_<service>_<what>` with a unit suffix: counters are exposed as `…_total`,
durations are `…_seconds` histograms. Labels only ever carry bounded, impersonal values
(an outcome, a Zalo endpoint or error code, a ward slug, a durable name), never a user id,
phone number or text (docs/observability.md lists every metric).

Multiprocess: with `PROMETHEUS_MULTIPROC_DIR` set (before the process starts), every process
writing into that folder (an HTTP replica and its worker-only sender processes, for example)
is summed on each scrape, as prometheus-client documents; without it the process's own default
registry is served.
"""

import collections
import logging
import os
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar

from fastapi import APIRouter
from fastapi.responses import Response
from nats.js import JetStreamContext
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
    multiprocess,
)

log = logging.getLogger(__name__)

PREFIX = "binhyen"
MULTIPROC_DIR = "PROMETHEUS_MULTIPROC_DIR"
# Seconds: from a 1 ms Mongo write to a 30 s Zalo call with its retries.
DURATION_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)

M = TypeVar("M", Counter, Gauge, Histogram)
ScrapeHook = Callable[[], Awaitable[None]]

_service = "app"  # this process's service, set once at start by `set_service`
_metrics: dict[str, Any] = {}
_scrape_hooks: list[ScrapeHook] = []


def set_service(service: str) -> None:
    """Name this process's service: shared components (the Zalo client, consumer gauges, HTTP)
    then register their metrics under `binhyen_<service>_…`."""
    global _service
    _service = service


def service() -> str:
    return _service


def metric_name(service: str, name: str) -> str:
    return f"{PREFIX}_{service.replace('-', '_')}_{name}"


def counter(service: str, name: str, doc: str, labels: Sequence[str] = ()) -> Counter:
    """`binhyen_<service>_<name>_total`."""
    return _once(Counter, metric_name(service, name), doc, labels)


def histogram(
    service: str,
    name: str,
    doc: str,
    labels: Sequence[str] = (),
    buckets: Sequence[float] = DURATION_BUCKETS,
) -> Histogram:
    """`binhyen_<service>_<name>` (give the unit in the name: `…_seconds`, `…_events`)."""
    return _once(Histogram, metric_name(service, name), doc, labels, buckets=tuple(buckets))


def gauge(service: str, name: str, doc: str, labels: Sequence[str] = ()) -> Gauge:
    """A value read at scrape time: with several processes, the most recent one counts."""
    return _once(Gauge, metric_name(service, name), doc, labels, multiprocess_mode="mostrecent")


def _once(kind: type[M], name: str, doc: str, labels: Sequence[str], **kwargs: Any) -> M:
    """Each metric is registered once per process; asking again returns the same object (tests
    build several apps of one service in a process)."""
    existing = _metrics.get(name)
    if existing is None:
        existing = _metrics[name] = kind(name, doc, labelnames=tuple(labels), **kwargs)
    if not isinstance(existing, kind):
        raise TypeError(f"metric {name} is already a {type(existing).__name__}")
    return existing


def on_scrape(hook: ScrapeHook) -> Callable[[], None]:
    """Run `hook` before each scrape (values that are cheaper to read than to keep up to date);
    returns the function that removes it."""
    _scrape_hooks.append(hook)
    return lambda: _scrape_hooks.remove(hook) if hook in _scrape_hooks else None


def exposition() -> bytes:
    if os.environ.get(MULTIPROC_DIR):
        registry = CollectorRegistry()
        multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return generate_latest(registry)
    return generate_latest(REGISTRY)


async def run_scrape_hooks() -> None:
    """What a scrape does before reading the values (`on_scrape`)."""
    for hook in list(_scrape_hooks):
        try:
            await hook()
        except Exception as exc:  # a value that cannot be read keeps its last one
            log.warning("metrics hook failed", extra={"error": type(exc).__name__})


def metrics_router() -> APIRouter:
    """`GET /metrics` in the Prometheus text format."""
    router = APIRouter(tags=["health"])

    @router.get("/metrics", response_class=Response, include_in_schema=False)
    async def metrics() -> Response:
        await run_scrape_hooks()
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return router


class Batched:
    """Counter increments and histogram observations on a hot path, kept as list appends and
    handed to prometheus-client `BATCH` at a time, and before every scrape (a scrape reads
    exact values).

    Measured on ingest's webhook (docs/benchmarks.md, "Observability cost"): one counter
    increment and one observation cost a running service ~5 µs per webhook, about three times
    what they cost in a tight loop, because the library's code ran cold in the CPU's caches
    between webhooks; in batches it runs warm. Only for values updated on the thread that
    serves `/metrics` (an HTTP service's event loop), where the scrape hook flushes them."""

    BATCH = 256

    def __init__(self) -> None:
        self._counted: list[Any] = []
        self._observed: list[tuple[Any, float]] = []
        on_scrape(self._before_scrape)

    def inc(self, child: Counter) -> None:
        """`child.inc()`, for a counter bound to its labels."""
        counted = self._counted
        counted.append(child)
        if len(counted) >= self.BATCH:
            self.flush()

    def observe(self, child: Histogram, value: float) -> None:
        """`child.observe(value)`, for a histogram bound to its labels."""
        observed = self._observed
        observed.append((child, value))
        if len(observed) >= self.BATCH:
            self.flush()

    def flush(self) -> None:
        counted, self._counted = self._counted, []
        for child, times in collections.Counter(counted).items():
            child.inc(times)
        observed, self._observed = self._observed, []
        for child, value in observed:
            child.observe(value)

    async def _before_scrape(self) -> None:
        self.flush()


BATCHED = Batched()


def watch_consumers(
    service_name: str, js: JetStreamContext, durables: Sequence[tuple[str, str]]
) -> Callable[[], None]:
    """Expose each (stream, durable) consumer's state as JetStream reports it, at each scrape:
    messages not yet delivered (lag behind the stream head), delivered but unacknowledged,
    redelivered; and the acknowledged ones as a counter (from the ack floor's moves).
    Returns the function that stops watching (call it before closing the connection)."""
    labels = ("stream", "durable")
    pending = gauge(
        service_name, "consumer_pending_messages", "Messages not yet delivered (lag)", labels
    )
    ack_pending = gauge(
        service_name,
        "consumer_ack_pending_messages",
        "Delivered, not yet acknowledged",
        labels,
    )
    redelivered = gauge(
        service_name,
        "consumer_redelivered_messages",
        "Delivered more than once, not yet acknowledged",
        labels,
    )
    acked = counter(service_name, "consumer_acked", "Messages acknowledged", labels)
    floors: dict[tuple[str, str], int] = {}

    async def refresh() -> None:
        for stream, durable in durables:
            info = await js.consumer_info(stream, durable)
            pending.labels(stream, durable).set(info.num_pending or 0)
            ack_pending.labels(stream, durable).set(info.num_ack_pending or 0)
            redelivered.labels(stream, durable).set(info.num_redelivered or 0)
            floor = (info.ack_floor.consumer_seq or 0) if info.ack_floor else 0
            last = floors.get((stream, durable))
            if last is not None and floor > last:  # the first read is the baseline
                acked.labels(stream, durable).inc(floor - last)
            floors[(stream, durable)] = floor

    return on_scrape(refresh)


def serve_without_http_app() -> None:
    """For a worker-only process (no FastAPI app): serve `/metrics` on `METRICS_PORT` if set,
    from prometheus-client's own server (scrape hooks do not run there: the service's HTTP
    replicas report the consumer gauges)."""
    port = os.environ.get("METRICS_PORT")
    if port:
        from prometheus_client import start_http_server

        host = os.environ.get("HTTP_HOST", "127.0.0.1")
        if os.environ.get(MULTIPROC_DIR):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
            start_http_server(int(port), addr=host, registry=registry)
        else:
            start_http_server(int(port), addr=host)
