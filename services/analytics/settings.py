"""Settings of the analytics service."""

from pathlib import Path

from pydantic import Field

from shared.places import DEFAULT_UNITS_FILE
from shared.settings import ServiceSettings, StaffAuthSettings, ZaloSettings
from shared.subjects import (
    ANALYTICS_SNAPSHOTS_STREAM,
    ANALYTICS_WRITER_BUCKET,
    BROADCAST_EVENTS_STREAM,
    BROADCAST_OUTCOME_PREFIX,
    BROADCAST_REGISTRY,
    TIPS_ALL,
    TIPS_STREAM,
    ZALO_EVENTS_ALL,
    ZALO_EVENTS_STREAM,
)


class AnalyticsSettings(ServiceSettings, StaffAuthSettings, ZaloSettings):
    """Where the events come from, how they are batched, and where the registry lives."""

    http_port: int = 8040
    zalo_events_stream: str = ZALO_EVENTS_STREAM.name
    zalo_subject_filter: str = ZALO_EVENTS_ALL  # tests use their own subject space
    tips_stream: str = TIPS_STREAM.name
    tips_subject_filter: str = TIPS_ALL
    broadcast_stream: str = BROADCAST_EVENTS_STREAM.name
    broadcast_subject_filter: str = f"{BROADCAST_OUTCOME_PREFIX}.>"
    registry_subject_filter: str = BROADCAST_REGISTRY
    snapshots_stream: str = ANALYTICS_SNAPSHOTS_STREAM.name
    snapshots_subject_filter: str = ANALYTICS_SNAPSHOTS_STREAM.subjects[0]
    # Seconds between snapshots of the OA's follower total and articles (0: no poller).
    snapshot_interval: float = Field(default=3600.0, ge=0)
    # Fetch up to `batch_size` messages per pull (waiting at most `batch_timeout` s); while a
    # batch is written the next one grows, up to `max_write_batch` events per ledger batch.
    # (5,000 rather than 1,000: 41k instead of 30k events/s from a backlog, bench.analytics.)
    batch_size: int = Field(default=5000, ge=1, le=10_000)
    batch_timeout: float = Field(default=0.2, gt=0)
    max_write_batch: int = Field(default=10_000, ge=1)
    ack_wait: float = Field(default=30.0, gt=0)
    max_deliver: int = Field(default=20, ge=1)
    # One replica counts (the lease holder); the others serve HTTP and take over when the
    # holder stops renewing for `writer_lease_ttl` seconds.
    writer_lease_bucket: str = ANALYTICS_WRITER_BUCKET
    writer_lease_ttl: float = Field(default=15.0, ge=1)
    writer_lease_wait: float = Field(default=2.0, ge=0)  # at start-up, before serving HTTP
    # Journals (the ledger of seen event ids) are kept this long: the streams keep 90 days.
    journal_retention_days: float = Field(default=95.0, gt=0)
    retry_delay: float = Field(default=2.0, ge=0)
    # Groups come from broadcast's registry events. The gazetteer gives per-ward figures in
    # either unit set (pre-2025 units or the current wards) and each ward's households.
    places_units_file: Path = DEFAULT_UNITS_FILE
    places_crosswalk_file: Path | None = None  # e.g. shared/places/data/...DEMO.json
    # The chart library, installed by `make dashboard-assets` (never fetched from a CDN).
    chart_js_file: str = ".local/npm/node_modules/chart.js/dist/chart.umd.min.js"

    @property
    def snapshot_subject(self) -> str:
        """Where the poller publishes (`analytics.snapshot.zalo` by default)."""
        return self.snapshots_subject_filter.removesuffix(">") + "zalo"
