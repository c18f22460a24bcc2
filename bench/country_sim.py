"""Country-scale load model for binhyen, backed by a measured capacity of one ingest replica.

`python -m bench.country_sim` (about 40 s; starts its own nats-server on loopback).

1. **Event mix.** A synthetic country of `COMMUNES` communes in `PROVINCES` provinces, with the
   per-commune rates of `RATES` (calibrated on Đồng Hới: 15 wards, 163 groups, ~10,700 people per
   ward, close to the national ~10,100 per commune). The peak hour is simulated commune by
   commune (Poisson counts) with a diurnal peak factor and a typhoon surge in a few central
   provinces: events per second at peak, per province and for the country, and the bytes stored.
2. **Capacity.** One ingest replica's hot path, in one process and one event loop like
   `python -m services.ingest`: verify the signature, parse, normalize (`services.ingest.normalize`)
   and publish to JetStream with `Nats-Msg-Id` (file storage, `sync_interval: always`), with
   `IN_FLIGHT` publishes outstanding, over a sample drawn from the simulated mix. Median of
   `ROUNDS` rounds, against a 3-node cluster with an R3 stream (as deployed; this is the figure
   the replica count uses) and against one server (R1). All processes share this machine's
   cores. The HTTP server is not included: `bench.ingest` measures it separately.
3. **Replicas needed** = ceil(peak events/s ÷ (capacity × `TARGET_UTILIZATION`)), at least 2
   for availability, per province, for the country and for a nationwide emergency (every
   province surging at once); outbound Zalo calls against the 4,000 requests/minute app quota.
"""

import asyncio
import json
import math
import random
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import nats

from services.ingest.normalize import normalize
from shared.events.envelope import event_bytes
from shared.subjects import ZALO_EVENTS_STREAM, zalo_event_subject
from shared.zalo.signature import is_valid, sign
from tools.localstack.servers import free_port, nats_server_binary, wait_for_port
from tools.zalo_sim.events import EventFactory, encode

APP_ID = "360846524940903967"
SECRET = "country-sim-secret"
SEED = 7
PROVINCES = 63
COMMUNES = 10_000
POPULATION = 101_000_000
FOLLOWER_SHARE = 0.25  # residents who follow their police OA, at maturity
GROUPS_PER_COMMUNE = 163 / 15  # Đồng Hới: 163 groups in 15 wards
PEAK_FACTOR = 3.0  # busiest hour / average hour (evening)
SURGE_PROVINCES = 5  # a typhoon over the central coast
SURGE_FACTOR = 8.0
SAMPLE_EVENTS = 6_000
ROUNDS = 3
IN_FLIGHT = 256
TARGET_UTILIZATION = 0.5  # headroom for redeliveries, restarts and a lost node
ZALO_CALLS_PER_MINUTE = 4_000  # per app (zalo-oa.md §5.3)
STREAM_REPLICAS = 3
RETENTION_DAYS = 90

# Webhook events per commune per day, by Zalo event name (assumptions, see docs/scaling.md).
_FOLLOWERS = POPULATION / COMMUNES * FOLLOWER_SHARE
_CITIZEN_MESSAGES = 0.02 * _FOLLOWERS  # one message per follower every 50 days
RATES: dict[str, float] = {
    "user_send_text": 0.70 * _CITIZEN_MESSAGES,
    "user_send_image": 0.15 * _CITIZEN_MESSAGES,
    "user_send_location": 0.05 * _CITIZEN_MESSAGES,
    "user_send_sticker": 0.05 * _CITIZEN_MESSAGES,
    "user_send_audio": 0.05 * _CITIZEN_MESSAGES,
    "oa_send_text": 1.0 * _CITIZEN_MESSAGES + 2 * GROUPS_PER_COMMUNE,  # replies + 2 notices/group
    "user_received_message": 1.0 * _CITIZEN_MESSAGES,
    "user_seen_message": 0.8 * _CITIZEN_MESSAGES,
    "user_send_group_text": 25 * GROUPS_PER_COMMUNE,  # chatter in OA-owned groups
    "user_send_group_image": 5 * GROUPS_PER_COMMUNE,
    "follow": 0.002 * _FOLLOWERS,
    "unfollow": 0.0005 * _FOLLOWERS,
    "user_click_chatnow": 0.004 * _FOLLOWERS,
    "user_reacted_message": 0.1 * _CITIZEN_MESSAGES,
}
# Outbound Zalo API calls per commune per day: replies and notices (one call per group).
OUTBOUND_PER_COMMUNE_DAY = _CITIZEN_MESSAGES + 2 * GROUPS_PER_COMMUNE
TIP_SHARE = 0.10  # citizen messages that become a triaged tip (a case in MongoDB)
CASE_BYTES = 2_048  # a case document with its history and index entries


