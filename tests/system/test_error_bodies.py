"""One error body everywhere: a failing request to each service, on the real stack (`make run`),
answers `{"error": code, "detail": text, "errors": [...]}`, with the fields at fault for a 422."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.system.stack import Stack, running_stack

pytestmark = [pytest.mark.integration, pytest.mark.slow]
ADMIN = {"Authorization": "Bearer demo-admin"}
# (service, method, path, body, status, error code): one failing call of each kind per service.
FAILING = [
    ("ingest", "POST", "/webhooks/zalo", {"event_name": "follow"}, 401, "missing_signature"),
    ("ingest", "DELETE", "/webhooks/zalo", None, 405, "method_not_allowed"),
    ("reports", "GET", "/cases/no-such-case", None, 404, "not_found"),
    ("reports", "GET", "/cases?limit=many", None, 422, "invalid"),
    ("broadcast", "GET", "/notices/no-such-notice", None, 404, "not_found"),
    ("broadcast", "POST", "/notices", {"title": ""}, 422, "invalid"),
    (
        "analytics",
        "GET",
        "/metrics/followers?from=2026-12-04&to=2026-01-01",
        None,
        422,
        "invalid_period",
    ),
    ("analytics", "GET", "/metrics/followers?interval=century", None, 422, "invalid"),
]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    run_dir: Path = tmp_path_factory.mktemp("errors-run")
    with running_stack(run_dir) as running:
        yield running


def shape(body: dict[str, Any]) -> dict[str, str]:
    return {key: type(value).__name__ for key, value in body.items()}


@pytest.mark.parametrize(("service", "method", "path", "body", "status", "code"), FAILING)
def test_every_service_answers_errors_in_one_shape(
    stack: Stack,
    service: str,
    method: str,
    path: str,
    body: dict[str, Any] | None,
    status: int,
    code: str,
) -> None:
    answer = httpx.request(
        method, f"{stack.url(service)}{path}", json=body, headers=ADMIN, timeout=10
    )
    assert answer.status_code == status, answer.text[:300]
    found = answer.json()
    assert shape(found) == {"error": "str", "detail": "str", "errors": "list"}
    assert found["error"] == code
    assert found["detail"]
    if status == 422 and code == "invalid":  # the fields at fault, never the input
        assert found["errors"]
        assert all(set(e) == {"loc", "msg"} for e in found["errors"])
