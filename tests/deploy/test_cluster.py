"""The compose topology as processes: 3 NATS nodes (deploy/nats), R3 streams, two ingest replicas.

One NATS node is killed (SIGKILL) while signed webhooks flow: every event answered 200 must
reach the stream exactly once, and events keep flowing to a consumer during the outage.
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import nats
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig
from nats.js.errors import NotFoundError, ServiceUnavailableError

from shared.jetstream import ensure_consumer, inbox_prefix
from shared.subjects import TIPS_STREAM, ZALO_EVENTS_STREAM
from shared.zalo.signature import SIGNATURE_HEADER, sign
from tests.deploy.topology import Topology, nats_topology
from tools.localstack.servers import LOOPBACK, free_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

REPO = Path(__file__).resolve().parents[2]
APP_ID = "360846524940903967"
OA_SECRET = "cluster-test-oa-secret"
STREAM = ZALO_EVENTS_STREAM.name


@pytest.fixture(scope="module")
def cluster() -> Iterator[Topology]:
    with (
        tempfile.TemporaryDirectory(prefix="binhyen-cluster-") as tmp,
        nats_topology(Path(tmp), size=3) as running,
    ):
        yield running


@dataclass
class Replica:
    """`python -m services.ingest` as compose runs it: configuration from the environment."""

    url: str
    process: subprocess.Popen[bytes]
    log: Path

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)


def start_service(module: str, env: dict[str, str], folder: Path) -> Replica:
    """`python -m <module>` with its configuration in the environment, as compose runs it."""
    folder.mkdir(parents=True)
    port = free_port()
    env = os.environ | {
        "PYTHONPATH": str(REPO),
        "HTTP_HOST": LOOPBACK,
        "HTTP_PORT": str(port),
        "NATS_STREAM_REPLICAS": "3",
        "PSEUDONYM_KEY": "cluster-test-pseudonym-key",
        "LOG_LEVEL": "WARNING",
        **env,
    }
    log = folder / "service.log"
    with open(log, "ab") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", module],
            cwd=folder,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    return Replica(f"http://{LOOPBACK}:{port}", process, log)


def start_ingest(cluster: Topology, node: int, folder: Path) -> Replica:
    env = {
        "NATS_URL": cluster.url("ingest", node),
        "SPOOL_DIR": str(folder / "spool"),
        "ZALO_APP_ID": APP_ID,
        "ZALO_OA_SECRET_KEY": OA_SECRET,
    }
    return start_service("services.ingest", env, folder)


async def wait_ready(client: httpx.AsyncClient, replica: Replica, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if replica.process.poll() is not None:
            raise RuntimeError(f"service exited:\n{replica.log.read_text()[-2000:]}")
        try:
            if (await client.get(f"{replica.url}/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)  # polling a health endpoint, bounded by the deadline
    raise TimeoutError(f"service not ready:\n{replica.log.read_text()[-2000:]}")


@pytest.fixture(scope="module")
def replicas(cluster: Topology) -> Iterator[list[Replica]]:
    with tempfile.TemporaryDirectory(prefix="binhyen-ingest-") as tmp:
        started = [start_ingest(cluster, node, Path(tmp) / f"ingest-{node}") for node in (0, 1)]
        try:
            yield started
        finally:
            for replica in started:
                replica.stop()


def webhook(
    template: dict[str, Any], number: int, sender: str | None = None, text: str | None = None
) -> tuple[bytes, dict[str, str]]:
    body = json.loads(json.dumps(template))
    body["app_id"] = APP_ID
    body["timestamp"] = str(int(time.time() * 1000))
    body["message"]["msg_id"] = f"cluster-{number:06d}"
    if sender is not None:
        body["sender"]["id"] = sender
    if text is not None:
        body["message"]["text"] = text
    raw = json.dumps(body, ensure_ascii=False).encode()
    signature = sign(APP_ID, raw, body["timestamp"], OA_SECRET)
    return raw, {SIGNATURE_HEADER: signature, "content-type": "application/json"}


@dataclass
class Flow:
    """What the webhook senders were told (200s) and what the consumer saw."""

    acknowledged: dict[str, str] = field(default_factory=dict)  # event id -> ingest status
    outage_statuses: Counter[str] = field(default_factory=Counter)
    consumed: list[str] = field(default_factory=list)
    consumed_during_outage: int = 0
    outage: bool = False
    all_sent: bool = False
    caught_up: asyncio.Event = field(default_factory=asyncio.Event)

    def check_caught_up(self) -> None:
        if self.all_sent and set(self.acknowledged) <= set(self.consumed):
            self.caught_up.set()


async def send(
    client: httpx.AsyncClient,
    replicas: list[Replica],
    template: dict[str, object],
    numbers: range,
    flow: Flow,
) -> None:
    async def one(number: int) -> None:
        raw, headers = webhook(template, number)
        replica = replicas[number % len(replicas)]
        response = await client.post(f"{replica.url}/webhooks/zalo", content=raw, headers=headers)
        if response.status_code == 200:
            answer = response.json()
            flow.acknowledged[answer["event_id"]] = answer["status"]
            if flow.outage:
                flow.outage_statuses[answer["status"]] += 1

    for start in range(numbers.start, numbers.stop, 8):
        await asyncio.gather(*(one(n) for n in range(start, min(start + 8, numbers.stop))))


async def consume(js: object, durable: str, flow: Flow, stop: asyncio.Event) -> None:
    sub = await js.pull_subscribe_bind(durable, stream=STREAM)  # type: ignore[attr-defined]
    while not stop.is_set():
        flow.check_caught_up()
        try:
            messages = await sub.fetch(64, timeout=0.5)
        except (
            *TRANSIENT,
            nats.errors.ConnectionClosedError,
            nats.errors.ConnectionReconnectingError,
        ):
            continue
        for message in messages:
            flow.consumed.append((message.headers or {}).get("Nats-Msg-Id", ""))
            if flow.outage:
                flow.consumed_during_outage += 1
            await message.ack()


@pytest.fixture
async def consumer_js(cluster: Topology) -> AsyncIterator[object]:
    # Every node's URL carries the credentials, so this client fails over to any live node.
    nc: NatsClient = await nats.connect(
        # ingest's user: a reader of its own stream, with a durable of the test's own.
        [cluster.url("ingest", node) for node in range(3)],
        inbox_prefix=inbox_prefix(cluster.url("ingest")),
        max_reconnect_attempts=300,
        reconnect_time_wait=0.2,
    )
    try:
        yield nc.jetstream(timeout=5)
    finally:
        await nc.close()


# What the JetStream API answers while a cluster elects leaders or a node is missing.
TRANSIENT = (
    NotFoundError,
    ServiceUnavailableError,
    TimeoutError,
    nats.errors.TimeoutError,
    nats.errors.NoRespondersError,
)


async def stream_info(js: object, timeout: float = 30) -> object:
    """The stream's info, asked again while the cluster cannot answer yet (bounded)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return await js.stream_info(STREAM)  # type: ignore[attr-defined]
        except TRANSIENT:
            if time.monotonic() > deadline:
                raise
            await asyncio.sleep(0.2)  # polling the JetStream API, bounded by the deadline


