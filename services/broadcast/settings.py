"""Settings of the broadcast service (environment variables = field names upper-case)."""

from pydantic import Field

from shared.settings import ServiceSettings, StaffAuthSettings, ZaloSettings
from shared.verification import VerificationSettings


class BroadcastSettings(ServiceSettings, ZaloSettings, StaffAuthSettings, VerificationSettings):
    """Where notices go, how fast, and when they wait."""

    http_port: int = 8030
    service_name: str = "broadcast"
    # Quiet hours in Vietnam time: non-urgent notices wait until the end (urgent ones do not).
    timezone: str = "Asia/Ho_Chi_Minh"
    quiet_hours_start: str = "22:00"
    quiet_hours_end: str = "06:00"
    quiet_hours_enabled: bool = True
    # Sender workers in this process (0 in an API-only replica; `python -m
    # services.broadcast.sender` runs them without the HTTP API).
    run_sender: bool = True
    sender_batch: int = Field(default=100, ge=1)
    sender_concurrency: int = Field(default=32, ge=1)
    sender_loops: int = Field(default=2, ge=1)  # batches in flight per process
    sender_fetch_timeout: float = 1.0
    # JetStream redelivers an unacknowledged delivery after this; workers keep it alive.
    sender_ack_wait: float = 30.0
    # A claim is held this long without a heartbeat; after it the delivery is "in doubt".
    claim_lease: float = 20.0
    # After a lease expires, wait this long for Zalo's echo of the send before sending again.
    echo_grace: float = 15.0  # keep above event_ack_wait
    # Redelivery of Zalo events held by a crashed replica (echoes must arrive within echo_grace).
    event_ack_wait: float = 5.0
    max_attempts: int = Field(default=5, ge=1)
    retry_base_delay: float = 1.0
    retry_max_delay: float = 60.0
    # Manual groups: re-send the text to the officer, then escalate, after these delays.
    manual_reminder_after: float = 2 * 3600.0
    manual_escalate_after: float = 6 * 3600.0
    escalation_user_ids: list[str] = Field(default_factory=list)  # Zalo ids of supervisors
    scheduler_interval: float = 5.0
    cap_sender: str = "conganthanhpho.donghoi@quangbinh.gov.vn"
