"""`python -m services.analytics`: counters from the event streams, metrics API, dashboard."""

import uvicorn

from services.analytics.app import create_app
from services.analytics.settings import AnalyticsSettings
from shared.logging import configure_logging


def main() -> None:
    settings = AnalyticsSettings()
    configure_logging(settings.log_level, service="analytics")
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
