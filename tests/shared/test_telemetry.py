"""shared.metrics, shared.tracing, shared.telemetry: names, labels, trace ids, multiprocess."""

import asyncio
import json
import logging
import os
import subprocess
import sys
import threading
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode
from starlette.types import Receive, Scope, Send

from shared import metrics
from shared.logging import JsonFormatter
from shared.span_export import ExporterProcess
from shared.telemetry import ObservedEndpoint, instrument
from shared.tracing import configure_tracing, headers_trace_id, inject
from shared.zalo.errors import ZaloHttpError, error_for
from shared.zalo.telemetry import ZaloTelemetry
from tests.observability.conftest import _EXPORTER
from tests.shared.prometheus import sample

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def spans() -> InMemorySpanExporter:
    configure_tracing("tests", processor=SimpleSpanProcessor(_EXPORTER))
    _EXPORTER.clear()
    return _EXPORTER


def line(message: str) -> dict[str, object]:
    record = logging.makeLogRecord({"msg": message, "levelname": "INFO", "name": "t"})
    return json.loads(JsonFormatter().format(record))  # type: ignore[no-any-return]


class TestNames:
    def test_counter_and_histogram_follow_the_convention(self) -> None:
        counter = metrics.counter("unit", "things", "Things")
        histogram = metrics.histogram("unit", "wait_seconds", "Waits")
        counter.inc()
        histogram.observe(0.2)
        text = metrics.exposition().decode()
        assert sample(text, "binhyen_unit_things_total") >= 1
        assert sample(text, "binhyen_unit_wait_seconds_count") >= 1

    def test_asking_twice_returns_the_same_metric_and_a_clash_is_refused(self) -> None:
        assert metrics.counter("unit", "same", "x") is metrics.counter("unit", "same", "x")
        with pytest.raises(TypeError):
            metrics.gauge("unit", "same", "x")


class TestTraceIdsInLogs:
    def test_a_line_written_in_a_span_names_its_trace(self, spans: InMemorySpanExporter) -> None:
        with trace.get_tracer("t").start_as_current_span("work") as span:
            written = line("inside")
        context = span.get_span_context()
        assert written["trace_id"] == format(context.trace_id, "032x")
        assert written["span_id"] == format(context.span_id, "016x")
        assert "trace_id" not in line("outside")

    def test_inject_writes_the_current_traceparent(self, spans: InMemorySpanExporter) -> None:
        with trace.get_tracer("t").start_as_current_span("work") as span:
            headers = inject({})
        assert headers_trace_id(headers) == format(span.get_span_context().trace_id, "032x")
        assert inject({}) == {}  # no span, no header


def small_app() -> FastAPI:
    app = FastAPI()

    @app.get("/cases/{case_id}")
    async def case(case_id: str) -> dict[str, str]:
        return {"id": case_id}

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


class TestHttp:
    async def test_route_template_not_path_and_incoming_trace_continued(
        self, spans: InMemorySpanExporter
    ) -> None:
        app = instrument(small_app(), "unit_http")
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        parent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            before = metrics.exposition().decode()
            await http.get("/cases/c-123?q=a+citizen's+words", headers={"traceparent": parent})
            await http.get("/nowhere/0912345678")
            await http.get("/boom")
            after = metrics.exposition().decode()
        name = "binhyen_unit_http_http_requests_total"

        def moved(**labels: str) -> float:
            return sample(after, name, **labels) - sample(before, name, **labels)

        assert moved(route="/cases/{case_id}", status="200") == 1
        assert moved(route="unmatched", status="404") == 1
        assert moved(route="/boom", status="500") == 1
        assert "c-123" not in after
        assert "0912345678" not in after
        finished = spans.get_finished_spans()
        assert [s.name for s in finished] == ["GET /cases/{case_id}", "GET unmatched", "GET /boom"]
        server = finished[0]
        assert format(server.context.trace_id, "032x") == "0af7651916cd43dd8448eb211c80319c"
        assert "citizen" not in json.dumps(dict(server.attributes or {}))

    async def test_probes_and_scrapes_are_neither_traced_nor_counted(
        self, spans: InMemorySpanExporter
    ) -> None:
        app = small_app()
        app.get("/healthz")(lambda: {"status": "ok"})
        transport = httpx.ASGITransport(app=instrument(app, "unit_probe"))
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            assert (await http.get("/healthz")).status_code == 200
        assert not spans.get_finished_spans()
        assert "binhyen_unit_probe_http_requests_total{" not in metrics.exposition().decode()