def test_nodes_run_the_deploy_durability_settings(cluster: Topology) -> None:
    varz = [node.varz() for node in cluster.nodes]
    assert len({v["server_name"] for v in varz}) == 3
    assert {v["cluster"]["name"] for v in varz} == {"binhyen"}  # type: ignore[index]
    for v, node in zip(varz, cluster.nodes, strict=True):
        config = v["jetstream"]["config"]  # type: ignore[index]
        assert config["sync_always"] is True, "sync_interval: always (fsync before the ack)"
        assert config["store_dir"].startswith(str(node.folder))
    assert len({node.port for node in cluster.nodes} | {n.cluster_port for n in cluster.nodes}) == 6


async def replicas_current(js: object, expected: int, timeout: float = 30) -> None:
    """After the restart the killed node catches up: leader plus current followers = R3."""
    deadline = time.monotonic() + timeout
    while True:
        cluster = (await stream_info(js)).cluster  # type: ignore[attr-defined]
        current = [peer for peer in cluster.replicas or [] if peer.current and not peer.offline]
        if cluster.leader and len(current) + 1 == expected:
            return
        assert time.monotonic() < deadline, f"replicas not current: {cluster}"
        await asyncio.sleep(0.2)  # polling the stream's cluster state, bounded above


@pytest.fixture
async def reports_replicas(
    cluster: Topology, mongodb_url: str, unique: str
) -> AsyncIterator[list[Replica]]:
    env = {
        "MONGODB_URL": mongodb_url,
        "ZALO_KV_REPLICAS": "3",
        "SEND_REPLIES": "false",
        "TIPSTER_VAULT_KEY": "cluster-test-vault-key",
    }
    started: list[Replica] = []
    with tempfile.TemporaryDirectory(prefix="binhyen-reports-") as tmp:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                for node in range(3):
                    node_env = env | {
                        "NATS_URL": cluster.url("reports", node),
                        "MONGODB_DATABASE": f"deploy_{unique}_reports",  # shared, as deployed
                    }
                    folder = Path(tmp) / f"reports-{node}"
                    started.append(start_service("services.reports", node_env, folder))
                    await wait_ready(client, started[-1])
            yield started
        finally:
            for replica in started:
                replica.stop()


