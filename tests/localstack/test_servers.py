"""FerretDB's two backends as `make run` and the fixtures start them, on real servers."""

import json
import shutil
import subprocess
from pathlib import Path

import pymongo
import pytest

from tools.localstack.servers import ferretdb_backend, postgres_binaries, start_mongo


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


def _indexed_by_id(postgres_url: str) -> set[str]:
    """The collections of database `t` whose table has the GIN index on `_jsonb->'_id'`."""
    sql = "SELECT tablename FROM pg_indexes WHERE schemaname = 't' AND indexname LIKE '%_id_gin'"
    psql = postgres_binaries() / "psql"
    out = subprocess.run(
        [str(psql), postgres_url, "-X", "-A", "-t", "-c", sql],
        check=True, capture_output=True, text=True,
    ).stdout  # fmt: skip
    return {table.rsplit("_", 1)[0] for table in out.split()}


def _drop_the_trigger(postgres_url: str) -> None:
    psql = postgres_binaries() / "psql"
    sql = "DROP EVENT TRIGGER binhyen_id_index"
    subprocess.run([str(psql), postgres_url, "-X", "-q", "-c", sql], check=True)


@pytest.mark.skipif(shutil.which("mongod") is not None, reason="a mongod on PATH is used instead")
def test_a_find_by_id_is_served_by_an_index_on_postgresql(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """FerretDB's own `_id` index cannot serve its `@>` filter; the GIN index added by
    `start_postgres` does, for each collection FerretDB creates, and a table made while the
    trigger was missing (a cluster older than it) gets its index at the next start."""
    monkeypatch.setenv("FERRETDB_BACKEND", "postgresql")
    server = start_mongo(tmp_path / "mongo")
    try:
        with pymongo.MongoClient(server.url, serverSelectionTimeoutMS=10_000) as client:
            client["t"]["cases"].insert_one({"_id": "c1"})
            explained = client["t"].command(
                "explain", {"find": "cases", "filter": {"_id": "c1"}}, verbosity="queryPlanner"
            )
            assert "Bitmap Index Scan" in json.dumps(explained["queryPlanner"])
            _drop_the_trigger(server.backing[0].url)
            client["t"]["older"].insert_one({"_id": "c1"})
            assert _indexed_by_id(server.backing[0].url) == {"cases"}
    finally:
        server.stop()
    server = start_mongo(tmp_path / "mongo")
    try:
        with pymongo.MongoClient(server.url, serverSelectionTimeoutMS=10_000) as client:
            client["t"]["newer"].insert_one({"_id": "c1"})
            assert _indexed_by_id(server.backing[0].url) == {"cases", "older", "newer"}
    finally:
        server.stop()
