"""Settings of the console: where each service's public API is, seen from the console."""

from pydantic import Field

from shared.settings import ServiceSettings


class ConsoleSettings(ServiceSettings):
    """The console holds no data and no secret: it serves its pages and forwards
    `/api/<service>/...` to these addresses (loopback under `make run`, service names in
    compose)."""

    http_port: int = 8060
    identity_url: str = "http://127.0.0.1:8050"
    reports_url: str = "http://127.0.0.1:8020"
    broadcast_url: str = "http://127.0.0.1:8030"
    analytics_url: str = "http://127.0.0.1:8040"
    # The same variable as reports' (URGENT_ACK_SECONDS): the queue's countdown to escalation.
    urgent_ack_seconds: float = Field(default=300.0, gt=0)
    upstream_timeout: float = Field(default=30.0, gt=0)

    @property
    def upstreams(self) -> dict[str, str]:
        return {
            "identity": self.identity_url,
            "reports": self.reports_url,
            "broadcast": self.broadcast_url,
            "analytics": self.analytics_url,
        }
