"""Session fixtures: a real NATS (JetStream) URL and a real MongoDB-wire URL.

Order: `NATS_URL` / `MONGODB_URL` if set; else testcontainers when a Docker engine answers;
else local processes on free loopback ports in temporary folders (nats-server from the venv,
`mongod` on PATH or the project's FerretDB build), stopped at the end of the session.
"""

import os
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from shared.jetstream import connect
from tools.localstack.servers import start_mongo, start_nats

pytest_plugins = ["tests.fixtures.fake_zalo"]

# Tests run services on the shipped test keys (and start them as child processes, which
# inherit this): dev mode, the one place besides `make run` where shared.startup allows that.
os.environ.setdefault("BINHYEN_DEV_MODE", "1")

TEST_DATA = Path(__file__).resolve().parent / "data"


def docker_available() -> bool:
    """True when a Docker engine answers a ping (a `docker` CLI alone proves nothing)."""
    if not os.environ.get("DOCKER_HOST") and not Path("/var/run/docker.sock").exists():
        return False
    import docker

    try:
        client = docker.from_env(timeout=3)
    except Exception:
        return False
    try:
        return bool(client.ping())
    except Exception:
        return False
    finally:
        client.close()


@pytest.fixture(scope="session")
def docker_engine() -> bool:
    return docker_available()


@pytest.fixture(scope="session")
def nats_url(docker_engine: bool) -> Iterator[str]:
    if url := os.environ.get("NATS_URL"):
        yield url
        return
    if docker_engine:
        from testcontainers.nats import NatsContainer

        with NatsContainer("nats:2.12.4-alpine", jetstream=True) as container:
            yield container.nats_uri()
        return
    with tempfile.TemporaryDirectory(prefix="binhyen-nats-") as tmp:
        server = start_nats(Path(tmp))
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture(scope="session")
def mongodb_url(docker_engine: bool) -> Iterator[str]:
    if url := os.environ.get("MONGODB_URL"):
        yield url
        return
    if docker_engine:
        from testcontainers.mongodb import MongoDbContainer

        with MongoDbContainer("mongo:7.0") as container:
            yield container.get_connection_url()
        return
    with tempfile.TemporaryDirectory(prefix="binhyen-mongo-") as tmp:
        server = start_mongo(Path(tmp))
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture
def unique() -> str:
    """A short unique token for per-test stream, bucket, database and subject names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
async def nats_client(nats_url: str) -> AsyncIterator[object]:
    nc = await connect(nats_url, name="tests")
    try:
        yield nc
    finally:
        await nc.close()


@pytest.fixture(scope="session")
def test_data_dir() -> Path:
    """`tests/data`: webhook fixtures and CAP examples copied in (sources in its README)."""
    return TEST_DATA
