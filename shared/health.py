"""`/healthz` (the process is up), `/readyz` (its dependencies answer) and `/metrics`
(Prometheus, `shared.metrics`) for every service."""

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse
from nats.aio.client import Client as NATS
from pymongo.asynchronous.database import AsyncDatabase

from shared.metrics import metrics_router

ReadinessCheck = Callable[[], Awaitable[object]]


def nats_connected(connection: Callable[[], NATS]) -> ReadinessCheck:
    """Ready while the NATS connection is up (a getter: the lifespan makes the connection)."""

    async def check() -> None:
        if not connection().is_connected:
            raise ConnectionError("NATS is not connected")

    return check


def mongo_answers(database: Callable[[], AsyncDatabase[Any]]) -> ReadinessCheck:
    """Ready while MongoDB answers a ping (a getter, like `nats_connected`)."""

    async def check() -> None:
        await database().command("ping")

    return check


def health_router(checks: Mapping[str, ReadinessCheck], timeout: float = 2.0) -> APIRouter:
    """Health endpoints; each readiness check raises (or times out) when its dependency is down."""
    router = APIRouter(tags=["health"])
    router.include_router(metrics_router())

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz() -> JSONResponse:
        results = await asyncio.gather(*(_run_check(check, timeout) for check in checks.values()))
        report = dict(zip(checks, results, strict=True))
        ready = all(value == "ok" for value in report.values())
        return JSONResponse(
            {"status": "ready" if ready else "not_ready", "checks": report},
            status_code=200 if ready else 503,
        )

    return router


async def _run_check(check: ReadinessCheck, timeout: float) -> str:
    try:
        await asyncio.wait_for(check(), timeout)
    except Exception as exc:  # a readiness probe reports any failure instead of raising it
        return f"error: {type(exc).__name__}"
    return "ok"
