"""`python -m tools.fake_zalo` serves on the configured loopback port (what `make run` starts)."""

import os
import subprocess
import sys

import httpx

from tools.localstack.servers import free_port, wait_for_port


def test_module_entry_point_serves_health_and_api() -> None:
    port = free_port()
    env = os.environ | {"HTTP_PORT": str(port), "LOG_LEVEL": "WARNING"}
    process = subprocess.Popen(
        [sys.executable, "-m", "tools.fake_zalo"],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_for_port(port, process=process)
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as http:
            assert http.get("/healthz").json() == {"status": "ok"}
            headers = {"access_token": "fake-initial-access-token"}
            assert http.get("/v2.0/oa/getoa", headers=headers).json()["error"] == 0
    finally:
        process.terminate()
        process.wait(10)
