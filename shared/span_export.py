"""Recorded webhook roots exported from a process of their own.

A service that exports traces (`OTEL_EXPORTER_OTLP_ENDPOINT`) sends the roots `enter_root`
recorded (ingest's webhooks, 10 % by default) to a child process, which turns them into SDK
spans and exports them with the SDK's own batch processor and OTLP exporter. Done in the
service's process, that export (protobuf encoding and HTTP on the batch processor's thread,
holding the GIL) was the largest part of what tracing cost a webhook (docs/benchmarks.md,
"Observability cost"); here the service only writes a line of JSON per root to a pipe.

The service never waits for the child: the pipe is non-blocking and written in whole chunks
of at most `PIPE_BUF` bytes (the kernel writes those whole or not at all), so a child that is
slow or gone costs dropped spans (counted, `binhyen_<service>_spans_dropped_total`), never a
stalled webhook. The child starts when an endpoint that records roots is built
(`shared.tracing.prepare_roots`; at the latest with the first root), so a service without one
(every service but ingest) starts none; it ends when the pipe closes (the service exiting),
after exporting what it holds.

`python -m shared.span_export SERVICE ENDPOINT` is the child's entry point.
"""

import atexit
import json
import logging
import os
import select
import signal
import subprocess
import sys
from typing import IO

from shared import metrics
from shared.tracing import FinishedRoot

log = logging.getLogger(__name__)

_ENCODER = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=False)


class ExporterProcess:
    """The service's side: finished roots as JSON lines on the child's standard input."""

    def __init__(self, service: str, endpoint: str) -> None:
        self._args = [sys.executable, "-m", __name__, service, endpoint]
        self._child: subprocess.Popen[bytes] | None = None
        self._pipe: IO[bytes] | None = None
        self._dropped = metrics.counter(
            metrics.service(), "spans_dropped", "Recorded spans the exporter process missed"
        )
        self._warned = False
        atexit.register(self.close)  # after the last roots are flushed (atexit runs LIFO)

    def __call__(self, roots: list[FinishedRoot]) -> None:
        pipe = self._pipe if self._pipe is not None else self.start()
        chunk = b""
        for root in roots:
            line = _ENCODER.encode(root).encode() + b"\n"
            if len(chunk) + len(line) > select.PIPE_BUF:
                self._write(pipe, chunk, chunk.count(b"\n"))
                chunk = b""
            chunk += line
        self._write(pipe, chunk, chunk.count(b"\n"))

    def _write(self, pipe: IO[bytes], chunk: bytes, lines: int) -> None:
        if not chunk:
            return
        try:
            os.write(pipe.fileno(), chunk)  # at most PIPE_BUF bytes: all of it, or an error
        except OSError as exc:  # full (a slow child) or closed (a child that died)
            self._dropped.inc(lines)
            if not self._warned:
                self._warned = True
                log.warning("span exporter not keeping up", extra={"error": type(exc).__name__})

    def start(self) -> IO[bytes]:
        """Start the child (once): at the latest with the first roots to send."""
        if self._pipe is not None:
            return self._pipe
        # The child imports `shared` as this process does (`python -m` in a checkout or image).
        env = os.environ | {"PYTHONPATH": os.pathsep.join(p for p in sys.path if p)}
        self._child = subprocess.Popen(self._args, stdin=subprocess.PIPE, env=env)
        assert self._child.stdin is not None
        self._pipe = self._child.stdin
        os.set_blocking(self._pipe.fileno(), False)
        return self._pipe

    def close(self, timeout: float = 10.0) -> None:
        """Close the pipe and wait for the child to export what it holds."""
        if self._pipe is not None:
            self._pipe.close()
        if self._child is not None:
            try:
                self._child.wait(timeout)
            except subprocess.TimeoutExpired:
                self._child.kill()


def main() -> None:
    """The child: read finished roots until the pipe closes, export them, flush, exit."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    from shared.logging import configure_logging
    from shared.tracing import SpansTo

    service, endpoint = sys.argv[1], sys.argv[2]
    # Ctrl-C in `make run` reaches the whole process group: this process ends when the
    # service closes the pipe, after exporting what the service sent.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    configure_logging(os.environ.get("LOG_LEVEL", "INFO"), service=f"{service}-span-export")
    batches = BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint.rstrip("/") + "/v1/traces"))
    to_spans = SpansTo(batches, Resource.create({"service.name": f"binhyen-{service}"}))
    for line in sys.stdin.buffer:
        try:
            root = json.loads(line)
            to_spans([tuple(root)])
        except (ValueError, TypeError) as exc:  # a line cut short: that span is lost
            log.warning("unreadable span", extra={"error": type(exc).__name__})
    batches.shutdown()  # type: ignore[no-untyped-call]


if __name__ == "__main__":
    main()
