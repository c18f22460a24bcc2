"""How every HTTP service runs: JSON logs, metrics and traces (`shared.telemetry`), then
uvicorn on the configured loopback port."""

from collections.abc import Callable
from typing import TypeVar

import uvicorn
from fastapi import FastAPI

from shared.logging import configure_logging
from shared.settings import ServiceSettings
from shared.telemetry import configure_telemetry, instrument

S = TypeVar("S", bound=ServiceSettings)
MAX_INCOMPLETE_HEADERS = 64 * 1024


def serve(create_app: Callable[[S], FastAPI], settings: S, service: str, http: str = "h11") -> None:
    """Log as JSON, build the app, serve until SIGINT/SIGTERM (the lifespan closes connections).

    Staff APIs run on h11, which stops reading a request whose headers pass
    `MAX_INCOMPLETE_HEADERS` (httptools reads any amount: 16 MB of headers were accepted);
    between 32 KiB and that, `shared.web` answers 431. Ingest keeps httptools (`http=`) for
    the webhook's throughput (docs/benchmarks.md) and refuses large headers in the app."""
    configure_logging(settings.log_level, service=service)
    configure_telemetry(service, settings)
    uvicorn.run(
        instrument(create_app(settings), service),
        host=settings.http_host,
        port=settings.http_port,
        http=http,
        h11_max_incomplete_event_size=MAX_INCOMPLETE_HEADERS,
        log_config=None,  # our JSON handler on the root logger, not uvicorn's
        access_log=False,  # per-request lines cost throughput and could carry ids
        proxy_headers=False,
        server_header=False,  # no software banner (and one header less to write per response)
        timeout_graceful_shutdown=5,
    )
