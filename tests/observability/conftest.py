"""Tracing for the tests of this folder: this process's provider records every span in memory."""

import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from shared.logging import JsonFormatter
from shared.tracing import configure_tracing
from tests.reports.conftest import reports, reports_settings

__all__ = ["reports", "reports_settings"]  # the reports service, as its own tests start it

_EXPORTER = InMemorySpanExporter()


@pytest.fixture
def spans() -> Iterator[InMemorySpanExporter]:
    """The spans finished during the test (the provider is installed once per process)."""
    configure_tracing("tests", processor=SimpleSpanProcessor(_EXPORTER))
    _EXPORTER.clear()
    yield _EXPORTER
    _EXPORTER.clear()


class JsonLines(logging.Handler):
    """Log lines rendered as the services render them, when they are written (the trace id is
    the one current at that moment)."""

    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.setFormatter(JsonFormatter())
        self.lines: list[dict[str, object]] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(json.loads(self.format(record)))

    def find(self, message: str) -> list[dict[str, object]]:
        return [line for line in self.lines if line["message"] == message]


@pytest.fixture
def log_lines() -> Iterator[JsonLines]:
    handler, root = JsonLines(), logging.getLogger()
    level = root.level
    root.addHandler(handler)
    root.setLevel(logging.DEBUG)
    yield handler
    root.removeHandler(handler)
    root.setLevel(level)
