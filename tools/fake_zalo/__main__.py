"""`python -m tools.fake_zalo`: the fake Zalo server on 127.0.0.1:8090 (HTTP_PORT)."""

from shared.serve import serve
from tools.fake_zalo.app import create_app
from tools.fake_zalo.settings import FakeZaloSettings


def main() -> None:
    serve(create_app, FakeZaloSettings(), service="fake_zalo", http="httptools")


if __name__ == "__main__":
    main()
