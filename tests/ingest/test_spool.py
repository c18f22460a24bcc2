"""NATS goes away mid-stream: every event that got a 200 arrives exactly once, in order."""

import time
from pathlib import Path

import pytest

from services.ingest.publisher import EventPublisher
from shared.events.zalo import ZaloEventReceived
from shared.jetstream import connect
from tests.ingest.builders import ingest_settings, post, running_ingest, stream_messages
from tests.polling import eventually
from tools.localstack.servers import ManagedProcess, start_nats
from tools.zalo_sim.events import EventFactory

pytestmark = [pytest.mark.integration, pytest.mark.slow]


def restart(server: ManagedProcess) -> ManagedProcess:
    """The same server again: same port, same store directory."""
    return start_nats(server.data_dir, port=server.port)


async def arrived_in_order(url: str, stream: str) -> list[str]:
    nc = await connect(url, name="spool-test")
    try:
        messages = await stream_messages(nc.jetstream(), stream)
        return [ZaloEventReceived.model_validate_json(m.data).event_id for m in messages]
    finally:
        await nc.close()


async def test_kill_nats_mid_stream_then_restart(tmp_path: Path) -> None:
    server = start_nats(tmp_path / "nats")
    settings = ingest_settings(server.url, tmp_path / "spool", publish_timeout_s=0.5)
    factory = EventFactory(settings.zalo_app_id, seed=7)
    accepted: list[str] = []
    try:
        async with running_ingest(settings) as ingest:
            publisher: EventPublisher = ingest.app.state.ingest.publisher
            for n in range(150):
                if n == 50:
                    server.kill()
                if n == 100:
                    server = restart(server)
                started = time.monotonic()
                response = await post(ingest, factory.make("user_send_text"))
                assert response.status_code == 200
                assert time.monotonic() - started < 2.0, "Zalo's 2-second deadline"
                accepted.append(response.json()["event_id"])
            await eventually(lambda: publisher.spooled == 0, timeout=30)
            # Replaying every body the spool held changes nothing.
        assert await arrived_in_order(server.url, settings.events_stream) == accepted
    finally:
        server.stop()


async def test_spooled_events_survive_an_ingest_restart(tmp_path: Path) -> None:
    server = start_nats(tmp_path / "nats")
    settings = ingest_settings(server.url, tmp_path / "spool", publish_timeout_s=0.5)
    factory = EventFactory(settings.zalo_app_id, seed=8)
    accepted: list[str] = []
    try:
        async with running_ingest(settings) as ingest:
            for _ in range(5):
                accepted.append((await post(ingest, factory.make("follow"))).json()["event_id"])
            server.kill()
            for _ in range(20):
                response = await post(ingest, factory.make("user_send_location"))
                assert response.json()["status"] == "spooled"
                accepted.append(response.json()["event_id"])
            assert ingest.app.state.ingest.publisher.spooled == 20
        # Ingest stopped with 20 events on disk only; NATS comes back, then a new ingest starts.
        server = restart(server)
        async with running_ingest(settings) as ingest:
            await eventually(lambda: ingest.app.state.ingest.publisher.spooled == 0, timeout=30)
        assert await arrived_in_order(server.url, settings.events_stream) == accepted
    finally:
        server.stop()


async def test_ingest_starting_without_nats_accepts_and_spools(tmp_path: Path) -> None:
    port_holder = start_nats(tmp_path / "nats")
    port_holder.stop()  # a known-free port with nothing listening
    settings = ingest_settings(port_holder.url, tmp_path / "spool")
    factory = EventFactory(settings.zalo_app_id, seed=9)
    async with running_ingest(settings, ready=False) as ingest:
        response = await post(ingest, factory.make("unfollow"))
        assert (response.status_code, response.json()["status"]) == (200, "spooled")
        assert (await ingest.get("/readyz")).status_code == 503
        assert (await ingest.get("/healthz")).status_code == 200
        server = start_nats(tmp_path / "nats", port=port_holder.port)
        try:
            await eventually(lambda: ingest.app.state.ingest.publisher.spooled == 0, timeout=30)
            assert (await ingest.get("/readyz")).status_code == 200
            assert len(await arrived_in_order(server.url, settings.events_stream)) == 1
        finally:
            server.stop()
