"""OpenTelemetry traces: one provider per process, W3C trace context on NATS headers.

Configured by each service's settings (`shared.settings.ServiceSettings`, the standard
OpenTelemetry variable names):
- `OTEL_SDK_DISABLED=true`: no tracing at all (no trace ids in logs or headers either);
- `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector that spans go to, by OTLP over HTTP (compose sets
  it; `make run` does not, so nothing is recorded or exported there);
- `OTEL_TRACES_SAMPLER_ARG`: the share of new traces (webhooks, staff requests) recorded when
  exporting, `DEFAULT_SAMPLE_RATIO` unless set; a message's consumer follows the decision
  its producer made (parent-based sampling).

Trace ids exist whether or not a trace is recorded: each webhook starts one, every message
carries it (`traceparent`) and every log line written while handling it names it.

FastStream's `NatsTelemetryMiddleware` carries the context through FastStream publishers and
subscribers; the hot paths that use nats-py directly (ingest's publish, broadcast's
`publish_all` and sender, analytics' batches) call `inject` / `batch_span` here.
"""

import logging
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.trace import Link, format_span_id, format_trace_id
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATIO = 0.1  # keep in step with ServiceSettings.otel_traces_sampler_arg
MAX_LINKS = 64  # per batch span: a sample of the messages it handled
TRACEPARENT = "traceparent"
_W3C = TraceContextTextMapPropagator()

_provider: TracerProvider | None = None


def configure_tracing(
    service: str,
    endpoint: str = "",
    ratio: float = DEFAULT_SAMPLE_RATIO,
    processor: SpanProcessor | None = None,
) -> TracerProvider:
    """Install this process's tracer provider, once. Spans are exported to `endpoint` (OTLP
    over HTTP), or handed to `processor` (tests pass an in-memory one, which records every
    trace), or, with neither, not recorded at all (ids and propagation only)."""
    global _provider
    if _provider is not None:
        return _provider
    if processor is not None:
        sampler: sampling.Sampler = sampling.ALWAYS_ON
    elif endpoint:
        sampler = sampling.ParentBased(sampling.TraceIdRatioBased(ratio))
    else:  # a recorded span would go nowhere
        sampler = sampling.ParentBased(sampling.ALWAYS_OFF)
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"binhyen-{service}"}), sampler=sampler
    )
    if processor is not None:
        provider.add_span_processor(processor)
    elif endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _instrument_mongo()
    _provider = provider
    return provider


def _instrument_mongo() -> None:
    """A span per MongoDB command (command name and collection; never the documents)."""
    from opentelemetry.instrumentation.pymongo import PymongoInstrumentor

    instrumentor = PymongoInstrumentor()
    if not instrumentor.is_instrumented_by_opentelemetry:
        instrumentor.instrument(capture_statement=False)


def tracer(name: str) -> trace.Tracer:
    return trace.get_tracer(name)


def inject(headers: dict[str, str]) -> dict[str, str]:
    """Add the current trace context (W3C `traceparent`, and `tracestate` if any) to `headers`.
    The trace-context propagator alone: the global one also runs baggage's, which we do not
    use, on every webhook."""
    _W3C.inject(headers)
    return headers


def extract(headers: Mapping[str, str] | None) -> Context:
    """The trace context a message carries (an empty context if none)."""
    return propagate.extract(headers or {})


def links_from(headers: Iterable[Mapping[str, str] | None]) -> list[Link]:
    """Links from a batch span to (at most `MAX_LINKS` of) the messages it handled."""
    links: list[Link] = []
    for carrier in headers:
        if carrier and TRACEPARENT in carrier:
            context = trace.get_current_span(extract(carrier)).get_span_context()
            if context.is_valid:
                links.append(Link(context))
                if len(links) == MAX_LINKS:
                    break
    return links


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the span being handled, as hex, if there is one."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format_trace_id(context.trace_id), format_span_id(context.span_id)


def headers_trace_id(headers: Mapping[str, Any] | None) -> str | None:
    """The trace id in a message's `traceparent` header (`00-<trace>-<span>-<flags>`)."""
    value = (headers or {}).get(TRACEPARENT)
    parts = value.split("-") if isinstance(value, str) else []
    return parts[1] if len(parts) == 4 else None


@contextmanager
def batch_span(name: str, headers: Sequence[Mapping[str, str] | None]) -> Iterator[trace.Span]:
    """A consumer span around one batch of messages: a child of the first message's trace
    (a batch is mostly one notice's or one burst's), linked to (some of) the others."""
    parent = extract(headers[0]) if headers else None
    links = links_from(headers[1:])
    with trace.get_tracer("binhyen.batch").start_as_current_span(
        name, context=parent, kind=trace.SpanKind.CONSUMER, links=links
    ) as span:
        span.set_attribute("messaging.batch.message_count", len(headers))
        yield span


@contextmanager
def in_trace_of(headers: Mapping[str, str] | None) -> Iterator[None]:
    """Make the trace a message carries current (for the log lines about that message in a
    batch handled under another message's span)."""
    if not headers or TRACEPARENT not in headers:
        yield
        return
    token = context.attach(extract(headers))
    try:
        yield
    finally:
        context.detach(token)
