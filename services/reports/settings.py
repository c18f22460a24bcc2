"""Settings of the reports service (env var = field name in upper case)."""

import json
from pathlib import Path

from pydantic import Field

from services.reports.model import DEFAULT_MODEL_FILE
from services.reports.safety import DEFAULT_SAFETY_FILE
from services.reports.triage import DEFAULT_RULES_FILE, RULES_DIR
from shared.places import DEFAULT_UNITS_FILE
from shared.settings import ServiceSettings, StaffAuthSettings, ZaloSettings
from shared.subjects import REPORTS_INTAKE_DURABLE, TIPS_STREAM, ZALO_EVENTS_STREAM
from shared.verification import VerificationSettings


class ReportsSettings(ServiceSettings, ZaloSettings, StaffAuthSettings, VerificationSettings):
    """Where the tips come from and go, the rules, the gazetteer, timers and secrets."""

    http_port: int = 8020

    # Streams and consumers (overridable so tests and staging can run side by side).
    zalo_events_stream: str = ZALO_EVENTS_STREAM.name
    tips_stream: str = TIPS_STREAM.name
    intake_durable: str = REPORTS_INTAKE_DURABLE
    declare_zalo_stream: bool = False  # ingest owns it; tests and `make run` may declare it
    intake_max_deliver: int = Field(default=10, ge=1)
    intake_ack_wait: float = Field(default=30.0, gt=0)

    # Rules and places.
    triage_rules_file: Path = DEFAULT_RULES_FILE
    triage_model_file: Path = DEFAULT_MODEL_FILE  # the manifest; its arrays sit beside it
    safety_rules_file: Path = DEFAULT_SAFETY_FILE
    knowledge_file: Path = RULES_DIR / "knowledge.yaml"
    places_units_file: Path = DEFAULT_UNITS_FILE
    places_crosswalk_file: Path | None = None  # e.g. shared/places/data/...DEMO.json
    places_extra_file: Path | None = None
    places_current_set: str | None = None
    location_max_km: float = Field(default=3.0, gt=0)  # a shared pin this near a unit centre
    # Zalo group id -> ward slug, as JSON: {"7210493857261940582": "duc-ninh"}.
    group_wards: str = "{}"

    # Cases.
    group_window_seconds: float = Field(default=600.0, gt=0)  # same citizen, same case
    duplicate_window_seconds: float = Field(default=7200.0, gt=0)
    duplicate_threshold: float = Field(default=0.35, gt=0, le=1)
    # Duty roster as JSON: {"quang-phu": [{"officer": "o-12", "start": "07:00", "end": "19:00"}]}.
    roster: str = "{}"
    roster_file: Path | None = None
    roster_timezone: str = "Asia/Ho_Chi_Minh"
    urgent_ack_seconds: float = Field(default=300.0, gt=0)
    sla_check_seconds: float = Field(default=30.0, gt=0)
    ref_prefix: str = "BY"

    # Tipster protection: pseudonyms come from `pseudonym_key`; the mapping back is encrypted
    # with this secret (any string; a Fernet key is derived from it).
    tipster_vault_key: str = "change-me-tipster-vault-key"
    send_replies: bool = True
    # The sealed Zalo id is deleted this long after the tipster's last message (no reveal or
    # reply after that).
    tipster_retention_days: float = Field(default=180.0, gt=0)

    def group_ward_map(self) -> dict[str, str]:
        return dict(json.loads(self.group_wards or "{}"))

    def roster_json(self) -> str:
        if self.roster_file is not None:
            return self.roster_file.read_text(encoding="utf-8")
        return self.roster
