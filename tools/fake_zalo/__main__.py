"""`python -m tools.fake_zalo`: the fake Zalo server on 127.0.0.1:8090 (HTTP_PORT)."""

import uvicorn

from shared.logging import configure_logging
from tools.fake_zalo.app import create_app
from tools.fake_zalo.settings import FakeZaloSettings


def main() -> None:
    settings = FakeZaloSettings()
    configure_logging(settings.log_level, service="fake_zalo")
    uvicorn.run(
        create_app(settings),
        host=settings.http_host,
        port=settings.http_port,
        log_config=None,
        access_log=False,
    )


if __name__ == "__main__":
    main()
