"""Metrics and traces for a service's process and its HTTP side, set up in one call each.

`configure_telemetry(service)` at process start (`shared.serve`, worker entry points);
`instrument(app)` wraps a FastAPI app: one server span per request (W3C `traceparent`
honoured) and `binhyen_<service>_http_requests_total` / `…_http_request_duration_seconds`
by route template and status. The route is the template (`/cases/{case_id}`), never the path,
and no query string or header value is recorded: both can carry a citizen's words or ids.
The span and metrics are written here rather than by OpenTelemetry's ASGI middleware or
FastAPI's native telemetry, which record the full path and the query string.
"""

import time
from collections.abc import Mapping
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from pymongo import monitoring
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared import metrics
from shared.settings import ServiceSettings
from shared.tracing import (
    configure_tracing,
    enter_root,
    exit_root,
    extract,
    prepare_roots,
    start_root_span,
)

HTTP_SCOPE = "binhyen.http"  # the instrumentation scope of every server span
# Scraped and probed every few seconds: neither traced nor counted.
UNOBSERVED = frozenset({"/metrics", "/healthz", "/readyz"})


def configure_telemetry(service: str, settings: ServiceSettings) -> None:
    """At process start, before any MongoDB client exists (listeners are global)."""
    metrics.set_service(service)
    if not settings.otel_sdk_disabled:
        endpoint, ratio = settings.otel_exporter_otlp_endpoint, settings.otel_traces_sampler_arg
        configure_tracing(service, endpoint, ratio)
    monitoring.register(MongoCommands(service))


class MongoCommands(monitoring.CommandListener):
    """`binhyen_<service>_mongodb_commands_total{command, result}` and their durations: MongoDB
    as each service sees it (command names only; never a document)."""

    def __init__(self, service: str) -> None:
        self.commands = metrics.counter(
            service,
            "mongodb_commands",
            "MongoDB commands by name and result",
            ("command", "result"),
        )
        self.duration = metrics.histogram(
            service, "mongodb_command_duration_seconds", "MongoDB command time", ("command",)
        )

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        pass

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self._done(event.command_name, "ok", event.duration_micros)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        self._done(event.command_name, "failed", event.duration_micros)

    def _done(self, command: str, result: str, micros: int) -> None:
        name = command if command in _COMMANDS else "other"  # bounded label values
        self.commands.labels(name, result).inc()
        self.duration.labels(name).observe(micros / 1e6)


_COMMANDS = frozenset(
    {
        "find",
        "insert",
        "update",
        "delete",
        "aggregate",
        "count",
        "distinct",
        "findAndModify",
        "getMore",
        "createIndexes",
        "listIndexes",
        "ping",
        "hello",
        "isMaster",
        "killCursors",
        "listCollections",
        "drop",
        "endSessions",
    }
)


