"""Settings of the analytics service."""

from pydantic import Field

from shared.settings import ServiceSettings, StaffAuthSettings
from shared.subjects import ZALO_EVENTS_ALL, ZALO_EVENTS_STREAM


class AnalyticsSettings(ServiceSettings, StaffAuthSettings):
    """Where the events come from, how they are batched, and where the registry lives."""

    http_port: int = 8040
    zalo_events_stream: str = ZALO_EVENTS_STREAM.name
    zalo_subject_filter: str = ZALO_EVENTS_ALL  # tests use their own subject space
    # Fetch up to `batch_size` messages per pull (waiting at most `batch_timeout` s); while a
    # batch is written the next one grows, up to `max_write_batch` events per ledger batch.
    batch_size: int = Field(default=1000, ge=1, le=10_000)
    batch_timeout: float = Field(default=0.2, gt=0)
    max_write_batch: int = Field(default=10_000, ge=1)
    ack_wait: float = Field(default=30.0, gt=0)
    max_deliver: int = Field(default=20, ge=1)
    retry_delay: float = Field(default=2.0, ge=0)
    # Ward and group registry (households, members): operator data, loaded at start-up when
    # set; `services/analytics/data/registry.DEMO.json` is demo data and says so.
    registry_file: str | None = None
    # The chart library, installed by `make dashboard-assets` (never fetched from a CDN).
    chart_js_file: str = ".local/npm/node_modules/chart.js/dist/chart.umd.min.js"
