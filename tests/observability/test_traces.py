"""One trace from Zalo's webhook to the dispatcher's stream: ingest's log line, the
`zalo.event.*` message, reports' consume span and log line, the `tips.triaged.*` message."""

from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, format_span_id, format_trace_id

from shared.jetstream import connect
from shared.tracing import headers_trace_id
from tests.ingest.builders import (
    fixture_body,
    ingest_settings,
    post,
    running_ingest,
    stream_messages,
)
from tests.observability.conftest import JsonLines
from tests.polling import eventually
from tests.reports.conftest import Harness
from tests.reports.test_flow import Start, desk
from tools.localstack.servers import start_nats

pytestmark = pytest.mark.integration


def span_id_in(headers: dict[str, str] | None) -> str:
    assert headers is not None
    return headers["traceparent"].split("-")[2]


def ancestry(spans: list[ReadableSpan], span_id: str) -> list[ReadableSpan]:
    """The span with `span_id`, then its parent, grandparent, … up to the root."""
    by_id = {format_span_id(s.context.span_id): s for s in spans}
    chain: list[ReadableSpan] = []
    current = by_id.get(span_id)
    while current is not None:
        chain.append(current)
        parent = current.parent
        current = by_id.get(format_span_id(parent.span_id)) if parent else None
    return chain


async def test_one_trace_from_webhook_to_dispatcher(
    reports: Start,
    nats_url: str,
    tmp_path: Path,
    unique: str,
    spans: InMemorySpanExporter,
    log_lines: JsonLines,
) -> None:
    ingest = ingest_settings(nats_url, tmp_path / "spool")
    async with running_ingest(ingest) as webhook:
        harness: Harness = await reports(declare_zalo_stream=False)
        dispatcher = await desk(harness, "bac-ly", unique)
        response = await post(webhook, fixture_body("user_send_text"))
        assert response.json()["status"] == "published"
        event_id = response.json()["event_id"]
        [tip] = await dispatcher.fetch(1, timeout=15)
        await tip.ack()

        async def triaged_logged() -> bool:  # written after the publish (and the reply)
            return any(line["event_id"] == event_id for line in log_lines.find("message triaged"))

        await eventually(triaged_logged)
        await dispatcher.unsubscribe()
        js = harness.nc.jetstream()
        event = await js.get_last_msg(ingest.events_stream, "zalo.event.user_message")

    [accepted] = [
        line for line in log_lines.find("webhook accepted") if line["event_id"] == event_id
    ]
    [triaged] = [line for line in log_lines.find("message triaged") if line["event_id"] == event_id]
    trace_id = accepted["trace_id"]
    assert isinstance(trace_id, str)
    assert len(trace_id) == 32
    assert headers_trace_id(event.headers) == trace_id
    assert headers_trace_id(tip.headers) == trace_id
    assert triaged["trace_id"] == trace_id

    finished = [
        s for s in spans.get_finished_spans() if format_trace_id(s.context.trace_id) == trace_id
    ]
    # tips.triaged's context → reports' publish → reports' consume → ingest's webhook span
    chain = ancestry(finished, span_id_in(tip.headers))
    kinds = [(s.kind, s.name) for s in chain]
    assert chain[-1].kind == SpanKind.SERVER, kinds
    assert chain[-1].name == "POST /webhooks/zalo", kinds
    assert chain[-1].parent is None
    consume = [s for s in chain if s.kind == SpanKind.CONSUMER]
    assert consume, kinds
    assert consume[0].name == "reports intake", kinds  # the batch the message came in
    # the consume span's parent is the very span whose context rode on zalo.event.*
    assert consume[-1].parent is not None
    assert format_span_id(consume[-1].parent.span_id) == span_id_in(event.headers)
    assert span_id_in(event.headers) == format_span_id(chain[-1].context.span_id)
    # MongoDB commands of the triage are in the same trace, below the consume span
    assert any(s.kind == SpanKind.CLIENT and s.attributes.get("db.system") for s in finished)


async def test_a_spooled_event_keeps_its_webhooks_trace(
    tmp_path: Path, spans: InMemorySpanExporter, log_lines: JsonLines
) -> None:
    """NATS is down: the event waits on disk, ingest restarts, NATS returns; the message
    published from the spool carries the trace context its webhook started."""
    server = start_nats(tmp_path / "nats")
    settings = ingest_settings(server.url, tmp_path / "spool", publish_timeout_s=0.5)
    try:
        async with running_ingest(settings) as webhook:
            server.kill()
            response = await post(webhook, fixture_body("user_send_text"))
            assert response.json()["status"] == "spooled"
        event_id = response.json()["event_id"]
        [accepted] = [
            line for line in log_lines.find("webhook accepted") if line["event_id"] == event_id
        ]
        [root] = [
            s
            for s in spans.get_finished_spans()
            if s.kind == SpanKind.SERVER
            and format_trace_id(s.context.trace_id) == accepted["trace_id"]
        ]
        server = start_nats(server.data_dir, port=server.port)
        async with running_ingest(settings) as webhook:
            publisher = webhook.app.state.ingest.publisher
            await eventually(lambda: publisher.spooled == 0, timeout=30)
        nc = await connect(server.url, name="spool-trace-test")
        try:
            [message] = await stream_messages(nc.jetstream(), settings.events_stream)
        finally:
            await nc.close()
        assert message.headers is not None
        assert headers_trace_id(message.headers) == accepted["trace_id"]
        assert span_id_in(message.headers) == format_span_id(root.context.span_id)
    finally:
        server.stop()