class TestZaloCalls:
    def test_results_are_counted_by_code(self, spans: InMemorySpanExporter) -> None:
        zalo = ZaloTelemetry("unit_zalo")
        with zalo.call("POST", "/v3.0/oa/group/message", "group"):
            pass
        for exc in (
            error_for(-32, "rate"),
            ZaloHttpError(0, "gone", retryable=True, maybe_delivered=False),
        ):
            with pytest.raises(type(exc)), zalo.call("POST", "/v3.0/oa/group/message", "group"):
                raise exc
        text = metrics.exposition().decode()
        name = "binhyen_unit_zalo_zalo_api_calls_total"
        for code in ("0", "-32", "transport"):
            assert sample(text, name, code=code, family="group") == 1, code
        assert [s.name for s in spans.get_finished_spans()] == [
            "zalo POST /v3.0/oa/group/message"
        ] * 3


def test_processes_sharing_a_multiprocess_folder_are_summed(tmp_path: Path) -> None:
    """Two worker processes count; a third serves the page with both counts added."""
    env = os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path), "PYTHONPATH": str(REPO)}
    count = "from shared import metrics; metrics.counter('unit', 'worked', 'Work').inc({n})"
    for n in (2, 3):
        subprocess.run([sys.executable, "-c", count.format(n=n)], env=env, check=True)
    page = subprocess.run(
        [sys.executable, "-c", "from shared import metrics; print(metrics.exposition().decode())"],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    assert sample(page, "binhyen_unit_worked_total") == 5


UNRECORDED_ROOT = """
import json, logging
from opentelemetry import trace
from shared.logging import JsonFormatter
from shared.tracing import configure_tracing, current_ids, enter_root, exit_root, inject
configure_tracing("unit")  # no exporter: no trace is recorded, every one keeps its ids
root = enter_root("t", "POST /hook", trace.SpanKind.SERVER, {})
record = logging.makeLogRecord({"msg": "inside", "levelname": "INFO", "name": "t"})
line = json.loads(JsonFormatter().format(record))
inside = {"recorded": root.recorded, "headers": inject({}), "line": line}
exit_root(root)
print(json.dumps({**inside, "after": [inject({}), current_ids()]}))
"""


def test_an_unrecorded_root_has_no_span_but_its_ids_reach_headers_and_log_lines() -> None:
    """`enter_root` for a trace that is not recorded (a fresh process: tracing configured
    without an exporter, as `make run` runs): no span, a `traceparent` with the sampled bit
    clear, the same ids in a log line written inside, nothing once left."""
    env = os.environ | {"PYTHONPATH": str(REPO)}
    env.pop("OTEL_SDK_DISABLED", None)
    out = subprocess.run(
        [sys.executable, "-c", UNRECORDED_ROOT], env=env, check=True, capture_output=True, text=True
    ).stdout
    seen = json.loads(out)
    assert seen["recorded"] is None
    version, trace_id, span_id, flags = seen["headers"]["traceparent"].split("-")
    assert (version, flags, len(trace_id), len(span_id)) == ("00", "02", 32, 16)
    assert int(trace_id, 16)
    assert int(span_id, 16)
    assert (seen["line"]["trace_id"], seen["line"]["span_id"]) == (trace_id, span_id)
    assert seen["after"] == [{}, None]


def observed_app(service: str) -> FastAPI:
    """An app whose `POST /hook` is an `ObservedEndpoint` (as ingest's webhook is): it answers
    with the `traceparent` it would send on, or fails when asked to."""
    app = FastAPI()
    app.include_router(metrics.metrics_router())

    async def hook(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["query_string"] == b"fail":
            raise RuntimeError("a citizen's words")
        body = json.dumps(inject({})).encode()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": body})

    app.observed_endpoints = {"/hook": ObservedEndpoint(hook, service, "POST", "/hook")}  # type: ignore[attr-defined]
    return app


class TestObservedEndpoint:
    async def test_recorded_roots_become_spans_and_failures_are_counted(
        self, spans: InMemorySpanExporter
    ) -> None:
        """With every trace recorded (a test's processor), each request's root span reaches the
        processor when it ends: the ids its `traceparent` carried, no parent, the route, and
        for a failure an error status naming the exception's type (never its message)."""
        transport = httpx.ASGITransport(app=instrument(observed_app("unit_obs"), "unit_obs"))
        transport.raise_app_exceptions = False
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            before = (await http.get("/metrics")).text
            headers = (await http.post("/hook")).json()
            assert (await http.post("/hook?fail")).status_code == 500
            after = (await http.get("/metrics")).text
        ok, failed = spans.get_finished_spans()
        _, trace_id, span_id, flags = headers["traceparent"].split("-")
        assert (format(ok.context.trace_id, "032x"), format(ok.context.span_id, "016x")) == (
            trace_id,
            span_id,
        )
        assert flags == "03"  # sampled, random trace id: as the SDK flags its own roots
        assert (ok.name, ok.kind, ok.parent) == ("POST /hook", trace.SpanKind.SERVER, None)
        assert dict(ok.attributes or {}) == {"http.request.method": "POST", "http.route": "/hook"}
        assert ok.status.status_code == StatusCode.UNSET
        assert ok.start_time is not None
        assert ok.end_time is not None
        assert ok.end_time >= ok.start_time
        assert failed.status.status_code == StatusCode.ERROR
        assert failed.status.description == "RuntimeError"
        assert "citizen" not in repr(failed.events) + str(failed.status.description)

        def moved(name: str, **labels: str) -> float:
            return sample(after, name, **labels) - sample(before, name, **labels)

        # every request's duration and the failure, though fewer than a batch: the scrape
        # hands the batched observations over first
        assert moved("binhyen_unit_obs_http_request_duration_seconds_count", route="/hook") == 2
        assert moved("binhyen_unit_obs_http_requests_total", route="/hook", status="500") == 1


class TestBatched:
    def test_values_reach_the_library_by_the_batch_and_before_a_scrape(self) -> None:
        counter = metrics.counter("unit_batched", "things", "Things", ("kind",)).labels("a")
        histogram = metrics.histogram("unit_batched", "wait_seconds", "Waits")
        batched = metrics.Batched()

        def values() -> tuple[float, float]:
            text = metrics.exposition().decode()
            return (
                sample(text, "binhyen_unit_batched_things_total", kind="a"),
                sample(text, "binhyen_unit_batched_wait_seconds_count"),
            )

        start = values()
        for _ in range(batched.BATCH - 1):
            batched.inc(counter)
            batched.observe(histogram, 0.01)
        assert values() == start  # waiting for a full batch
        batched.inc(counter)  # a full batch: everything waiting is handed over
        assert values() == (start[0] + batched.BATCH, start[1] + batched.BATCH - 1)
        batched.inc(counter)
        batched.observe(histogram, 0.01)
        assert values() == (start[0] + batched.BATCH, start[1] + batched.BATCH - 1)
        asyncio.run(metrics.run_scrape_hooks())
        assert values() == (start[0] + batched.BATCH + 1, start[1] + batched.BATCH)


class TestExporterProcess:
    def test_a_child_that_does_not_read_costs_dropped_spans_never_a_wait(self) -> None:
        """The pipe to the exporter's process is never waited on: once it is full, roots are
        counted as dropped and the caller goes on."""
        service = metrics.service()
        metrics.set_service("unit_export")
        exporter = ExporterProcess("unit_export", "http://127.0.0.1:9")
        metrics.set_service(service)
        exporter._args = [sys.executable, "-c", "import time; time.sleep(60)"]  # never reads
        root = ("binhyen.http", "POST /hook", 2, {"http.route": "/hook"}, 1, 2, 3, 4, None)

        def dropped() -> float:
            return sample(metrics.exposition().decode(), "binhyen_unit_export_spans_dropped_total")

        before = dropped()
        done = threading.Event()

        def fill() -> None:
            for _ in range(400):  # 400 × 64 lines of ~90 bytes: far more than a pipe holds
                exporter([root] * 64)
            done.set()

        threading.Thread(target=fill, daemon=True).start()
        try:
            assert done.wait(30), "writing to a full pipe blocked"
            assert dropped() - before > 0
        finally:
            exporter.close(timeout=0.1)