class Instrumented:
    """ASGI middleware: a server span and request metrics for every HTTP request.

    Lean on purpose, since it wraps ingest's webhook too (docs/benchmarks.md, "Observability
    cost"): the span is started and made current by hand rather than through
    `start_as_current_span`'s context managers, and each (method, route, status) keeps its
    bound counter child."""

    def __init__(self, app: ASGIApp, service: str) -> None:
        self.app = app
        self.tracer = trace.get_tracer(HTTP_SCOPE)
        labels = ("method", "route", "status")
        self.requests = metrics.counter(service, "http_requests", "HTTP requests", labels)
        self.duration = metrics.histogram(
            service, "http_request_duration_seconds", "HTTP request duration", ("method", "route")
        )
        self._bound: dict[tuple[str, str, int], tuple[Any, Any]] = {}
        # Endpoints that observe themselves (`ObservedEndpoint`), by path: called directly, past
        # the app's own dispatch (the app fills the mapping when its lifespan has built them).
        self._observed: Mapping[str, ASGIApp] = getattr(app, "observed_endpoints", {})

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        # FastAPI's own telemetry (0.165+) stands aside when this key is set, as it does for an
        # app mounted in an instrumented one: it would record the raw path and query string.
        scope["fastapi.telemetry"] = True
        path = scope["path"]
        observed = self._observed.get(path)
        if observed is not None:
            await observed(scope, receive, send)
            return
        if path in UNOBSERVED:
            await self.app(scope, receive, send)
            return
        method: str = scope["method"]
        status = 500
        carrier = _trace_headers(scope)

        async def send_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        started = time.perf_counter()
        parent = extract(carrier) if carrier else None
        if parent is None:  # a new trace: decided once, no SDK span when not sampled
            span = start_root_span(self.tracer, method, SpanKind.SERVER)
        else:
            span = self.tracer.start_span(method, context=parent, kind=SpanKind.SERVER)
        token = otel_context.attach(trace.set_span_in_context(span, parent))
        try:
            await self.app(scope, receive, send_status)
        except BaseException as exc:
            span.record_exception(exc)
            raise
        finally:
            otel_context.detach(token)
            route = _route(scope)
            if span.is_recording():
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("http.response.status_code", status)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
            span.end()
            counter, histogram = self._children(method, route, status)
            counter.inc()
            histogram.observe(time.perf_counter() - started)

    def _children(self, method: str, route: str, status: int) -> tuple[Any, Any]:
        key = (method, route, status)
        bound = self._bound.get(key)
        if bound is None:
            counter = self.requests.labels(method, route, str(status))
            bound = self._bound[key] = (counter, self.duration.labels(method, route))
        return bound


class ObservedEndpoint:
    """An endpoint that counts its own answers (ingest's webhook, whose outcome counter has
    the status): per request only a new trace (`shared.tracing.enter_root`: no live span, a
    recorded one's span is made when it ends) and the duration; a request that fails with an
    exception counts as `http_requests_total{status="500"}`. The endpoint must start no span
    of its own. The app maps the path to it in `observed_endpoints`, where `Instrumented`
    finds it."""

    def __init__(self, endpoint: ASGIApp, service: str, method: str, route: str) -> None:
        self.endpoint = endpoint
        self.name = f"{method} {route}"
        self.attributes = {"http.request.method": method, "http.route": route}
        prepare_roots()
        requests = metrics.counter(
            service, "http_requests", "HTTP requests", ("method", "route", "status")
        )
        self.failed = requests.labels(method, route, "500")
        self.duration = metrics.histogram(
            service, "http_request_duration_seconds", "HTTP request duration", ("method", "route")
        ).labels(method, route)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        # A webhook always starts a trace (Zalo sends no context).
        root = enter_root(HTTP_SCOPE, self.name, SpanKind.SERVER, self.attributes)
        try:
            await self.endpoint(scope, receive, send)
        except BaseException as exc:
            self.failed.inc()
            exit_root(root, exc)
            raise
        else:
            exit_root(root)
        finally:
            metrics.BATCHED.observe(self.duration, time.perf_counter() - started)


def instrument(app: Any, service: str) -> Instrumented:
    return Instrumented(app, service)


def _trace_headers(scope: Scope) -> dict[str, str] | None:
    carrier: dict[str, str] | None = None
    for name, value in scope["headers"]:
        if name in (b"traceparent", b"tracestate"):
            carrier = carrier or {}
            carrier[name.decode()] = value.decode("latin-1")
    return carrier


def _route(scope: Scope) -> str:
    """The matched route's template; unmatched paths share one label (no path in a label)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else "unmatched"


def broker_middlewares(service: str) -> list[Any]:
    """FastStream's own NATS middlewares for a broker: trace context carried in message headers
    (a consume span per message, a publish span per publish), and Prometheus metrics of every
    subscriber and publisher as `binhyen_<service>_received_processed_messages_total`, …"""
    from faststream.nats.opentelemetry import NatsTelemetryMiddleware
    from faststream.nats.prometheus import NatsPrometheusMiddleware
    from prometheus_client import REGISTRY

    prefix = metrics.metric_name(service, "").rstrip("_")
    return [
        NatsTelemetryMiddleware(),
        NatsPrometheusMiddleware(registry=REGISTRY, app_name=service, metrics_prefix=prefix),
    ]
