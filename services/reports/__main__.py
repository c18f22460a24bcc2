"""`python -m services.reports`: settings, logging, uvicorn."""

import uvicorn

from services.reports.app import create_app
from services.reports.settings import ReportsSettings
from shared.logging import configure_logging


def main() -> None:
    settings = ReportsSettings()
    configure_logging(settings.log_level, service="reports")
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        proxy_headers=False,
    )


if __name__ == "__main__":
    main()
