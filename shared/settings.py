"""Settings read from environment variables, shared by every service."""

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


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


class ZaloSettings(BaseSettings):
    """The OA's credentials and where its API lives (the fake server in tests and the demo)."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    zalo_app_id: str = "360846524940903967"
    zalo_oa_secret_key: str = "test-oa-secret-key"  # signs webhooks
    zalo_app_secret_key: str = "test-app-secret-key"  # authenticates token refreshes
    zalo_api_base: str = "http://127.0.0.1:8090"  # https://openapi.zalo.me in production
    zalo_oauth_base: str = "http://127.0.0.1:8090"  # https://oauth.zaloapp.com in production


class StaffAuthSettings(BaseSettings):
    """Where the staff token directory comes from (see `shared.auth`)."""

    model_config = SettingsConfigDict(env_file=".env", env_ignore_empty=True, extra="ignore")

    staff_tokens_file: str | None = None
    staff_tokens: str | None = None
