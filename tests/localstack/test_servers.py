"""FerretDB's two backends as `make run` and the fixtures start them, on real servers."""

import shutil
from pathlib import Path

import pymongo
import pytest

from tools.localstack.servers import ferretdb_backend, start_mongo


@pytest.mark.skipif(shutil.which("mongod") is not None, reason="a mongod on PATH is used instead")
@pytest.mark.parametrize("backend", ["postgresql", "sqlite"])
def test_each_backend_stores_and_survives_a_restart(
    backend: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("FERRETDB_BACKEND", backend)
    for round_ in range(2):  # the second start finds the first one's data (as `make run` does)
        server = start_mongo(tmp_path / "mongo")
        try:
            with pymongo.MongoClient(server.url, serverSelectionTimeoutMS=10_000) as client:
                cases = client["t"]["cases"]
                if round_ == 0:
                    cases.insert_one({"_id": "c1", "ward": "quang-phu"})
                assert cases.find_one({"ward": "quang-phu"}) == {"_id": "c1", "ward": "quang-phu"}
        finally:
            server.stop()
        assert server.process.poll() is not None
        assert all(backing.process.poll() is not None for backing in server.backing)
    assert len(server.backing) == (1 if backend == "postgresql" else 0)


def test_postgresql_is_the_default_and_a_typo_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FERRETDB_BACKEND", raising=False)
    assert ferretdb_backend() == "postgresql"
    monkeypatch.setenv("FERRETDB_BACKEND", "sqlight")
    with pytest.raises(ValueError, match="FERRETDB_BACKEND"):
        ferretdb_backend()
