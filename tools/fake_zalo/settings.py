"""Settings of the fake Zalo server (env vars = field names upper-case)."""

from pathlib import Path
from typing import Literal

from pydantic import Field

from shared.settings import ServiceSettings, ZaloSettings


class FakeZaloSettings(ServiceSettings, ZaloSettings):
    """Where the fake listens, how it behaves by default, and where it sends webhooks."""

    http_port: int = 8090
    fake_oa_id: str = "388613280878808645"
    fake_oa_name: str = "Công an TP Đồng Hới (giả lập)"
    fake_access_token_ttl: int = 90000  # seconds; Zalo answers expires_in "90000"
    fake_free_reply_quota: int = 8  # free consultation replies within the 48 h window
    fake_rate_limit_per_minute: int = 4000  # Zalo's app-level limit; -32 beyond it
    # transaction/promotion/template sends: "discontinued" (-240) or "success"
    fake_template_endpoints: Literal["discontinued", "success"] = "discontinued"
    fake_article_view_field: str = "total_view"  # names unconfirmed on the real API
    fake_article_share_field: str = "total_share"
    fake_seed_demo: bool = True  # a few demo users, groups and articles at start and on reset
    # Instead of those few: the demo world's groups, officers and residents (`make run` sets it
    # to tools/demo_world/dong-hoi.DEMO.json, so the fake knows every group the others know).
    fake_world_file: Path | None = None
    fake_webhook_url: str = "http://127.0.0.1:8010/webhooks/zalo"
    # Zalo's 30 s / 5 min / 15 min / 30 min / 1 h retry ladder, compressed 1000-fold.
    fake_webhook_retry_ladder: list[float] = Field(
        default_factory=lambda: [0.03, 0.3, 0.9, 1.8, 3.6]
    )
    fake_webhook_timeout: float = 2.0  # Zalo wants the 200 within 2 seconds
