"""shared.metrics, shared.tracing, shared.telemetry: names, labels, trace ids, multiprocess."""

import json
import logging
import os
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from fastapi import FastAPI
from opentelemetry import trace
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared import metrics
from shared.logging import JsonFormatter
from shared.telemetry import instrument
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
root = enter_root(trace.get_tracer("t"), "POST /hook", trace.SpanKind.SERVER)
record = logging.makeLogRecord({"msg": "inside", "levelname": "INFO", "name": "t"})
line = json.loads(JsonFormatter().format(record))
inside = {"span": root[0], "headers": inject({}), "line": line}
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
    assert seen["span"] is None
    version, trace_id, span_id, flags = seen["headers"]["traceparent"].split("-")
    assert (version, flags, len(trace_id), len(span_id)) == ("00", "02", 32, 16)
    assert int(trace_id, 16)
    assert int(span_id, 16)
    assert (seen["line"]["trace_id"], seen["line"]["span_id"]) == (trace_id, span_id)
    assert seen["after"] == [{}, None]
