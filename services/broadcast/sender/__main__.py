"""`python -m services.broadcast.sender`: sender workers, planner and handlers, no HTTP API.

An entry point of its own (a package's `__main__`), so that no module the process imports is
also run as `__main__` (which would load it twice)."""

import asyncio
import logging
import signal

from services.broadcast.composition import build
from services.broadcast.settings import BroadcastSettings
from shared.logging import configure_logging
from shared.metrics import serve_without_http_app
from shared.process import run_worker
from shared.startup import require_secrets
from shared.telemetry import configure_telemetry

log = logging.getLogger(__name__)


async def serve_workers(settings: BroadcastSettings) -> None:
    async with build(settings, workers=True) as service:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        log.info("sender replica started", extra={"worker": service.sender.worker})
        await stop.wait()


def main() -> None:
    settings = BroadcastSettings()
    configure_logging(settings.log_level, service=f"{settings.service_name}-sender")
    configure_telemetry("broadcast", settings)
    serve_without_http_app()
    require_secrets(settings, "zalo_app_secret_key", "pseudonym_key")
    run_worker(serve_workers(settings))


if __name__ == "__main__":
    main()
