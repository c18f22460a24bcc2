"""Run the fake Zalo server on a background thread (tests, benchmarks, demos in one process)."""

import threading
from types import TracebackType

import uvicorn

from tools.fake_zalo.app import create_app
from tools.fake_zalo.settings import FakeZaloSettings
from tools.localstack.servers import LOOPBACK, wait_for_port


class ThreadedFakeZalo:
    """`with ThreadedFakeZalo(settings) as fake:` serves on 127.0.0.1:settings.http_port."""

    def __init__(self, settings: FakeZaloSettings) -> None:
        config = uvicorn.Config(
            create_app(settings),
            host=LOOPBACK,
            port=settings.http_port,
            log_level="warning",
            access_log=False,
            loop="asyncio",
            lifespan="off",
        )
        self.base_url = f"http://{LOOPBACK}:{settings.http_port}"
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="fake-zalo", daemon=True)

    def __enter__(self) -> "ThreadedFakeZalo":
        self._thread.start()
        wait_for_port(self._server.config.port)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.should_exit = True
        self._thread.join(10)
