"""`make run`: the whole system on loopback, as processes, until Ctrl-C.

NATS (JetStream) and a MongoDB-wire server are started unless `NATS_URL` / `MONGODB_URL` point
at running ones; then the fake Zalo server and every service. Data lives in `var/run/` so a
second `make run` finds the streams and collections of the first. Staff sign in with the DEMO
accounts it creates in the identity service (`tools/localstack/demo_accounts.py`); the DEMO
static tokens below are kept for curl and the tests (dev mode only, `shared/auth.py`).
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import httpx

from shared.auth import token_digest
from shared.places import DEMO_PLACES_FILE
from shared.startup import dev_secrets
from tools.demo_world import WORLD_FILE, World
from tools.localstack import demo_accounts
from tools.localstack.servers import REPO_ROOT, ManagedProcess, free_port, start_mongo, start_nats

VAR = Path(os.environ.get("BINHYEN_RUN_DIR", str(REPO_ROOT / "var" / "run")))

# DEMO static staff tokens, loopback only (dev mode): printed at start so a person can try the
# APIs with curl; the product path is the identity service's accounts and API tokens.
DEMO_STAFF = {
    "demo-admin": {"id": "u-admin", "name": "Quản trị viên", "roles": ["admin"]},
    "demo-dispatcher": {
        "id": "u-disp",
        "name": "Trực ban Quang Phú",
        "roles": ["dispatcher"],
        "wards": ["quang-phu"],
    },
    "demo-analyst": {"id": "u-analyst", "name": "Lãnh đạo", "roles": ["analyst"]},
    "demo-editor": {"id": "u-editor", "name": "Biên tập viên", "roles": ["editor"]},
    "demo-registrar": {"id": "u-registrar", "name": "Quản lý sổ nhóm", "roles": ["registrar"]},
    "demo-approver": {"id": "u-approver", "name": "Người duyệt", "roles": ["approver"]},
}


# Ports are BASE_PORT + offset (8010, 8020, ... by default); BINHYEN_BASE_PORT moves them all.
BASE_PORT = int(os.environ.get("BINHYEN_BASE_PORT", "8000"))


@dataclass(frozen=True)
class Service:
    name: str
    module: str
    port_offset: int

    @property
    def port(self) -> int:
        return BASE_PORT + self.port_offset

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"


SERVICES = (
    Service("fake-zalo", "tools.fake_zalo", 90),
    Service("ingest", "services.ingest", 10),
    Service("reports", "services.reports", 20),
    Service("broadcast", "services.broadcast", 30),
    Service("analytics", "services.analytics", 40),
    Service("identity", "services.identity", 50),
    Service("console", "services.console", 60),  # last: it forwards to the others
)
FAKE_ZALO, INGEST, BROADCAST, IDENTITY = SERVICES[0], SERVICES[1], SERVICES[3], SERVICES[5]
CONSOLE = SERVICES[6]
MAX_RESTARTS = 5
CONSOLE_UPSTREAMS = ("identity", "reports", "broadcast", "analytics")


def _port_or_free(preferred: int) -> int:
    import socket

    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", preferred))
        except OSError:
            return free_port()
    return preferred


# NATS' monitoring endpoint (/varz, /jsz, /healthz; docs/observability.md), on loopback.
NATS_MONITOR_PORT = BASE_PORT + 222


def start_servers() -> tuple[str, str, list[ManagedProcess]]:
    started: list[ManagedProcess] = []
    nats_url = os.environ.get("NATS_URL")
    if not nats_url:
        monitor = ["-m", str(_port_or_free(NATS_MONITOR_PORT))]
        nats = start_nats(
            VAR / "nats", port=_port_or_free(4222), extra_args=monitor, log_file=VAR / "nats.log"
        )
        nats.monitor_url = f"http://127.0.0.1:{monitor[1]}"
        started.append(nats)
        nats_url = nats.url
    mongodb_url = os.environ.get("MONGODB_URL")
    if not mongodb_url:
        mongo = start_mongo(VAR / "mongo", port=_port_or_free(27017), log_file=VAR / "mongo.log")
        started.append(mongo)
        mongodb_url = mongo.url
    return nats_url, mongodb_url, started


def service_env(nats_url: str, mongodb_url: str, service: Service) -> dict[str, str]:
    staff = {token_digest(token): user for token, user in DEMO_STAFF.items()}
    fake = FAKE_ZALO.url
    env = {
        "NATS_URL": nats_url,
        "MONGODB_URL": mongodb_url,
        **dev_secrets(VAR),  # dev mode; pseudonym and vault keys generated once per run folder
        "ZALO_API_BASE": os.environ.get("ZALO_API_BASE", fake),
        "ZALO_OAUTH_BASE": os.environ.get("ZALO_OAUTH_BASE", fake),
        "STAFF_TOKENS": json.dumps(staff),
        "SPOOL_DIR": str(VAR / "ingest-spool"),
        "FAKE_WEBHOOK_URL": f"{INGEST.url}/webhooks/zalo",
        "PYTHONPATH": str(REPO_ROOT),
        "HTTP_PORT": str(service.port),
        # Demo villages and residential groups (labelled DEMO in the file name).
        "PLACES_EXTRA_FILE": str(DEMO_PLACES_FILE),
        # One demo world for every part: its units (with households) are the gazetteer's, the
        # fake Zalo serves its groups and residents, broadcast's registry is imported from it
        # (`import_registry`), and reports places a group's messages in the group's ward.
        "PLACES_UNITS_FILE": str(WORLD_FILE),
        "FAKE_WORLD_FILE": str(WORLD_FILE),
        "GROUP_WARDS": json.dumps(World.load().group_wards()),
        # A demo is tried at any hour: non-urgent notices go out at once instead of waiting for
        # 06:00 Vietnam time. QUIET_HOURS_ENABLED=true in the environment turns them back on.
        "QUIET_HOURS_ENABLED": os.environ.get("QUIET_HOURS_ENABLED", "false"),
        # Where the console forwards `/api/<service>/...` (services/console/proxy.py).
        **{f"{s.name.upper()}_URL": s.url for s in SERVICES if s.name in CONSOLE_UPSTREAMS},
    }
    return os.environ | env


def start_service(service: Service, env: dict[str, str]) -> subprocess.Popen[bytes]:
    """Start the service as its own process; its pid goes to `<run dir>/<name>.pid`."""
    log = open(VAR / f"{service.name}.log", "ab")  # noqa: SIM115 - lives as long as the child
    process = subprocess.Popen(
        [sys.executable, "-m", service.module], env=env, stdout=log, stderr=subprocess.STDOUT
    )
    (VAR / f"{service.name}.pid").write_text(str(process.pid))
    return process


def wait_healthy(service: Service, process: subprocess.Popen[bytes], timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"{service.name} exited; see {VAR / service.name}.log")
        try:
            if httpx.get(f"{service.url}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    raise TimeoutError(f"{service.name} not healthy after {timeout} s")


def import_registry() -> None:
    """Broadcast's registry from the demo world, through its public API, as staff would."""
    response = httpx.post(
        f"{BROADCAST.url}/groups/import",
        content=World.load().registry_csv().encode(),
        headers={"Authorization": "Bearer demo-admin", "Content-Type": "text/csv"},
        timeout=60,
    )
    response.raise_for_status()


