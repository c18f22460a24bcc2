"""Schemathesis against every service's OpenAPI document, on the real stack (`make run`):
no 5xx, and every answer as documented (status, content type, body schema). Bounded and
repeatable: a fixed number of examples per operation, derandomized (a fixed seed)."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_schema_conformance,
    status_code_conformance,
)

from tests.system.stack import Stack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ADMIN = {"Authorization": "Bearer demo-admin"}  # every route is reachable, nothing is 403
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
]
# Invalid input is generated too (its answers must be documented 4xx bodies), but
# negative_data_rejection is not checked: it flags unknown query parameters, which every
# service ignores on purpose (a cache-buster must not break a client); invalid values of known
# ones are refused (tests/*/test_bad_input.py).
EXAMPLES = 25  # per operation: ~2,500 requests over the five services


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir: Path = tmp_path_factory.mktemp("openapi-run")
    with running_stack(run_dir) as running:
        yield running


def _schema(stack: Stack, service: str) -> Any:
    return schemathesis.openapi.from_url(f"{stack.url(service)}/openapi.json")


BOUNDED = settings(
    max_examples=EXAMPLES,
    derandomize=True,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)


def _failures(stack: Stack, service: str) -> list[str]:
    """Every operation of the service, fuzzed; what failed, one line each (all operations run,
    so one report lists every finding)."""
    schema = schemathesis.openapi.from_url(f"{stack.url(service)}/openapi.json")
    failed: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        if operation.path == "/cases/stream":
            continue  # an endless stream: its documentation is checked below, not fuzzed

        @BOUNDED
        @given(case=st.one_of(*(operation.as_strategy(mode) for mode in GenerationMode)))
        def fuzz(case: Any) -> None:
            case.call_and_validate(
                base_url=stack.url(service), headers=ADMIN, checks=CHECKS, timeout=30
            )

        try:
            fuzz()
        except (Exception, BaseExceptionGroup) as exc:  # a finding: reported with the others
            failed.append(f"{operation.label}: {_summary(exc)}")
    return failed


def _summary(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    wanted = [line for line in lines if line.startswith(("-", "Received", "Documented", "curl"))]
    return " | ".join(wanted or lines[:4])[:600]


@pytest.mark.parametrize("service", ["ingest", "reports", "broadcast", "analytics", "identity"])
def test_no_server_error_and_every_answer_documented(stack: Stack, service: str) -> None:
    failed = _failures(stack, service)
    assert not failed, "\n".join(failed)


def test_the_live_queue_is_documented_as_a_stream(stack: Stack) -> None:
    import httpx

    spec = httpx.get(f"{stack.url('reports')}/openapi.json").json()
    content = spec["paths"]["/cases/stream"]["get"]["responses"]["200"]["content"]
    assert "text/event-stream" in content


def _status_of(url: str, header_bytes: int) -> int:
    """Send a request with one header of `header_bytes` over a raw socket; the status answered
    (0 if the server closed without answering)."""
    import socket
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    head = (
        f"GET /cases HTTP/1.1\r\nHost: {parts.netloc}\r\nAuthorization: Bearer demo-admin\r\n"
        f"X-Big: {'x' * header_bytes}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        try:
            sock.sendall(head)
        except OSError:  # the server stopped reading and closed: refused as well
            return 0
        answer = sock.recv(200)
    return int(answer.split()[1]) if answer.startswith(b"HTTP/1.1") else 0


@pytest.mark.parametrize("service", ["reports", "broadcast", "analytics", "identity"])
def test_staff_apis_do_not_read_huge_headers(stack: Stack, service: str) -> None:
    """Finding 7: 16 MB of headers were read and accepted. Over 64 KiB the server stops
    reading (h11); between 32 and 64 KiB the app answers 431; the service stays up."""
    import httpx

    url = stack.url(service)
    assert _status_of(url, 40_000) == 431
    assert _status_of(url, 16 * 1024 * 1024) in (0, 400, 431)
    assert httpx.get(f"{url}/healthz", timeout=5).status_code == 200
