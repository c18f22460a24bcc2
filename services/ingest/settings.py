"""Ingest's settings (environment variables, upper-case field names)."""

from pydantic import Field, model_validator

from shared.settings import ServiceSettings, ZaloSettings


class IngestSettings(ServiceSettings, ZaloSettings):
    http_port: int = 8010
    max_body_bytes: int = Field(default=256 * 1024, gt=0)
    # Zalo's retries span hours; older or far-future timestamps are refused as replays.
    max_event_age_s: float = Field(default=24 * 3600, gt=0)
    max_future_skew_s: float = Field(default=300, ge=0)
    publish_timeout_s: float = Field(default=1.0, gt=0)
    spool_dir: str = "var/ingest-spool"
    events_stream: str = "ZALO_EVENTS"
    quarantine_stream: str = "ZALO_QUARANTINE"

    @model_validator(mode="after")
    def _deadline_fits(self) -> "IngestSettings":
        # Zalo gives a webhook 2 s; a publish that has not been acknowledged by then is spooled.
        if self.publish_timeout_s >= 1.8:
            raise ValueError("PUBLISH_TIMEOUT_S must leave time to spool within Zalo's 2 s")
        return self

    @property
    def dedup_window_s(self) -> float:
        """JetStream's `Nats-Msg-Id` window: as long as an event can still be accepted.

        A repeat is accepted only while its timestamp is at most `max_event_age_s` old, and
        the first copy was published at most `max_future_skew_s` before that timestamp, so a
        window of their sum (plus a second of slack) catches every repeat ingest would accept.
        """
        return self.max_event_age_s + self.max_future_skew_s + 1.0
