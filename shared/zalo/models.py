"""Typed answers of the Zalo OA API (reference §5, §7, §8) and the stored token pair.

Zalo ids are numeric strings beyond 2^53: always `str`. Unknown extra fields are ignored, so a
richer real answer still validates. Shapes marked (UNC) in the reference are kept permissive.
"""

import time
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator


class _ZaloModel(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class MessageQuota(_ZaloModel):
    """The quota a consultation message was charged to (`reply` = free 48 h window)."""

    quota_type: str | None = None
    remain: int | None = None
    total: int | None = None
    expired_date: str | None = None


class SentMessage(_ZaloModel):
    """Zalo's receipt for an accepted message (1:1, group or broadcast)."""

    message_id: str
    user_id: str | None = None
    group_id: str | None = None
    sent_time: str | None = None
    quota: MessageQuota | None = None

    @field_validator("message_id", "user_id", "group_id", "sent_time", mode="before")
    @classmethod
    def _ids_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class BroadcastTarget(_ZaloModel):
    """Who a broadcast reaches: Zalo's target codes (reference §5.1); empty means everyone.

    ages 0-7 (0-12 ... 65+), gender 0 all / 1 male / 2 female, locations 0 North / 1 Central /
    2 South, cities = province codes, platforms 1 iOS / 2 Android / 3 web.
    """

    ages: list[int] = Field(default_factory=list)
    gender: int | None = None
    locations: list[int] = Field(default_factory=list)
    cities: list[int] = Field(default_factory=list)
    platforms: list[int] = Field(default_factory=list)

    def to_payload(self, style: Literal["csv", "list"] = "csv") -> dict[str, object]:
        """The `recipient.target` object; `csv` is the .NET SDK's comma-joined form (UNC)."""
        out: dict[str, object] = {}
        for name in ("ages", "locations", "cities", "platforms"):
            values: list[int] = getattr(self, name)
            if values:
                out[name] = ",".join(map(str, values)) if style == "csv" else values
        if self.gender is not None:
            out["gender"] = str(self.gender) if style == "csv" else self.gender
        return out


class OaInfo(_ZaloModel):
    """`GET /v2.0/oa/getoa`: the OA's identity and its follower total."""

    oa_id: str = Field(alias="oaid")
    name: str
    num_follower: int
    is_verified: bool | None = None
    oa_type: int | None = None
    package_name: str | None = None
    package_valid_through_date: str | None = None

    @field_validator("oa_id", mode="before")
    @classmethod
    def _id_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) else value


class FollowerPage(_ZaloModel):
    """One page of `GET /v3.0/oa/user/getlist`."""

    total: int
    count: int
    offset: int
    user_ids: list[str]


class UserProfile(_ZaloModel):
    """`GET /v3.0/oa/user/detail` (shared_info holds what the user chose to share)."""

    user_id: str
    display_name: str | None = None
    user_is_follower: bool | None = None
    user_last_interaction_date: str | None = None
    user_id_by_app: str | None = None
    avatars: dict[str, str] = Field(default_factory=dict)
    shared_info: dict[str, object] | None = None


class Group(_ZaloModel):
    """An OA-owned GMF group (shape UNC)."""

    group_id: str
    name: str | None = None
    status: str | None = None
    total_member: int | None = None


class GroupPage(_ZaloModel):
    total: int
    count: int
    offset: int
    groups: list[Group]


class GroupMember(_ZaloModel):
    user_id: str
    name: str | None = None


class GroupMemberPage(_ZaloModel):
    total: int
    count: int
    offset: int
    members: list[GroupMember]


class ArticleCreated(_ZaloModel):
    """`POST /v2.0/article/create` is asynchronous: it returns a token, not the article id."""

    token: str


class ArticleStats(_ZaloModel):
    """One article from `getslice` with whatever view/share counts Zalo returned (UNC names)."""

    article_id: str
    title: str | None = None
    status: str | None = None
    create_date: int | None = None
    update_date: int | None = None
    views: int | None = None
    shares: int | None = None


class TokenPair(_ZaloModel):
    """The OA token pair as stored in the shared key-value bucket."""

    access_token: str
    refresh_token: str
    expires_at: float  # epoch seconds
    refreshed_at: float = Field(default_factory=time.time)

    def is_fresh(self, now: float, margin: float) -> bool:
        """True while the access token has more than `margin` seconds left."""
        return self.expires_at - margin > now