async def test_three_reports_replicas_triage_every_tip_once(
    cluster: Topology,
    replicas: list[Replica],
    reports_replicas: list[Replica],
    test_data_dir: Path,
    unique: str,
) -> None:
    template = json.loads((test_data_dir / "zalo-webhooks/user_send_text.json").read_text())
    tips = 30
    marker = f"ma-{unique}"
    async with httpx.AsyncClient(timeout=10) as client:
        for replica in [*replicas, *reports_replicas]:
            await wait_ready(client, replica)
        nc = await nats.connect(
            [cluster.url("reports", node) for node in range(3)],
            inbox_prefix=inbox_prefix(cluster.url("reports")),
            max_reconnect_attempts=30,
        )
        try:
            js = nc.jetstream(timeout=5)
            desk = f"reports-desk-{unique}"
            await ensure_consumer(js, TIPS_STREAM.name, ConsumerConfig(durable_name=desk))
            sub = await js.pull_subscribe_bind(desk, stream=TIPS_STREAM.name)
            for number in range(tips):
                text = f"Nhà em vừa bị mất xe máy trước cửa, {marker} số {number}"
                raw, headers = webhook(template, 900_000 + number, f"77{unique}{number}", text)
                replica = replicas[number % len(replicas)]
                response = await client.post(
                    f"{replica.url}/webhooks/zalo", content=raw, headers=headers
                )
                assert response.status_code == 200
            triaged = await collect_triaged(sub, marker, tips)
        finally:
            await nc.close()
    by_number = Counter(event["narrative"].rsplit(" ", 1)[-1] for event in triaged)
    assert len(by_number) == tips, f"tips not triaged: {sorted(by_number)}"
    assert set(by_number.values()) == {1}, f"triaged more than once: {by_number}"
    assert len({event["case_id"] for event in triaged}) == tips


async def collect_triaged(sub: Any, marker: str, expected: int) -> list[dict[str, Any]]:
    """`tip.triaged` events of this test's tips, read from the TIPS stream (bounded wait)."""
    triaged: list[dict[str, Any]] = []
    seen: Counter[str] = Counter()
    deadline = time.monotonic() + 90
    while len({e["narrative"] for e in triaged}) < expected:
        assert time.monotonic() < deadline, f"{len(triaged)} of {expected} tips triaged; {seen}"
        try:
            messages = await sub.fetch(50, timeout=1)
        except (TimeoutError, nats.errors.TimeoutError):
            continue
        for message in messages:
            event = json.loads(message.data)
            seen[event.get("type", "?")] += 1
            if event.get("type") == "tip.triaged" and marker in event.get("narrative", ""):
                triaged.append(event)
            await message.ack()
    # Anything a second replica would have triaged twice is in the stream by now too.
    try:
        for message in await sub.fetch(100, timeout=2):
            event = json.loads(message.data)
            if event.get("type") == "tip.triaged" and marker in event.get("narrative", ""):
                triaged.append(event)
    except (TimeoutError, nats.errors.TimeoutError):
        pass
    return triaged


@pytest.mark.parametrize("service", ["broadcast", "analytics"])  # analytics reads both
async def test_two_replicas_start_with_their_own_nats_user(
    cluster: Topology, replicas: list[Replica], mongodb_url: str, unique: str, service: str
) -> None:
    started: list[Replica] = []
    with tempfile.TemporaryDirectory(prefix=f"binhyen-{service}-") as tmp:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                for replica in replicas:
                    await wait_ready(client, replica)  # ingest owns ZALO_EVENTS: it goes first
                for node in (1, 2):
                    env = {
                        "NATS_URL": cluster.url(service, node),
                        "MONGODB_URL": mongodb_url,
                        "MONGODB_DATABASE": f"deploy_{unique}_{service}",  # shared, as deployed
                        "ZALO_KV_REPLICAS": "3",
                    }
                    folder = Path(tmp) / f"{service}-{node}"
                    started.append(start_service(f"services.{service}", env, folder))
                    await wait_ready(client, started[-1])
        finally:
            for replica in started:
                replica.stop()
    assert not violations(cluster, service), violations(cluster, service)


