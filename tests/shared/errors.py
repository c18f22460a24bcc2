"""Checks shared by the bad-input tests of every service (findings 6 and 7)."""

from typing import Any

from shared.web import ErrorBody


def assert_error(response: Any, status: int) -> None:
    """`status`, and the one documented error body."""
    assert response.status_code == status, (response.status_code, response.text[:300])
    body = ErrorBody.model_validate(response.json())
    assert body.detail
    assert set(response.json()) == {"error", "detail", "errors"}
    assert body.error


def chunks(total: int, size: int = 64 * 1024) -> Any:
    """A body sent without Content-Length (chunked): only counting while reading stops it."""

    async def generate() -> Any:
        sent = 0
        while sent < total:
            yield b" " * min(size, total - sent)
            sent += size

    return generate()
