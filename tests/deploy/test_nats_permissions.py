"""deploy/nats/accounts.conf loaded by a real nats-server: each user may do its own work only."""

import asyncio
import contextlib
import importlib.util
import os
import secrets
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import nats
import nats.errors
import pytest
from nats.aio.client import Client as NatsClient
from nats.js.api import ConsumerConfig
from nats.js.errors import NoStreamResponseError

from shared import subjects
from shared.jetstream import ensure_consumer, ensure_stream, inbox_prefix
from tests.deploy.topology import NATS_DIR, Topology, nats_topology, secret_variables
from tools.localstack.servers import nats_server_binary

pytestmark = pytest.mark.integration


def _renderer():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location(
        "render_accounts", NATS_DIR / "render_accounts.py"
    )
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


render_accounts = _renderer()


@pytest.fixture(scope="module")
def topology() -> Iterator[Topology]:
    with (
        tempfile.TemporaryDirectory(prefix="binhyen-nats-auth-") as tmp,
        nats_topology(Path(tmp), size=1) as running,
    ):
        yield running


SENTINEL = "no-user-may-publish-this"


class Session:
    """A connection as one user, remembering the permission violations the server reports."""

    def __init__(self) -> None:
        self.violations: list[str] = []
        self.nc: NatsClient | None = None
        self._sentinel_refused = asyncio.Event()

    async def open(self, url: str) -> NatsClient:
        async def on_error(error: Exception) -> None:
            self.violations.append(str(error))
            if SENTINEL in str(error):
                self._sentinel_refused.set()

        # Replies under the user's own inbox prefix, as every service connects.
        self.nc = await nats.connect(
            url, error_cb=on_error, allow_reconnect=False, inbox_prefix=inbox_prefix(url)
        )
        return self.nc

    async def refused(self, subject: str) -> bool:
        """Publish once; True if the server answered with a permissions violation.

        The server's -ERR may come after a PONG, so a subject that is refused to everyone is
        published last: once its violation arrives, every earlier answer has arrived too.
        """
        assert self.nc is not None
        before = len(self.violations)
        await self.nc.publish(subject, b"{}")
        answers = await self.answers_since(before)
        return any(f'"{subject.lower()}"' in v.lower() for v in answers)

    async def answers_since(self, before: int) -> list[str]:
        """The violations reported for everything sent so far, after index `before`."""
        assert self.nc is not None
        self._sentinel_refused.clear()
        await self.nc.publish(SENTINEL, b"{}")
        await self.nc.flush(timeout=10)
        await asyncio.wait_for(self._sentinel_refused.wait(), timeout=30)
        return [v for v in self.violations[before:] if SENTINEL not in v]


@pytest.fixture
async def as_user(topology: Topology) -> AsyncIterator[object]:
    sessions: list[Session] = []

    async def connect(user: str) -> Session:
        session = Session()
        await session.open(topology.url(user))
        sessions.append(session)
        return session

    yield connect
    for session in sessions:
        if session.nc is not None:
            await session.nc.close()


def concrete(pattern: str) -> str:
    return pattern.replace(">", "probe").replace("*", "probe")


def test_accounts_file_is_rendered_from_current_subjects() -> None:
    assert (NATS_DIR / "accounts.conf").read_text() == render_accounts.render(), (
        "deploy/nats/accounts.conf is stale: run python deploy/nats/render_accounts.py"
    )


def test_every_service_has_a_password_variable_and_no_password_is_written() -> None:
    text = (NATS_DIR / "accounts.conf").read_text()
    for service in render_accounts.SERVICES:
        assert f"password: $NATS_{service.upper()}_PASSWORD" in text
    assert 'password: "' not in text


async def connect_refused(url: str) -> bool:
    client = NatsClient()
    try:
        await client.connect(url, allow_reconnect=False, max_reconnect_attempts=0)
    except nats.errors.Error:
        return True
    finally:
        await client.close()
    return False


async def test_unknown_and_wrong_passwords_are_refused(topology: Topology) -> None:
    assert await connect_refused(topology.nodes[0].client_url)
    wrong = topology.url("ingest").replace(topology.passwords["NATS_INGEST_PASSWORD"], "wrong")
    assert await connect_refused(wrong)
    assert not await connect_refused(topology.url("ingest"))


@pytest.mark.parametrize("service", ["ingest", "reports", "broadcast", "analytics", "identity"])
async def test_service_publishes_its_own_subjects_and_no_others(
    as_user: object, service: str
) -> None:
    grants = render_accounts.collect_grants()
    session = await as_user(service)  # type: ignore[operator]
    own = grants.get(service, render_accounts.Grants()).subjects
    for subject in sorted(own):
        assert not await session.refused(concrete(subject)), subject
    others = {s for name, g in grants.items() if name != service for s in g.subjects} - own
    for subject in sorted(others | {"tips.triaged.probe", "zalo.event.probe", "probe"}):
        if not any(render_accounts.covers(o, concrete(subject)) for o in own):
            assert await session.refused(concrete(subject)), f"{service} may publish {subject}"


