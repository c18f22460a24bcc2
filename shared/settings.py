"""Settings read from environment variables, shared by every service."""

from typing import Literal

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.subjects import ZALO_RATE_BUCKET, ZALO_TOKEN_BUCKET


class ServiceSettings(BaseSettings):
    """What every service needs: where NATS and MongoDB are, how to log, where to listen."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    nats_url: str = "nats://127.0.0.1:4222"
    mongodb_url: str = "mongodb://127.0.0.1:27017/"
    mongodb_database: str = "binhyen"
    log_level: str = "INFO"
    http_host: str = "127.0.0.1"
    http_port: int = 8000
    # JetStream replicas for the streams a service declares: 1 on a single server, 3 on a cluster.
    nats_stream_replicas: int = Field(default=1, ge=1, le=5)
    # Keyed-hash secret for pseudonyms of Zalo user ids in logs and staff-facing data.
    pseudonym_key: str = "change-me-pseudonym-key"
    # Traces (shared.tracing): sent by OTLP over HTTP to this collector when set (compose sets
    # it, `make run` does not); the share of new traces recorded; or no tracing at all.
    otel_exporter_otlp_endpoint: str = ""
    otel_traces_sampler_arg: float = Field(default=0.1, ge=0.0, le=1.0)
    otel_sdk_disabled: bool = False


class ZaloSettings(BaseSettings):
    """The OA's credentials and where its API lives (the fake server in tests and the demo)."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    zalo_app_id: str = "360846524940903967"
    zalo_oa_secret_key: str = "test-oa-secret-key"  # signs webhooks
    zalo_app_secret_key: str = "test-app-secret-key"  # authenticates token refreshes
    zalo_api_base: str = "http://127.0.0.1:8090"  # https://openapi.zalo.me in production
    zalo_oauth_base: str = "http://127.0.0.1:8090"  # https://oauth.zaloapp.com in production
    # First token pair (console "API Explorer" or the fake's defaults); stored in the shared
    # bucket only when the bucket has none, after that the bucket is the truth.
    zalo_access_token: str | None = "fake-initial-access-token"
    zalo_refresh_token: str | None = "fake-initial-refresh-token"
    zalo_access_token_ttl: float = 90000.0  # seconds the seeded access token is assumed valid
    zalo_token_bucket: str = ZALO_TOKEN_BUCKET  # JetStream KV bucket holding the token pair
    zalo_rate_bucket: str = ZALO_RATE_BUCKET  # JetStream KV bucket holding the shared rate state
    zalo_kv_replicas: int = Field(default=1, ge=1, le=5)  # 3 on a NATS cluster
    zalo_refresh_margin: float = 5 * 3600.0  # refresh this long before the access token expires
    zalo_refresh_lease: float = 15.0  # seconds one replica may hold the refresh lease
    # Requests per second per operation family, shared by all replicas (Zalo: 4,000/min/app).
    zalo_rate_limits: dict[str, float] = Field(
        default_factory=lambda: {
            "message": 20.0,
            "group": 5.0,
            "broadcast": 1.0,
            "read": 10.0,
            "upload": 1.0,
        }
    )
    zalo_rate_burst: dict[str, float] = Field(default_factory=dict)  # default burst: 1 call
    # Each process reserves this many seconds' worth of slots per compare-and-set (at least one).
    zalo_rate_block_seconds: float = Field(default=0.05, ge=0.0, le=1.0)
    zalo_retry_attempts: int = Field(default=4, ge=1)  # attempts per call, first one included
    zalo_retry_base_delay: float = 0.5  # full-jitter exponential backoff: U(0, base * 2^n)
    zalo_retry_max_delay: float = 8.0
    zalo_retry_total: float = 30.0  # give up when the next wait would pass this many seconds
    zalo_http_timeout: float = 10.0  # per phase: getting a connection, each socket read
    zalo_http_connections: int = Field(default=100, ge=1)  # keep-alive pool per process
    # Article statistics field names are unconfirmed (reference §7): first one present wins.
    zalo_article_view_fields: list[str] = Field(default_factory=lambda: ["total_view", "view"])
    zalo_article_share_fields: list[str] = Field(default_factory=lambda: ["total_share", "share"])
    zalo_broadcast_target_style: Literal["csv", "list"] = "csv"


class StaffAuthSettings(BaseSettings):
    """How a staff service verifies its callers (`shared.identity.verifier`): sessions and API
    tokens from the identity store, cached this long per credential; the static tokens of
    `STAFF_TOKENS(_FILE)` only for the tests and the demo (`shared.auth`)."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    staff_tokens_file: str | None = None
    staff_tokens: str | None = None
    # A revocation reaches every service at once over NATS (`identity.revoked`); if one is
    # missed, the cached answer still expires after this many seconds (at most 5).
    identity_cache_seconds: float = Field(default=2.0, ge=0, le=5)
