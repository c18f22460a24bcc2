"""Metrics and spans of the Zalo client, named after the service that uses it.

`binhyen_<service>_zalo_api_calls_total{endpoint, code}` (code 0 = success, Zalo's negative
codes, or `http_<status>` / `transport` when no Zalo answer came), the calls' durations, the
rate limiter's waits, token refreshes by result, and the configured rate per family (the
quota alert compares calls with it). A span per call carries the endpoint's path only: query
strings can hold a user id, so aiohttp's own instrumentation is not used.
"""

from collections.abc import Iterator, Mapping
from contextlib import contextmanager

from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode

from shared import metrics
from shared.zalo.errors import ZaloError, ZaloHttpError


class ZaloTelemetry:
    def __init__(self, service: str | None = None) -> None:
        s = service or metrics.service()
        self.calls = metrics.counter(
            s,
            "zalo_api_calls",
            "Zalo API calls by endpoint, rate-limit family and result code",
            ("endpoint", "family", "code"),
        )
        self.duration = metrics.histogram(
            s, "zalo_api_call_duration_seconds", "One Zalo API exchange", ("endpoint",)
        )
        self.waits = metrics.counter(
            s, "zalo_rate_limit_waits", "Calls that waited for a rate-limit slot", ("family",)
        )
        self.waited = metrics.counter(
            s, "zalo_rate_limit_wait_seconds", "Seconds waited for rate-limit slots", ("family",)
        )
        self.refreshes = metrics.counter(
            s, "zalo_token_refreshes", "Access token refreshes by result", ("result",)
        )
        self.rate = metrics.gauge(
            s, "zalo_rate_limit_per_second", "Configured calls per second", ("family",)
        )
        self.tracer = trace.get_tracer("binhyen.zalo")

    def configured(self, limits: Mapping[str, float]) -> None:
        for family, rate in limits.items():
            self.rate.labels(family).set(rate)

    def rate_limited(self, family: str, seconds: float) -> None:
        if seconds > 0:
            self.waits.labels(family).inc()
            self.waited.labels(family).inc(seconds)

    @contextmanager
    def call(self, method: str, endpoint: str, family: str) -> Iterator[None]:
        """Around one HTTP exchange with Zalo: a client span, a count by result, a duration."""
        code = "error"  # anything but Zalo's answer or a ZaloError (a cancellation, say)
        with (
            self.duration.labels(endpoint).time(),
            self.tracer.start_as_current_span(
                f"zalo {method} {endpoint}", kind=SpanKind.CLIENT, record_exception=False
            ) as span,
        ):
            try:
                yield
                code = "0"
            except ZaloError as exc:
                code = f"http_{exc.code}" if isinstance(exc, ZaloHttpError) else str(exc.code)
                code = "transport" if code == "http_0" else code
                span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
                raise
            finally:
                span.set_attribute("zalo.error_code", code)
                self.calls.labels(endpoint, family, code).inc()

    @contextmanager
    def refresh(self) -> Iterator[None]:
        try:
            yield
        except BaseException:
            self.refreshes.labels("failed").inc()
            raise
        self.refreshes.labels("ok").inc()
