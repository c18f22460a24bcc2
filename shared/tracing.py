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

import asyncio
import atexit
import logging
import random
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar, Token
from typing import Any, NamedTuple

from opentelemetry import context, propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, SpanProcessor, TracerProvider, sampling
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from opentelemetry.sdk.trace.id_generator import RandomIdGenerator
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
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
from opentelemetry.trace.status import Status, StatusCode

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
# Sampled, trace id random: what the SDK gives the roots it records.
_SAMPLED = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_SAMPLED_FLAGS = f"{_SAMPLED:02x}"
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
    global _provider, _root_bound, _finished_roots
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
    if processor is not None:  # a test's: every root handed over at once, as it ends
        provider.add_span_processor(processor)
        _finished_roots = _FinishedRoots(SpansTo(processor, provider.resource), batch=1)
    elif endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces")
        batches = BatchSpanProcessor(exporter)
        provider.add_span_processor(batches)
        from shared.span_export import ExporterProcess

        _finished_roots = _FinishedRoots(ExporterProcess(service, endpoint), batch=64)
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


class Root(NamedTuple):
    """A trace `enter_root` made current: the token that restores the context variable, and,
    for a recorded trace, what its span will be made of when `exit_root` finishes it."""

    token: Token[str | None] | None
    recorded: "OpenRoot | None"


# A recorded root, as plain values (JSON can carry them to another process): scope, name, kind
# (its number), attributes, trace id, span id and start (ns since the epoch); when it ended,
# also its end and the type of the exception it ended with, if any.
OpenRoot = tuple[str, str, int, Mapping[str, str], int, int, int]
FinishedRoot = tuple[str, str, int, Mapping[str, str], int, int, int, int, str | None]


def enter_root(scope: str, name: str, kind: SpanKind, attributes: Mapping[str, str]) -> Root:
    """Start a new trace and make it current, for a handler that starts no span of its own
    (ingest's webhook; `shared.telemetry.ObservedEndpoint`). The trace's `traceparent` goes
    into a context variable of its own, which `inject` and `current_ids` read, instead of a
    span into the OpenTelemetry context: no context to build and restore, no propagator, on the
    path of every webhook (docs/observability.md, "What an unsampled request costs").

    A recorded trace (the sampled share) gets no live SDK span either: its ids and start time
    are kept, and `exit_root` queues the finished span (`scope` is its instrumentation scope)
    for export in batches (`_FinishedRoots`). Measured in the running service, the SDK's live
    span and its export cost a recorded webhook tens of µs, several times what they cost in a
    tight loop (docs/benchmarks.md, "Observability cost")."""
    bound = _root_bound
    if bound is None:  # no tracing: no trace
        return Root(None, None)
    trace_id, span_id = _new_ids()
    if trace_id & _ID_LIMIT < bound:
        header = f"00-{trace_id:032x}-{span_id:016x}-{_SAMPLED_FLAGS}"
        opened = (scope, name, kind.value, attributes, trace_id, span_id, time.time_ns())
        return Root(_root_traceparent.set(header), opened)
    header = f"00-{trace_id:032x}-{span_id:016x}-{_UNSAMPLED_FLAGS}"
    return Root(_root_traceparent.set(header), None)


def exit_root(root: Root, error: BaseException | None = None) -> None:
    """Leave the trace `enter_root` made current; a recorded one's span ends now (with an
    error status naming `error`'s type, if given: never its message, which may quote a
    citizen)."""
    if root.token is not None:
        _root_traceparent.reset(root.token)
    opened = root.recorded
    if opened is not None and _finished_roots is not None:
        error_type = type(error).__name__ if error is not None else None
        _finished_roots.add((*opened, time.time_ns(), error_type))


Deliver = Callable[[list[FinishedRoot]], None]


class _FinishedRoots:
    """Recorded roots that ended, delivered together: every `batch` of them, `FLUSH_AFTER_S`
    after the first one waits, and at exit. `deliver` turns them into SDK spans for a span
    processor (`SpansTo`: tests, one at a time) or sends them to the exporter's own process
    (`shared.span_export`: services that export)."""

    FLUSH_AFTER_S = 1.0

    def __init__(self, deliver: Deliver, batch: int) -> None:
        self._deliver = deliver
        self._batch = batch
        self._pending: list[FinishedRoot] = []
        atexit.register(self.flush)  # before the provider's own shutdown (atexit runs LIFO)

    def add(self, root: FinishedRoot) -> None:
        pending = self._pending
        pending.append(root)
        if len(pending) >= self._batch:
            self.flush()
        elif len(pending) == 1:
            try:
                asyncio.get_running_loop().call_later(self.FLUSH_AFTER_S, self.flush)
            except RuntimeError:  # no event loop here to come back later: now
                self.flush()

    def flush(self) -> None:
        pending, self._pending = self._pending, []
        if pending:
            self._deliver(pending)

    def prepare(self) -> None:
        start = getattr(self._deliver, "start", None)  # the exporter's process, if any
        if start is not None:
            start()


def prepare_roots() -> None:
    """For an endpoint that will record roots (`enter_root`), when it is built: what delivers
    them gets ready now (the exporter's process starts) rather than with the first one."""
    if _finished_roots is not None:
        _finished_roots.prepare()


class SpansTo:
    """Finished roots as SDK spans (`ReadableSpan`), handed to a span processor."""

    def __init__(self, processor: SpanProcessor, resource: Resource) -> None:
        self._processor = processor
        self._resource = _HashedOnce(resource)
        self._scopes: dict[str, InstrumentationScope] = {}

    def __call__(self, roots: list[FinishedRoot]) -> None:
        for root in roots:
            self._processor.on_end(self.span(root))

    def span(self, root: FinishedRoot) -> ReadableSpan:
        scope_name, name, kind, attributes, trace_id, span_id, start_ns, end_ns, error = root
        scope = self._scopes.get(scope_name)
        if scope is None:
            scope = self._scopes[scope_name] = InstrumentationScope(scope_name)
        return ReadableSpan(
            name=name,
            context=SpanContext(trace_id, span_id, False, _SAMPLED),
            parent=None,
            resource=self._resource,
            attributes=attributes,
            kind=SpanKind(kind),
            status=Status(StatusCode.ERROR, error) if error else Status(),
            start_time=start_ns,
            end_time=end_ns,
            instrumentation_scope=scope,
        )


class _HashedOnce(Resource):
    """A resource that computes its hash once: the OTLP encoder groups every span it exports
    by resource, and `Resource.__hash__` renders the attributes as JSON each time (a quarter
    of the encoding's time per span)."""

    def __init__(self, resource: Resource) -> None:
        super().__init__(resource.attributes, resource.schema_url)
        self._hash = super().__hash__()

    def __hash__(self) -> int:
        return self._hash


_finished_roots: _FinishedRoots | None = None


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
