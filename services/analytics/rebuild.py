"""`python -m services.analytics.rebuild`: drop the aggregates and replay the streams.

Everything the counters hold is derived from the streams, so dropping them (counters, batch
journal, applied marks) and consuming every stream again from its first message yields the
same numbers. The durable consumers are recreated from the start; when the replay has caught
up, the service continues from there. Stop the analytics service first: the rebuild takes the
writer lease (see `lease`) and refuses to run while a replica holds it.
"""

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nats.js.api import KeyValueConfig
from nats.js.errors import KeyWrongLastSequenceError, NotFoundError
from nats.js.kv import KeyValue

from services.analytics.app import declare_consumers
from services.analytics.consumer import BatchPipeline, PipelineStats
from services.analytics.lease import KEY
from services.analytics.ledger import CounterLedger, durable_database
from services.analytics.pullers import consumers, consuming
from services.analytics.settings import AnalyticsSettings
from services.analytics.store import MetricsStore
from shared.jetstream import connect, ensure_key_value
from shared.logging import configure_logging
from shared.mongo import connect_mongo
from shared.process import run_worker

log = logging.getLogger(__name__)


async def reset_consumers(settings: AnalyticsSettings) -> None:
    nc = await connect(settings.nats_url, name="analytics-rebuild")
    try:
        js = nc.jetstream()
        for stream, config in consumers(settings):
            with contextlib.suppress(NotFoundError):
                await js.delete_consumer(stream, config.durable_name or "")
    finally:
        await nc.close()
    await declare_consumers(settings)


async def caught_up(settings: AnalyticsSettings) -> bool:
    nc = await connect(settings.nats_url, name="analytics-rebuild-check")
    try:
        js = nc.jetstream()
        for stream, config in consumers(settings):
            info = await js.consumer_info(stream, config.durable_name or "")
            if info.num_pending or info.num_ack_pending:
                return False
        return True
    finally:
        await nc.close()


class ServiceRunning(Exception):
    """A replica of the service holds the writer lease: stop the service first."""


@asynccontextmanager
async def exclusive(settings: AnalyticsSettings) -> AsyncIterator[None]:
    """Hold the writer lease for the whole rebuild, so no replica counts meanwhile."""
    nc = await connect(settings.nats_url, name="analytics-rebuild-lease")
    try:
        config = KeyValueConfig(
            bucket=settings.writer_lease_bucket, history=1, ttl=settings.writer_lease_ttl
        )
        kv = await ensure_key_value(nc.jetstream(), config)
        try:
            revision = await kv.create(KEY, b"rebuild")
        except KeyWrongLastSequenceError as exc:
            raise ServiceRunning("the analytics service is running: stop it first") from exc
        renew = asyncio.create_task(_renew(kv, revision, settings.writer_lease_ttl / 3))
        try:
            yield
        finally:
            renew.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renew
            with contextlib.suppress(Exception):
                await kv.delete(KEY)
    finally:
        await nc.close()


async def _renew(kv: KeyValue, revision: int, every: float) -> None:
    while True:
        await asyncio.sleep(every)
        revision = await kv.update(KEY, b"rebuild", last=revision)


async def rebuild(settings: AnalyticsSettings, timeout: float = 3600.0) -> PipelineStats:
    """Drop every aggregate, replay the streams from the start, return what was counted."""
    async with exclusive(settings):
        return await _rebuild(settings, timeout)


async def _rebuild(settings: AnalyticsSettings, timeout: float) -> PipelineStats:
    mongo: Any = connect_mongo(settings.mongodb_url)
    db = durable_database(mongo, settings.mongodb_database)
    try:
        await MetricsStore(db, settings).drop_aggregates()
        await reset_consumers(settings)
        deadline = time.monotonic() + timeout
        async with consuming(settings, CounterLedger(db)) as pipeline:
            while not await caught_up(settings):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"replay not finished after {timeout} s: {pipeline.stats}")
                await _next_batch(pipeline)
        return pipeline.stats
    finally:
        await mongo.close()


async def _next_batch(pipeline: BatchPipeline) -> None:
    """Wait for the next batch, or one second (then the server is asked again)."""
    seen = pipeline.stats.batches + pipeline.stats.failed_batches
    with contextlib.suppress(TimeoutError):
        await pipeline.wait_until(lambda s: s.batches + s.failed_batches > seen, timeout=1.0)


def main() -> None:
    settings = AnalyticsSettings()
    configure_logging(settings.log_level, service="analytics-rebuild")
    stats = run_worker(rebuild(settings))
    log.info(
        "rebuild finished",
        extra={
            "counted": stats.counted,
            "duplicates": stats.duplicates,
            "rejected": stats.rejected,
        },
    )


if __name__ == "__main__":
    main()
