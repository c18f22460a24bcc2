"""Everything the fake Zalo remembers: tokens, users, groups, articles, sent messages, faults.

Plain data and rules, no HTTP. Time comes from `clock()`: real time plus an offset that tests
move forward (`advance`) to expire tokens and interaction windows without sleeping.
"""

import itertools
import random
import secrets
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from tools.demo_world import World, resident_id
from tools.fake_zalo.settings import FakeZaloSettings

HOUR = 3600.0
DAY = 24 * HOUR
_JITTER = random.Random().random


class FakeApiError(Exception):
    """A Zalo error envelope to answer with (HTTP 200, negative `error`)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


@dataclass
class FakeUser:
    user_id: str
    display_name: str = "Người dùng"
    is_follower: bool = True
    last_interaction: float = 0.0  # epoch seconds, fake clock
    replies_since_interaction: int = 0
    user_id_by_app: str = ""
    shared_info: dict[str, Any] | None = None


@dataclass
class FakeGroup:
    group_id: str
    name: str
    expired: bool = False
    oa_is_member: bool = True
    member_ids: list[str] = field(default_factory=list)


@dataclass
class FakeArticle:
    article_id: str
    title: str
    body: str = ""
    author: str = ""
    description: str = ""
    cover_url: str = ""
    views: int = 0
    shares: int = 0
    created_at: float = 0.0
    status: str = "show"


@dataclass
class Injection:
    """Answer the next `remaining` matching calls with a Zalo code or an HTTP status."""

    remaining: int
    code: int | None = None
    http_status: int | None = None
    message: str = "Injected failure"
    path_prefix: str = ""
    retry_after: float | None = None

    def matches(self, path: str) -> bool:
        """Token calls (`/v4/...`) only match an injection that names them."""
        if path.startswith("/v4") and not self.path_prefix.startswith("/v4"):
            return False
        return self.remaining > 0 and path.startswith(self.path_prefix)


@dataclass
class Tokens:
    access: dict[str, float] = field(default_factory=dict)  # live access token -> expiry
    refresh: set[str] = field(default_factory=set)  # live (unused) refresh tokens
    codes: dict[str, str | None] = field(default_factory=dict)  # OAuth code -> challenge
    refresh_calls: int = 0  # refresh_token grants received, successful or not


class FakeState:
    """The fake's whole memory; `reset()` returns it to the configured start."""

    def __init__(self, settings: FakeZaloSettings) -> None:
        self.settings = settings
        self.offset = 0.0
        self.reset()

    def clock(self) -> float:
        return time.time() + self.offset

    def advance(self, seconds: float) -> float:
        self.offset += seconds
        return self.clock()

    def reset(self) -> None:
        s = self.settings
        self.offset = 0.0
        self.tokens = Tokens()
        self.users: dict[str, FakeUser] = {}
        self.groups: dict[str, FakeGroup] = {}
        self.articles: dict[str, FakeArticle] = {}
        self.pending_articles: dict[str, str] = {}  # create token -> article id
        self.attachments: dict[str, float] = {}  # attachment id / file token -> expiry
        self.messages: list[dict[str, Any]] = []
        self.calls: deque[dict[str, Any]] = deque(maxlen=100_000)
        self.injections: list[Injection] = []
        self.latency = 0.0
        self.quota_per_minute = s.fake_rate_limit_per_minute
        self.window: deque[float] = deque()
        self.down = False
        self.webhook_deliveries: list[dict[str, Any]] = []
        self._ids = itertools.count(1)
        if s.zalo_access_token and s.zalo_refresh_token:
            self.add_token_pair(s.zalo_access_token, s.zalo_refresh_token)
        if s.fake_seed_demo:
            self.seed_demo()

    def new_id(self, prefix: str = "") -> str:
        """A numeric-string id like Zalo's (beyond 2^53). Unique by the counter; the jitter only
        makes ids look less regular, so it need not be cryptographic (`secrets` asks the kernel
        for bytes on every call: one per message sent)."""
        jitter = int(_JITTER() * 7)
        return f"{prefix}{9_000_000_000_000_000_000 + next(self._ids) * 7919 + jitter}"

    # --- tokens -------------------------------------------------------------------------

    def add_token_pair(
        self, access: str, refresh: str, expires_in: float | None = None
    ) -> dict[str, Any]:
        ttl = self.settings.fake_access_token_ttl if expires_in is None else expires_in
        self.tokens.access[access] = self.clock() + ttl
        self.tokens.refresh.add(refresh)
        return {"access_token": access, "refresh_token": refresh, "expires_in": str(int(ttl))}

    def rotate(self, refresh_token: str) -> dict[str, Any]:
        """Single-use refresh: a new pair; the old refresh and all old access tokens die."""
        self.tokens.refresh.discard(refresh_token)
        self.tokens.access.clear()
        return self.add_token_pair(secrets.token_urlsafe(24), secrets.token_urlsafe(24))

    def check_access(self, token: str | None) -> None:
        if not token or token not in self.tokens.access:
            raise FakeApiError(-216, "Access token is invalid")
        if self.tokens.access[token] <= self.clock():
            raise FakeApiError(-220, "access_token is expired or removed")

    def expire_access_tokens(self) -> None:
        now = self.clock()
        self.tokens.access = {token: now - 1 for token in self.tokens.access}

    # --- fault injection and quota --------------------------------------------------------

    def take_injection(self, path: str) -> Injection | None:
        for injection in self.injections:
            if injection.matches(path):
                injection.remaining -= 1
                return injection
        return None

    def take_quota(self) -> int:
        """Count one call in the sliding minute; -32 past the per-minute quota. Remaining."""
        now = self.clock()
        while self.window and self.window[0] <= now - 60:
            self.window.popleft()
        if len(self.window) >= self.quota_per_minute:
            raise FakeApiError(-32, "Your application reached limit call api")
        self.window.append(now)
        return self.quota_per_minute - len(self.window)

    # --- seeding --------------------------------------------------------------------------

    def seed_user(self, user_id: str | None = None, **fields: Any) -> FakeUser:
        user = FakeUser(user_id=user_id or self.new_id(), **fields)
        if not user.last_interaction:
            user.last_interaction = self.clock()
        user.user_id_by_app = user.user_id_by_app or self.new_id()
        self.users[user.user_id] = user
        return user

    def seed_group(self, group_id: str | None = None, **fields: Any) -> FakeGroup:
        group = FakeGroup(group_id=group_id or self.new_id(), **fields)
        self.groups[group.group_id] = group
        return group

    def seed_article(self, article_id: str | None = None, **fields: Any) -> FakeArticle:
        article = FakeArticle(article_id=article_id or self.new_id(), **fields)
        article.created_at = article.created_at or self.clock()
        self.articles[article.article_id] = article
        return article

    def seed_demo(self) -> None:
        if self.settings.fake_world_file is not None:
            self.seed_world(World.load(self.settings.fake_world_file))
            return
        for index, name in enumerate(("Nguyễn Văn An", "Trần Thị Bình", "Lê Văn Cường")):
            self.seed_user(f"24684588352919792{index}", display_name=name)
        for index, ward in enumerate(("Phường Đồng Phú", "Phường Hải Thành", "Phường Nam Lý")):
            self.seed_group(
                f"50000000000000000{index}", name=f"Tổ an ninh {ward}", member_ids=list(self.users)
            )
        self.seed_article("800000000000000001", title="Cảnh báo lừa đảo qua mạng", views=120)

    def seed_world(self, world: World) -> None:
        """Every resident (followers among them), officer and group of the demo world. The OA
        is a member of its own groups only; officers' personal groups exist without it."""
        followers = set(world.follower_indexes)
        now = self.clock()
        for index in range(world.residents):
            user = FakeUser(resident_id(index), is_follower=index in followers)
            user.last_interaction, user.user_id_by_app = now, f"app-{index}"
            self.users[user.user_id] = user
        for officer in world.officers:
            self.seed_user(officer.id, display_name=officer.name)
        for group in world.groups:
            self.seed_group(
                group.id,
                name=group.name,
                oa_is_member=group.channel == "oa",
                member_ids=group.member_ids(),
            )
        self.seed_article("800000000000000001", title="Cảnh báo lừa đảo qua mạng", views=120)

    # --- records --------------------------------------------------------------------------

    def record_message(self, kind: str, **fields: Any) -> dict[str, Any]:
        record = {"message_id": self.new_id(), "kind": kind, "sent_time": self.clock(), **fields}
        self.messages.append(record)
        return record

    def check_attachment(self, attachment_id: str) -> None:
        expiry = self.attachments.get(attachment_id)
        if expiry is None:
            raise FakeApiError(-201, "attachment_id is invalid!")
        if expiry <= self.clock():
            raise FakeApiError(-100, "attachment_id is expired")

    def add_attachment(self) -> str:
        attachment_id = secrets.token_urlsafe(32)
        self.attachments[attachment_id] = self.clock() + 7 * DAY
        return attachment_id