async def test_ingest_does_its_jetstream_work(as_user: object) -> None:
    session = await as_user("ingest")  # type: ignore[operator]
    assert session.nc is not None
    js = session.nc.jetstream(timeout=5)
    await ensure_stream(js, subjects.ZALO_EVENTS_STREAM.to_config(1))
    await ensure_stream(js, subjects.ZALO_QUARANTINE_STREAM.to_config(1))
    ack = await js.publish(
        subjects.zalo_event_subject("user_message"), b"{}", headers={"Nats-Msg-Id": "e-1"}
    )
    again = await js.publish(
        subjects.zalo_event_subject("user_message"), b"{}", headers={"Nats-Msg-Id": "e-1"}
    )
    assert again.duplicate
    assert again.seq == ack.seq
    assert not session.violations


async def test_ingest_may_not_touch_other_streams(as_user: object) -> None:
    session = await as_user("ingest")  # type: ignore[operator]
    assert session.nc is not None
    js = session.nc.jetstream(timeout=1)
    with pytest.raises((TimeoutError, nats.errors.TimeoutError)):
        await js.add_stream(subjects.BROADCAST_WORK_STREAM.to_config(1))
    assert await session.refused("$JS.API.STREAM.DELETE.ZALO_EVENTS")
    assert await session.refused("$KV.other_bucket.key")


async def test_consumer_uses_only_its_own_durables(as_user: object) -> None:
    ingest = await as_user("ingest")  # type: ignore[operator]
    assert ingest.nc is not None
    await ensure_stream(ingest.nc.jetstream(), subjects.ZALO_EVENTS_STREAM.to_config(1))
    await ingest.nc.jetstream().publish(subjects.zalo_event_subject("follow"), b"{}")

    analytics = await as_user("analytics")  # type: ignore[operator]
    assert analytics.nc is not None
    js = analytics.nc.jetstream(timeout=5)
    durable = sorted(render_accounts.collect_grants()["analytics"].durables)[0]
    await ensure_consumer(js, "ZALO_EVENTS", ConsumerConfig(durable_name=durable))
    sub = await js.pull_subscribe_bind(durable, stream="ZALO_EVENTS")
    messages = await sub.fetch(1, timeout=5)
    await messages[0].ack_sync()
    assert not analytics.violations

    foreign = sorted(render_accounts.collect_grants()["broadcast"].durables)[0]
    with pytest.raises((TimeoutError, nats.errors.TimeoutError)):
        await analytics.nc.jetstream(timeout=1).add_consumer(
            "ZALO_EVENTS", ConsumerConfig(durable_name=foreign)
        )


async def test_dispatcher_reads_tips_only(as_user: object) -> None:
    dispatcher = await as_user("dispatcher")  # type: ignore[operator]
    reports = await as_user("reports")  # type: ignore[operator]
    assert dispatcher.nc is not None
    assert reports.nc is not None
    received: asyncio.Queue[str] = asyncio.Queue()

    async def on_tip(msg: nats.aio.msg.Msg) -> None:
        await received.put(msg.subject)

    await dispatcher.nc.subscribe("tips.>", cb=on_tip)
    await dispatcher.nc.flush()
    # About one run in ten, the first tip published right after the subscription reached the
    # server is not delivered (nats-server 2.15, both connections fresh; the cause was not
    # found). Delivery is not what this test is about, so the probe is sent until one arrives.
    for _ in range(10):
        assert not await reports.refused("tips.triaged.probe")
        with contextlib.suppress(TimeoutError):
            assert await asyncio.wait_for(received.get(), timeout=3) == "tips.triaged.probe"
            break
    else:
        pytest.fail("the dispatcher never received a tip")

    assert await dispatcher.refused("tips.triaged.probe")
    assert await dispatcher.refused("$JS.API.INFO")
    before = len(dispatcher.violations)
    await dispatcher.nc.subscribe("zalo.event.>")
    answers = await dispatcher.answers_since(before)
    assert any("subscription" in v.lower() and "zalo.event.>" in v for v in answers)


