"""How every HTTP service runs: JSON logs, then uvicorn on the configured loopback port."""

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from shared.logging import configure_logging
from shared.settings import ServiceSettings

S = TypeVar("S", bound=ServiceSettings)


def serve(create_app: Callable[[S], FastAPI], settings: S, service: str) -> None:
    """Log as JSON, build the app, serve until SIGINT/SIGTERM (the lifespan closes connections)."""
    configure_logging(settings.log_level, service=service)
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,  # our JSON handler on the root logger, not uvicorn's
        access_log=False,  # per-request lines cost throughput and could carry ids
        proxy_headers=False,
        timeout_graceful_shutdown=5,
    )