def create_demo_accounts(env: dict[str, str]) -> None:
    """DEMO accounts in the identity store, with this run's IDENTITY_KEY (make run only)."""
    from services.identity.settings import IdentitySettings

    settings = IdentitySettings(
        mongodb_url=env["MONGODB_URL"],
        mongodb_database=env.get("MONGODB_DATABASE", "binhyen"),
        identity_key=env["IDENTITY_KEY"],
    )
    asyncio.run(demo_accounts.create_demo_accounts(env["MONGODB_URL"], settings))


def main() -> None:
    VAR.mkdir(parents=True, exist_ok=True)
    stopping = failed = False

    def on_signal(signum: int, frame: FrameType | None) -> None:
        nonlocal stopping
        stopping = True

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    nats_url, mongodb_url, servers = start_servers()
    children: dict[Service, subprocess.Popen[bytes]] = {}
    restarts: Counter[Service] = Counter()
    try:
        for service in SERVICES:
            process = start_service(service, service_env(nats_url, mongodb_url, service))
            children[service] = process
            wait_healthy(service, process)
            if service is BROADCAST:
                import_registry()
            if service is IDENTITY:
                create_demo_accounts(service_env(nats_url, mongodb_url, service))
        monitor = next((s.monitor_url for s in servers if s.monitor_url), None)
        print_banner(nats_url, mongodb_url, monitor)
        while not stopping:
            for service, process in list(children.items()):
                if process.poll() is None or stopping:
                    continue
                # A crashed service is started again, as compose's restart policy would; one
                # that keeps crashing stops everything.
                restarts[service] += 1
                if restarts[service] > MAX_RESTARTS:
                    print(f"{service.name} exited with {process.returncode}; stopping everything")
                    stopping = failed = True
                    break
                print(f"{service.name} exited with {process.returncode}; restarting", flush=True)
                env = service_env(nats_url, mongodb_url, service)
                children[service] = start_service(service, env)
            time.sleep(0.5)
    finally:
        print("stopping…", flush=True)
        for process in reversed(children.values()):
            process.send_signal(signal.SIGTERM)
        for process in reversed(children.values()):
            try:
                process.wait(15)
            except subprocess.TimeoutExpired:
                process.kill()
        for server in reversed(servers):
            server.stop()
        print("stopped.", flush=True)
    if failed:
        sys.exit(1)


def print_banner(nats_url: str, mongodb_url: str, nats_monitor: str | None = None) -> None:
    lines = [
        "binhyen is running (Ctrl-C stops everything):",
        f"  NATS JetStream      {nats_url}",
        f"  MongoDB-wire        {mongodb_url}",
    ]
    if nats_monitor:
        lines.append(f"  NATS monitoring     {nats_monitor}  (/varz, /jsz, /healthz)")
    lines += [f"  {s.name:<19} {s.url}  (API: {s.url}/openapi.json)" for s in SERVICES]
    lines += [
        f"  Zalo webhook        {INGEST.url}/webhooks/zalo",
        f"  dashboard           {SERVICES[4].url}/dashboard",
        f"  staff console       {CONSOLE.url}/  (sign in with a DEMO account below)",
        *demo_accounts.banner_lines(IDENTITY.url),
        "DEMO static tokens (Authorization: Bearer <token>): " + ", ".join(DEMO_STAFF),
        "Send simulated citizens' events: .venv/bin/python -m tools.zalo_sim"
        f" --url {INGEST.url}/webhooks/zalo --rate 5 --count 50",
        "Quiet hours are off here (QUIET_HOURS_ENABLED=true turns them on): notices go out"
        " at once at any hour.",
        f"Logs: {VAR}/*.log",
    ]
    print("\n".join(lines), flush=True)


if __name__ == "__main__":
    main()