async def test_every_staff_service_hears_revocations_only_identity_announces_them(
    as_user: object,
) -> None:
    identity = await as_user("identity")  # type: ignore[operator]
    assert identity.nc is not None
    heard: dict[str, asyncio.Queue[bytes]] = {}
    for service in ("reports", "broadcast", "analytics"):
        session = await as_user(service)  # type: ignore[operator]
        assert session.nc is not None
        queue: asyncio.Queue[bytes] = asyncio.Queue()
        heard[service] = queue

        async def keep(msg: nats.aio.msg.Msg, queue: asyncio.Queue[bytes] = queue) -> None:
            await queue.put(msg.data)

        await session.nc.subscribe(subjects.IDENTITY_REVOKED, cb=keep)
        await session.nc.flush()
        assert not session.violations, service
        assert await session.refused(subjects.IDENTITY_REVOKED), service
    for _ in range(10):  # see test_dispatcher_reads_tips_only: a first message may be lost
        assert not await identity.refused(subjects.IDENTITY_REVOKED)
        with contextlib.suppress(TimeoutError):
            for queue in heard.values():
                await asyncio.wait_for(queue.get(), timeout=3)
            break
    else:
        pytest.fail("a service never heard a revocation")


async def test_no_service_may_read_another_ones_replies(as_user: object) -> None:
    """Replies (JetStream API answers, pulled messages: raw tips among them) go under each
    user's own inbox prefix; no service may subscribe to another's, nor to all of them."""
    broadcast = await as_user("broadcast")  # type: ignore[operator]
    reports = await as_user("reports")  # type: ignore[operator]
    assert broadcast.nc is not None
    assert reports.nc is not None
    for pattern in ("_INBOX.>", "_INBOX_reports.>", ">"):
        before = len(broadcast.violations)
        await broadcast.nc.subscribe(pattern)
        answers = await broadcast.answers_since(before)
        assert any(
            "subscription" in v.lower() and f'"{pattern.lower()}"' in v.lower() for v in answers
        ), pattern
    # Its own replies it does get: a JetStream API request answered under `_INBOX_reports`.
    await reports.nc.jetstream(timeout=5).account_info()
    assert not reports.violations


async def test_jetstream_publish_outside_own_subjects_gets_no_ack(as_user: object) -> None:
    broadcast = await as_user("broadcast")  # type: ignore[operator]
    assert broadcast.nc is not None
    with pytest.raises((TimeoutError, nats.errors.TimeoutError, NoStreamResponseError)):
        await broadcast.nc.jetstream(timeout=1).publish(
            subjects.zalo_event_subject("user_message"), b"{}"
        )
    assert any("zalo.event.user_message" in v for v in broadcast.violations)


@pytest.mark.parametrize(
    ("pattern", "subject", "expected"),
    [
        ("tips.>", "tips.triaged.quang-phu.urgent", True),
        ("tips.>", "tips", False),
        ("zalo.event.>", "zalo.event.>", True),
        ("zalo.event.*", "zalo.event.>", False),
        ("zalo.event.*", "zalo.event.follow", True),
        ("zalo.quarantine", "zalo.quarantine", True),
        ("zalo.quarantine", "zalo.quarantine.x", False),
        ("broadcast.cmd.plan", "broadcast.cmd.deliver", False),
    ],
)
def test_subject_coverage_follows_nats_wildcards(
    pattern: str, subject: str, expected: bool
) -> None:
    assert render_accounts.covers(pattern, subject) is expected


def test_a_stream_belongs_to_whoever_publishes_its_subjects() -> None:
    grants = render_accounts.collect_grants()
    owners = {stream: user for user, g in grants.items() for stream in g.streams}
    assert owners[subjects.ZALO_EVENTS_STREAM.name] == "ingest"
    assert owners[subjects.ZALO_QUARANTINE_STREAM.name] == "ingest"
    assert owners[subjects.TIPS_STREAM.name] == "reports"
    assert not grants["ingest"].buckets  # its dedup is the stream's window, no id ledger


def _check_config(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [nats_server_binary(), "-t", "-c", str(NATS_DIR / "nats.conf")],
        env={"PATH": os.environ.get("PATH", "")} | env,
        capture_output=True,
        text=True,
        timeout=30,
    )


def test_the_compose_configuration_file_itself_is_valid() -> None:
    """The unmodified nats.conf (compose's store_dir and routes), with compose's environment."""
    env = {name: "p" + secrets.token_hex(8) for name in secret_variables()}
    routes = ", ".join(
        f'"nats://route:{env["NATS_ROUTE_PASSWORD"]}@nats-{n}:6222"' for n in (1, 2, 3)
    )
    result = _check_config(env | {"NATS_SERVER_NAME": "nats-1", "NATS_ROUTES": f"[{routes}]"})
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_missing_secret_stops_the_server() -> None:
    env = {name: "p" + secrets.token_hex(8) for name in secret_variables()}
    del env["NATS_INGEST_PASSWORD"]
    result = _check_config(env | {"NATS_SERVER_NAME": "nats-1", "NATS_ROUTES": "[]"})
    assert result.returncode != 0
    assert "NATS_INGEST_PASSWORD" in result.stdout + result.stderr
