"""`python -m services.broadcast`: the HTTP API (port 8030) plus sender workers."""

import uvicorn

from services.broadcast.app import create_app
from services.broadcast.settings import BroadcastSettings
from shared.logging import configure_logging


def main() -> None:
    settings = BroadcastSettings()
    configure_logging(settings.log_level, service=settings.service_name)
    uvicorn.run(
        create_app(settings), host=settings.http_host, port=settings.http_port, log_config=None
    )


if __name__ == "__main__":
    main()
