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

A new trace's sampling decision is made once, by `start_root_span` (or `enter_root`), from the
trace id it draws (the same decision the SDK's ratio sampler makes from that id): a trace that
is not recorded gets no SDK span at all (no sampler objects, no span processor call), only
its ids: a bare non-recording span from `start_root_span`, and from `enter_root`, which
ingest's webhook uses, just its `traceparent` in a context variable. That is most webhooks at
the default ratio (docs/benchmarks.md, "Observability cost").

FastStream's `NatsTelemetryMiddleware` carries the context through FastStream publishers and
subscribers; the hot paths that use nats-py directly (ingest's publish, broadcast's
`publish_all` and sender, analytics' batches) call `inject` / `batch_span` here.
"""

import logging
import random
import threading
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.trace import (
    Link,
    NonRecordingSpan,
    SpanContext,
    SpanKind,
    TraceFlags,
    format_span_id,
    format_trace_id,
)
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator

log = logging.getLogger(__name__)

DEFAULT_SAMPLE_RATIO = 0.1  # keep in step with ServiceSettings.otel_traces_sampler_arg
MAX_LINKS = 64  # per batch span: a sample of the messages it handled
TRACEPARENT = "traceparent"
_W3C = TraceContextTextMapPropagator()

_provider: TracerProvider | None = None
# New traces whose id (its lower 64 bits) is below this are recorded; None: the SDK decides.
_root_bound: int | None = None
# Not sampled, trace id random: the flags (`02`) the SDK gives its own unsampled roots.
_UNSAMPLED = TraceFlags(TraceFlags.RANDOM_TRACE_ID)
_UNSAMPLED_FLAGS = f"{_UNSAMPLED:02x}"
_ID_LIMIT = sampling.TraceIdRatioBased.TRACE_ID_LIMIT
_SPAN_ID_MASK = (1 << 64) - 1
# The `traceparent` of the trace `enter_root` made current, if any.
_root_traceparent: ContextVar[str | None] = ContextVar("binhyen_root_traceparent", default=None)


class _ChosenIds(RandomIdGenerator):
    """The SDK's random ids, except a new trace's id when `start_root_span` drew it already
    (per thread, for the one `start_span` call it makes)."""

    def __init__(self) -> None:
        self._chosen = threading.local()

    def generate_trace_id(self) -> int:
        chosen: int | None = getattr(self._chosen, "trace_id", None)
        if chosen is not None:
            self._chosen.trace_id = None
            return chosen
        return super().generate_trace_id()

    def choose(self, trace_id: int | None) -> None:
        self._chosen.trace_id = trace_id


_IDS = _ChosenIds()


def configure_tracing(
    service: str,
    endpoint: str = "",
    ratio: float = DEFAULT_SAMPLE_RATIO,
    processor: SpanProcessor | None = None,
) -> TracerProvider:
    """Install this process's tracer provider, once. Spans are exported to `endpoint` (OTLP
    over HTTP), or handed to `processor` (tests pass an in-memory one, which records every
    trace), or, with neither, not recorded at all (ids and propagation only)."""
    global _provider, _root_bound
    if _provider is not None:
        return _provider
    if processor is not None:
        sampler: sampling.Sampler = sampling.ALWAYS_ON
        bound = 1 << 64
    elif endpoint:
        sampler = sampling.ParentBased(sampling.TraceIdRatioBased(ratio))
        bound = sampling.TraceIdRatioBased.get_bound_for_rate(ratio)
    else:  # a recorded span would go nowhere
        sampler = sampling.ParentBased(sampling.ALWAYS_OFF)
        bound = 0
    provider = TracerProvider(
        resource=Resource.create({"service.name": f"binhyen-{service}"}),
        sampler=sampler,
        id_generator=_IDS,
    )
    if processor is not None:
        provider.add_span_processor(processor)
    elif endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    _instrument_mongo()
    _provider, _root_bound = provider, bound
    return provider


def start_root_span(tracer: trace.Tracer, name: str, kind: SpanKind) -> trace.Span:
    """A span starting a new trace, not yet current. Its trace id is drawn here and decides
    sampling as the ratio sampler would: a recorded trace gets the SDK's span (with that id),
    any other a `NonRecordingSpan` that only carries its ids (to logs and `traceparent`,
    with the sampled bit clear), so an unsampled request costs the SDK nothing."""
    bound = _root_bound
    if bound is None:  # tracing not configured here (or disabled): the API's own answer
        return tracer.start_span(name, kind=kind)
    trace_id, span_id = _new_ids()
    if trace_id & _ID_LIMIT < bound:
        return _recorded_root(tracer, name, kind, trace_id)
    return NonRecordingSpan(SpanContext(trace_id, span_id, False, _UNSAMPLED))


RootToken = tuple[trace.Span | None, Token[str | None] | None]


def enter_root(tracer: trace.Tracer, name: str, kind: SpanKind) -> RootToken:
    """Start a new trace and make it current, for a handler that starts no span of its own
    (ingest's webhook; `shared.telemetry.ObservedEndpoint`). The trace's `traceparent` goes
    into a context variable of its own, which `inject` and `current_ids` read, instead of a
    span into the OpenTelemetry context: no context to build and restore, no propagator, on the
    path of every webhook (docs/observability.md, "What an unsampled request costs"). A trace
    that is recorded (the sampled share) also gets the SDK's span, with the ids on the header;
    one that is not (most webhooks) gets no span at all. Returns the recorded span (or None)
    and the token `exit_root` needs."""
    bound = _root_bound
    if bound is None:  # no tracing: no trace
        return None, None
    trace_id, span_id = _new_ids()
    if trace_id & _ID_LIMIT < bound:
        span = _recorded_root(tracer, name, kind, trace_id)
        ids = span.get_span_context()
        header = f"00-{trace_id:032x}-{ids.span_id:016x}-{ids.trace_flags:02x}"
        return span, _root_traceparent.set(header)
    return None, _root_traceparent.set(f"00-{trace_id:032x}-{span_id:016x}-{_UNSAMPLED_FLAGS}")


def exit_root(root: RootToken) -> None:
    """Leave the trace `enter_root` made current (a recorded span is the caller's to end)."""
    token = root[1]
    if token is not None:
        _root_traceparent.reset(token)


def _new_ids() -> tuple[int, int]:
    """A trace id and a span id, both random and non-zero, from one draw."""
    bits = random.getrandbits(192)
    while not bits >> 64 or not bits & _SPAN_ID_MASK:  # pragma: no cover - one in 2**64
        bits = random.getrandbits(192)
    return bits >> 64, bits & _SPAN_ID_MASK


def _recorded_root(tracer: trace.Tracer, name: str, kind: SpanKind, trace_id: int) -> trace.Span:
    _IDS.choose(trace_id)
    try:
        return tracer.start_span(name, kind=kind)
    finally:  # never left for another span (a tracer of another provider would not take it)
        _IDS.choose(None)


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
    root = _root_traceparent.get()
    if root is not None:
        headers[TRACEPARENT] = root
    else:
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
    root = _root_traceparent.get()
    if root is not None:  # 00-<32 hex trace id>-<16 hex span id>-<flags>
        return root[3:35], root[36:52]
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