@dataclass(frozen=True)
class PeakHour:
    events_by_name: dict[str, int]
    events_by_province: list[int]
    surge_provinces: list[int]

    @property
    def total(self) -> int:
        return sum(self.events_by_name.values())


def _poisson(rng: random.Random, mean: float) -> int:
    """Poisson sample (normal approximation above 30, exact below)."""
    if mean > 30:
        return max(0, round(rng.gauss(mean, math.sqrt(mean))))
    limit, k, p = math.exp(-mean), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def simulate_peak_hour(rng: random.Random) -> PeakHour:
    """Events in the busiest hour, commune by commune, with a surge over a few provinces."""
    communes_of = [COMMUNES // PROVINCES + (p < COMMUNES % PROVINCES) for p in range(PROVINCES)]
    surge = rng.sample(range(PROVINCES), SURGE_PROVINCES)
    by_name = dict.fromkeys(RATES, 0)
    by_province = [0] * PROVINCES
    for province, communes in enumerate(communes_of):
        factor = PEAK_FACTOR * (SURGE_FACTOR if province in surge else 1.0)
        for _ in range(communes):
            for name, per_day in RATES.items():
                count = _poisson(rng, per_day / 24 * factor)
                by_name[name] += count
                by_province[province] += count
    return PeakHour(by_name, by_province, surge)


def average_day_events() -> float:
    return sum(RATES.values()) * COMMUNES


def sample_requests(peak: PeakHour, count: int) -> list[tuple[bytes, str, str]]:
    """Signed webhook bodies drawn from the peak-hour mix: (raw, timestamp, signature)."""
    factory = EventFactory(APP_ID, seed=SEED, users=50_000)
    rng = random.Random(SEED)
    names = rng.choices(
        list(peak.events_by_name), weights=list(peak.events_by_name.values()), k=count
    )
    out = []
    for name in names:
        body = factory.make(name)
        raw = encode(body)
        out.append((raw, body["timestamp"], sign(APP_ID, raw, body["timestamp"], SECRET)))
    return out


def start_nats(folder: Path, nodes: int) -> tuple[list[subprocess.Popen[bytes]], str]:
    """`nodes` nats-servers (a cluster when > 1) with `sync_interval: always`, as deployed."""
    ports = [(free_port(), free_port()) for _ in range(nodes)]
    routes = ", ".join(f'"nats://127.0.0.1:{cluster}"' for _, cluster in ports)
    processes = []
    for index, (port, cluster) in enumerate(ports):
        config = folder / f"nats-{index}.conf"
        text = f'server_name: "bench-{index}"\nlisten: "127.0.0.1:{port}"\n'
        text += f'jetstream {{ store_dir: "{folder / f"js-{index}"}", sync_interval: always }}\n'
        if nodes > 1:
            text += (
                f'cluster {{ name: "bench", listen: "127.0.0.1:{cluster}", routes: [{routes}] }}\n'
            )
        config.write_text(text)
        processes.append(
            subprocess.Popen(
                [nats_server_binary(), "-c", str(config)],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.STDOUT,
            )
        )
    for process, (port, _) in zip(processes, ports, strict=True):
        wait_for_port(port, process=process)
    return processes, f"nats://127.0.0.1:{ports[0][0]}"


async def one_round(
    url: str, requests: list[tuple[bytes, str, str]], stream: str, replicas: int
) -> float:
    """Events per second through verify + parse + normalize + publish, `IN_FLIGHT` at once."""
    nc = await nats.connect(url)
    try:
        js = nc.jetstream(timeout=10)
        config = ZALO_EVENTS_STREAM.to_config(
            replicas, name=stream, subjects=[f"{stream.lower()}.>"]
        )
        for _ in range(50):  # a new cluster answers once its meta leader is elected
            try:
                await js.add_stream(config)
                break
            except (nats.errors.TimeoutError, nats.js.errors.ServiceUnavailableError):
                await asyncio.sleep(0.2)
        gate = asyncio.Semaphore(IN_FLIGHT)

        async def accept(raw: bytes, timestamp: str, signature: str) -> None:
            async with gate:
                assert is_valid(signature, APP_ID, raw, timestamp, SECRET)
                event = normalize(json.loads(raw), datetime.now(UTC))
                subject = zalo_event_subject(event.kind).replace("zalo.event", stream.lower())
                data = event_bytes(event)
                await js.publish(subject, data, headers={"Nats-Msg-Id": event.event_id})

        started = time.perf_counter()
        await asyncio.gather(*(accept(*request) for request in requests))
        elapsed = time.perf_counter() - started
        info = await js.stream_info(stream)
        assert info.state.messages == len(requests), "every event stored once"
        return len(requests) / elapsed
    finally:
        await nc.close()


def mean_event_size(requests: list[tuple[bytes, str, str]]) -> float:
    """Mean size of a normalized event as stored (JSON body; headers and index not counted)."""
    now = datetime.now(UTC)
    sizes = [len(event_bytes(normalize(json.loads(raw), now))) for raw, _, _ in requests]
    return statistics.mean(sizes)


def measure_capacity(requests: list[tuple[bytes, str, str]], nodes: int) -> list[float]:
    """Median-able rounds against one server (R1) or a 3-node cluster (R3)."""
    with tempfile.TemporaryDirectory(prefix="binhyen-country-") as tmp:
        processes, url = start_nats(Path(tmp), nodes)
        try:
            return [
                asyncio.run(one_round(url, requests, f"BENCH_{n}", replicas=nodes))
                for n in range(ROUNDS)
            ]
        finally:
            for process in processes:
                process.terminate()
                process.wait(10)


def report(peak: PeakHour, rates: list[float], r1: list[float], size: float) -> dict[str, Any]:
    capacity = statistics.median(rates)
    usable = capacity * TARGET_UTILIZATION
    peak_eps = peak.total / 3600
    busiest = max(peak.events_by_province) / 3600
    quiet = statistics.median(peak.events_by_province) / 3600
    day = average_day_events()
    stored_per_day = day * size * STREAM_REPLICAS
    outbound_per_minute = OUTBOUND_PER_COMMUNE_DAY * COMMUNES / 24 / 60 * PEAK_FACTOR
    groups = GROUPS_PER_COMMUNE * COMMUNES
    emergency = day / 86400 * PEAK_FACTOR * SURGE_FACTOR  # every province surging at once
    tips_per_day = TIP_SHARE * _CITIZEN_MESSAGES * COMMUNES
    return {
        "communes": COMMUNES,
        "provinces": PROVINCES,
        "events_per_day_average": round(day),
        "events_per_second_average": round(day / 86400, 1),
        "events_per_second_peak_country": round(peak_eps, 1),
        "events_per_second_peak_busiest_province": round(busiest, 1),
        "events_per_second_peak_median_province": round(quiet, 2),
        "replica_capacity_events_per_second_median_r3": round(capacity),
        "replica_capacity_rounds_r3": [round(r) for r in rates],
        "replica_capacity_events_per_second_median_r1": round(statistics.median(r1)),
        "replica_capacity_rounds_r1": [round(r) for r in r1],
        "replicas_by_load_country": math.ceil(peak_eps / usable),
        "replicas_needed_country": max(2, math.ceil(peak_eps / usable)),
        "events_per_second_national_emergency": round(emergency),
        "replicas_needed_national_emergency": max(2, math.ceil(emergency / usable)),
        "replicas_needed_busiest_province": max(2, math.ceil(busiest / usable)),
        "mean_event_bytes": round(size),
        "jetstream_gb_per_year_r3": round(stored_per_day * 365 / 1e9, 1),
        "jetstream_gb_retained_r3": round(stored_per_day * RETENTION_DAYS / 1e9, 1),
        "zalo_calls_per_minute_peak_country": round(outbound_per_minute),
        "zalo_apps_needed_at_peak": math.ceil(outbound_per_minute / ZALO_CALLS_PER_MINUTE),
        "national_notice_minutes_one_app": round(groups / ZALO_CALLS_PER_MINUTE, 1),
        "province_notice_seconds_own_app": round(groups / PROVINCES / ZALO_CALLS_PER_MINUTE * 60),
        "tips_per_year": round(tips_per_day * 365),
        "mongo_case_gb_per_year": round(tips_per_day * 365 * CASE_BYTES / 1e9, 1),
        "peak_mix": dict(sorted(peak.events_by_name.items(), key=lambda kv: -kv[1])),
    }


def main() -> None:
    peak = simulate_peak_hour(random.Random(SEED))
    requests = sample_requests(peak, SAMPLE_EVENTS)
    size = mean_event_size(requests)
    r3 = measure_capacity(requests, nodes=3)
    r1 = measure_capacity(requests, nodes=1)
    json.dump(report(peak, r3, r1, size), sys.stdout, indent=2, ensure_ascii=False)
    print()


if __name__ == "__main__":
    main()
