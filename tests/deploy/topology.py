"""The compose topology as local processes: nats-servers started from deploy/nats/*.conf.

Each node gets a copy of `nats.conf` (only `store_dir` is changed, to a temporary folder) and of
`accounts.conf`; ports, the cluster listener and routes are given on the command line, so the
nodes listen on distinct loopback ports. Passwords are fresh random values in the environment,
exactly as compose passes them.
"""

import json
import os
import re
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from tools.localstack.servers import LOOPBACK, free_port, nats_server_binary, wait_for_port

NATS_DIR = Path(__file__).resolve().parents[2] / "deploy" / "nats"
COMPOSE_STORE_DIR = "/data/jetstream"


def secret_variables() -> list[str]:
    """Every `$NATS_..._PASSWORD` the NATS configuration reads from the environment."""
    text = (NATS_DIR / "nats.conf").read_text() + (NATS_DIR / "accounts.conf").read_text()
    return sorted(set(re.findall(r"\$(NATS_\w+_PASSWORD)", text)))


@dataclass
class Node:
    name: str
    port: int
    cluster_port: int
    monitor_port: int
    folder: Path
    process: subprocess.Popen[bytes] | None = None

    @property
    def client_url(self) -> str:
        return f"nats://{LOOPBACK}:{self.port}"

    def varz(self) -> dict[str, object]:
        with urllib.request.urlopen(f"http://{LOOPBACK}:{self.monitor_port}/varz", timeout=2) as r:
            return json.loads(r.read())  # type: ignore[no-any-return]

    def is_healthy(self) -> bool:
        url = f"http://{LOOPBACK}:{self.monitor_port}/healthz"
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                return bool(response.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """SIGKILL, as a crash would."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


@dataclass
class Topology:
    nodes: list[Node]
    passwords: dict[str, str] = field(default_factory=dict)

    def url(self, user: str, node: int = 0) -> str:
        password = self.passwords[f"NATS_{user.upper()}_PASSWORD"]
        return f"nats://{user}:{password}@{LOOPBACK}:{self.nodes[node].port}"

    def env(self) -> dict[str, str]:
        routes = ", ".join(
            f'"nats://route:{self.passwords["NATS_ROUTE_PASSWORD"]}@{LOOPBACK}:{n.cluster_port}"'
            for n in self.nodes
        )
        return os.environ | self.passwords | {"NATS_ROUTES": f"[{routes}]"}

    def start(self, node: Node) -> None:
        """Start (or restart, on the same data) one node."""
        env = self.env() | {"NATS_SERVER_NAME": node.name}
        args = [nats_server_binary(), "-c", str(node.folder / "nats.conf"), "-a", LOOPBACK]
        args += ["-p", str(node.port), "-m", str(node.monitor_port)]
        if len(self.nodes) > 1:
            args += ["--cluster", f"nats://{LOOPBACK}:{node.cluster_port}"]
        log = open(node.folder / "server.log", "ab")  # noqa: SIM115 - the child owns it
        try:
            node.process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env)
        finally:
            log.close()
        try:
            wait_for_port(node.port, process=node.process)
        except RuntimeError as exc:
            log_tail = (node.folder / "server.log").read_text()[-1500:]
            raise RuntimeError(f"{node.name}: {exc}\n{log_tail}") from exc

    def wait_healthy(self, timeout: float = 30.0) -> None:
        """Until every running node reports JetStream healthy (meta leader known)."""
        deadline = time.monotonic() + timeout
        while not all(n.is_healthy() for n in self.nodes if n.running):
            if time.monotonic() > deadline:
                raise TimeoutError("the NATS cluster did not become healthy")
            time.sleep(0.1)


def _node_folder(root: Path, name: str, clustered: bool) -> Path:
    folder = root / name
    folder.mkdir(parents=True)
    config = (NATS_DIR / "nats.conf").read_text()
    assert COMPOSE_STORE_DIR in config
    config = config.replace(COMPOSE_STORE_DIR, str(folder / "data"))
    if not clustered:
        config = re.sub(r"\ncluster \{.*?\n\}\n", "\n", config, flags=re.DOTALL)
    (folder / "nats.conf").write_text(config)
    (folder / "accounts.conf").write_text((NATS_DIR / "accounts.conf").read_text())
    return folder


@contextmanager
def nats_topology(root: Path, size: int) -> Iterator[Topology]:
    """`size` nodes from the deploy configuration (1: no cluster block), stopped at the end."""
    names = [f"nats-{i}" for i in range(1, size + 1)]
    nodes = [
        Node(name, free_port(), free_port(), free_port(), _node_folder(root, name, size > 1))
        for name in names
    ]
    # nats-server parses an environment value as configuration: a letter first, then hex.
    topology = Topology(nodes, {v: "p" + secrets.token_hex(16) for v in secret_variables()})
    try:
        for node in nodes:
            topology.start(node)
        topology.wait_healthy()
        yield topology
    finally:
        for node in nodes:
            node.stop()
