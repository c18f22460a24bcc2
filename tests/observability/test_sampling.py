"""Sampling as compose runs it, in a real ingest process exporting to a local OTLP/HTTP sink:
only the webhooks whose trace was sampled are exported; every webhook, sampled or not, still
has its trace id in its log line and on its event's `traceparent`, with the decision in the
flags' sampled bit (`01`)."""

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from shared.jetstream import connect
from tests.ingest.builders import APP_ID, SECRET, fixture_body, signed, stream_messages
from tests.polling import eventually
from tools.localstack.otlp import OtlpSink
from tools.localstack.servers import REPO_ROOT, ManagedProcess, free_port, start_nats, wait_for_port

pytestmark = [pytest.mark.integration, pytest.mark.slow]

WEBHOOKS = 60
RATIO = "0.5"  # both decisions, many times each, in 60 webhooks


@pytest.fixture
def sink() -> Iterator[OtlpSink]:
    sink = OtlpSink()
    yield sink
    sink.stop()


@pytest.fixture
def nats(tmp_path: Path) -> Iterator[ManagedProcess]:
    server = start_nats(tmp_path / "nats")
    yield server
    server.stop()


@pytest.fixture
def ingest(tmp_path: Path, sink: OtlpSink, nats: ManagedProcess) -> Iterator[tuple[int, Path]]:
    """`python -m services.ingest` as compose configures it, at a ratio of 0.5: its port and
    the file its stdout (JSON log lines, unbuffered) goes to."""
    port = free_port()
    env = os.environ | {
        "NATS_URL": nats.url,
        "HTTP_PORT": str(port),
        "SPOOL_DIR": str(tmp_path / "spool"),
        "ZALO_APP_ID": APP_ID,
        "ZALO_OA_SECRET_KEY": SECRET,
        "BINHYEN_DEV_MODE": "1",
        "LOG_LEVEL": "DEBUG",  # a `webhook accepted` line per event
        "PYTHONUNBUFFERED": "1",
        "OTEL_EXPORTER_OTLP_ENDPOINT": sink.url,
        "OTEL_TRACES_SAMPLER_ARG": RATIO,
        "OTEL_BSP_SCHEDULE_DELAY": "100",
    }
    env.pop("OTEL_SDK_DISABLED", None)
    log_path = tmp_path / "ingest.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "services.ingest"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=log,
        )
        try:
            wait_for_port(port, process=process)
            yield port, log_path
        finally:
            process.terminate()
            process.wait(20)


def accepted_lines(log_path: Path) -> dict[str, str]:
    """event id -> trace id, from ingest's `webhook accepted` log lines."""
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    return {
        line["event_id"]: line["trace_id"]
        for line in lines
        if line.get("message") == "webhook accepted"
    }


async def test_only_sampled_webhooks_are_exported_and_every_one_keeps_its_trace_id(
    ingest: tuple[int, Path], nats: ManagedProcess, sink: OtlpSink
) -> None:
    port, log_path = ingest
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
        await eventually(lambda: _ready(http))
        event_ids = []
        for n in range(WEBHOOKS):
            body = fixture_body("user_send_text")
            body["message"] = body["message"] | {"msg_id": f"sampling-{n}"}  # 60 events
            raw, headers = signed(body)
            response = await http.post("/webhooks/zalo", content=raw, headers=headers)
            assert response.json()["status"] == "published"
            assert "server" not in response.headers  # no software banner (shared.serve)
            event_ids.append(response.json()["event_id"])
    nc = await connect(nats.url, name="sampling-test")
    try:
        messages = await stream_messages(nc.jetstream(), "ZALO_EVENTS")
    finally:
        await nc.close()
    # traceparent: 00-<trace id>-<span id>-<flags>
    parents = {m.headers["Nats-Msg-Id"]: m.headers["traceparent"].split("-") for m in messages}
    assert sorted(parents) == sorted(event_ids)
    sampled = {p[1] for p in parents.values() if int(p[3], 16) & 1}
    unsampled = {p[1] for p in parents.values() if not int(p[3], 16) & 1}
    assert len(sampled) + len(unsampled) == WEBHOOKS
    assert sampled, "no webhook sampled at 0.5"
    assert unsampled, "every webhook sampled at 0.5"

    def exported() -> set[str]:
        return {t for t, name in sink.spans if name == "POST /webhooks/zalo"}

    await eventually(lambda: exported() == sampled, progress=exported)
    assert not {t for t, _ in sink.spans} & unsampled
    expected = {event_id: parents[event_id][1] for event_id in event_ids}
    await eventually(
        lambda: accepted_lines(log_path) == expected, progress=lambda: len(accepted_lines(log_path))
    )


async def _ready(http: httpx.AsyncClient) -> bool:
    try:
        return (await http.get("/readyz")).status_code == 200
    except httpx.TransportError:
        return False
