"""`python -m services.ingest`: the webhook receiver."""

import uvicorn

from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from shared.logging import configure_logging


def main() -> None:
    settings = IngestSettings()
    configure_logging(settings.log_level, service="ingest")
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=5,
    )


if __name__ == "__main__":
    main()
