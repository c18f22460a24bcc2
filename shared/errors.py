"""The one error type and the one error body of every service (no web framework here, so
domain modules may raise it; `shared.web` maps it to HTTP)."""

from typing import Any

from pydantic import BaseModel


class ServiceError(Exception):
    """A request a service refuses: its HTTP status, a stable code for programs (`error`) and a
    Vietnamese text for people (`detail`). Services subclass it for their own refusals."""

    def __init__(self, detail: str, status: int = 422, error: str | None = None) -> None:
        super().__init__(detail)
        self.detail, self.status = detail, status
        self.error = error or error_code(status)


# The code of an error without a more specific one: by HTTP status.
ERROR_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    413: "too_large",
    422: "invalid",
    431: "headers_too_large",
    503: "unavailable",
}


def error_code(status: int) -> str:
    return ERROR_CODES.get(status, "refused")


class FieldError(BaseModel):
    loc: list[str | int]
    msg: str


class ErrorBody(BaseModel):
    """The one error body of every service (4xx)."""

    error: str
    detail: str
    errors: list[FieldError] = []


def error_body(
    detail: str, errors: list[FieldError] | None = None, *, error: str = "refused"
) -> dict[str, Any]:
    return ErrorBody(error=error, detail=utf8(detail), errors=errors or []).model_dump()


def utf8(text: str) -> str:
    """Lone surrogates (valid in a JSON escape, not in UTF-8) become "?"."""
    return text.encode("utf-8", errors="replace").decode("utf-8")