def violations(cluster: Topology, user: str) -> list[str]:
    """Permission violations the nodes logged for `user`."""
    return [
        line
        for node in cluster.nodes
        for line in (node.folder / "server.log").read_text().splitlines()
        if f"user:{user}" in line and "Violation" in line
    ]


def test_no_service_was_refused_anything(cluster: Topology) -> None:
    """Least privilege did not get in the way of real work (the checks above ran every user)."""
    for user in ("ingest", "reports", "broadcast", "analytics"):
        assert not violations(cluster, user), violations(cluster, user)


async def test_killing_a_nats_node_loses_no_acknowledged_event(
    cluster: Topology,
    replicas: list[Replica],
    consumer_js: object,
    test_data_dir: Path,
    unique: str,
) -> None:
    template = json.loads((test_data_dir / "zalo-webhooks/user_send_text.json").read_text())
    flow, stop = Flow(), asyncio.Event()
    async with httpx.AsyncClient(timeout=10) as client:
        for replica in replicas:
            await wait_ready(client, replica)
        info = await stream_info(consumer_js)
        assert info.config.num_replicas == 3  # type: ignore[attr-defined]
        stored_before = info.state.messages  # type: ignore[attr-defined]
        await ensure_consumer(
            consumer_js,  # type: ignore[arg-type]
            STREAM,
            ConsumerConfig(durable_name=f"test-{unique}", ack_wait=5),
        )
        consumer = asyncio.create_task(consume(consumer_js, f"test-{unique}", flow, stop))

        await send(client, replicas, template, range(0, 100), flow)
        killed = cluster.nodes[0]  # the node ingest replica 0 is connected to
        killed.kill()
        flow.outage = True
        killed_at, sent = time.monotonic(), 100
        # At a fixed rate (~80 events/s), until the survivors have elected leaders and publish
        # again (Raft on 2 of 3 nodes; bounded at 30 s on this shared machine).
        while flow.outage_statuses["published"] < 20:
            assert time.monotonic() - killed_at < 30, f"no publish resumed: {flow.outage_statuses}"
            await asyncio.gather(
                send(client, replicas, template, range(sent, sent + 8), flow), asyncio.sleep(0.1)
            )
            sent += 8
        await asyncio.to_thread(cluster.start, killed)
        await asyncio.to_thread(cluster.wait_healthy)
        flow.outage = False
        await send(client, replicas, template, range(sent, sent + 50), flow)
        sent += 50

        flow.all_sent = True
        try:
            await asyncio.wait_for(flow.caught_up.wait(), timeout=60)
        finally:
            stop.set()
            await consumer

    missing = set(flow.acknowledged) - set(flow.consumed)
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert len(flow.acknowledged) == sent, "every signed webhook is answered 200"
    assert flow.outage_statuses["published"] > 0, "the surviving replica kept publishing"
    assert flow.outage_statuses["spooled"] > 0, "the cut-off replica spooled, then drained"
    assert flow.consumed_during_outage > 0, "the consumer kept receiving during the outage"
    info = await stream_info(consumer_js)
    stored = info.state.messages - stored_before  # type: ignore[attr-defined]
    assert stored == len(flow.acknowledged), "no event stored twice"
    # Consumers are at-least-once (an ack sent to the killed node can be lost): services dedup
    # by event id, so repeats in `flow.consumed` are allowed, losses are not.
    await replicas_current(consumer_js, expected=3)


async def test_stopping_a_node_puts_it_in_lame_duck_mode_first(cluster: Topology) -> None:
    """compose stops NATS with SIGUSR2: clients are told to move before the node goes away."""
    node = cluster.nodes[2]
    told = asyncio.Event()

    async def on_lame_duck() -> None:
        told.set()

    nc = await nats.connect(
        [cluster.url("analytics", 2), cluster.url("analytics", 1)],
        inbox_prefix=inbox_prefix(cluster.url("analytics")),
        dont_randomize=True,
        lame_duck_mode_cb=on_lame_duck,
        max_reconnect_attempts=30,
    )
    try:
        assert nc.connected_url is not None
        assert nc.connected_url.port == node.port
        assert node.process is not None
        node.process.send_signal(signal.SIGUSR2)
        await asyncio.wait_for(told.wait(), timeout=10)
    finally:
        await nc.close()
        node.kill()  # do not wait the whole lame-duck duration (30 s) in a test
