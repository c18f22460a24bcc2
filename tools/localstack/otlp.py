"""A local OTLP/HTTP trace receiver, as the collector would be (bench and tests): it answers
every export, counts the bytes and keeps each span's (trace id as hex, name)."""

import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

from tools.localstack.servers import LOOPBACK, free_port


class OtlpSink:
    def __init__(self) -> None:
        self.received = 0
        self.spans: list[tuple[str, str]] = []
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keeps the exporter's connection, as the collector does

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                sink.record(body)
                self.send_response(200)  # an empty ExportTraceServiceResponse
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer((LOOPBACK, free_port()), Handler)
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        """For `OTEL_EXPORTER_OTLP_ENDPOINT`."""
        return f"http://{LOOPBACK}:{self._server.server_address[1]}"

    def record(self, body: bytes) -> None:
        self.received += len(body)
        request = ExportTraceServiceRequest()
        request.ParseFromString(body)
        for resource in request.resource_spans:
            for scope in resource.scope_spans:
                self.spans += [(span.trace_id.hex(), span.name) for span in scope.spans]

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
