"""`make run` as a test drives it: `python -m tools.localstack` on a free port range and a run
folder of its own, its banner read for the addresses, stopped with Ctrl-C (SIGINT)."""

import os
import random
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tools.localstack.servers import REPO_ROOT

OFFSETS = {
    "ingest": 10,
    "reports": 20,
    "broadcast": 30,
    "analytics": 40,
    "identity": 50,
    "console": 60,
    "fake-zalo": 90,
}


@dataclass
class Stack:
    base: int
    run_dir: Path
    nats_url: str
    banner: str
    process: subprocess.Popen[str]

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.base + OFFSETS[service]}"

    def pid(self, service: str) -> int:
        return int((self.run_dir / f"{service}.pid").read_text())

    def kill(self, service: str) -> int:
        """kill -9 the service; returns the pid it had."""
        pid = self.pid(service)
        os.kill(pid, signal.SIGKILL)
        return pid

    def wait_restarted(self, service: str, old_pid: int, timeout: float = 90) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.pid(service) != old_pid and is_ready(self.url(service)):
                return
            time.sleep(0.2)
        raise AssertionError(f"{service} was not restarted within {timeout} s")


def is_ready(url: str) -> bool:
    try:
        return httpx.get(f"{url}/readyz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def free_base() -> int:
    # Below the kernel's ephemeral range, so no outgoing connection takes one of our ports
    # between this check and the services binding them.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(50):
        base = random.randrange(10_000, max(10_100, low - 100), 100)
        if all(is_free(base + offset) for offset in OFFSETS.values()):
            return base
    raise RuntimeError("no free port range")


def is_free(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) != 0


def _wait_for_banner(process: subprocess.Popen[str], timeout: float) -> list[str]:
    lines: list[str] = []
    deadline = time.monotonic() + timeout
    assert process.stdout is not None
    while time.monotonic() < deadline:
        line = process.stdout.readline()
        if not line:
            raise AssertionError("make run exited early:\n" + "".join(lines))
        lines.append(line)
        if line.startswith("Logs:"):
            return lines
    raise AssertionError("no banner in time:\n" + "".join(lines))


@contextmanager
def running_stack(run_dir: Path, **env_overrides: str) -> Iterator[Stack]:
    """The whole system as `make run` starts it; stopped (and checked to stop) afterwards."""
    base = free_base()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NATS_URL", "MONGODB_URL"}  # make run starts its own servers here
    }
    env |= {"BINHYEN_BASE_PORT": str(base), "BINHYEN_RUN_DIR": str(run_dir), **env_overrides}
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.localstack"],
        cwd=REPO_ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        banner = "".join(_wait_for_banner(process, timeout=180))
        nats_url = banner.split("NATS JetStream", 1)[1].split()[0]
        yield Stack(base, run_dir, nats_url, banner, process)
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=90)
        assert process.returncode == 0, output
        assert output.rstrip().endswith("stopped."), output
        assert all(is_free(base + offset) for offset in OFFSETS.values())
