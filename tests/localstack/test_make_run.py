"""`make run`'s stack: everything starts on loopback, answers, takes a webhook, and stops
cleanly on Ctrl-C (SIGINT)."""

import asyncio
import os
import random
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from tools.localstack.servers import REPO_ROOT
from tools.zalo_sim.__main__ import run as simulate

pytestmark = [pytest.mark.integration, pytest.mark.slow]
OFFSETS = (10, 20, 30, 40, 90)


def _free_base() -> int:
    # Below the kernel's ephemeral range, so no outgoing connection takes one of our ports
    # between this check and the services binding them.
    low = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    for _ in range(50):
        base = random.randrange(10_000, max(10_100, low - 100), 100)
        if all(_is_free(base + offset) for offset in OFFSETS):
            return base
    raise RuntimeError("no free port range")


def _is_free(port: int) -> bool:
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


def test_whole_system_runs_and_stops_on_ctrl_c(tmp_path: Path) -> None:
    base = _free_base()
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in {"NATS_URL", "MONGODB_URL"}  # make run starts its own servers here
    }
    env |= {"BINHYEN_BASE_PORT": str(base), "BINHYEN_RUN_DIR": str(tmp_path)}
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
        assert "NATS JetStream      nats://127.0.0.1:" in banner
        for offset in OFFSETS:
            assert f"http://127.0.0.1:{base + offset}" in banner
            ready = httpx.get(f"http://127.0.0.1:{base + offset}/readyz", timeout=5)
            assert ready.status_code == 200, (offset, ready.text)
        statuses = asyncio.run(
            simulate(f"http://127.0.0.1:{base + 10}/webhooks/zalo", 50.0, 10, ["user_send_text"], 1)
        )
        assert statuses == {"200 published": 10}
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = process.communicate(timeout=90)
    assert process.returncode == 0, output
    assert output.rstrip().endswith("stopped.")
    assert all(_is_free(base + offset) for offset in OFFSETS)
