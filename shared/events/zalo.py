"""Normalized Zalo OA webhook events (producer: ingest)."""

from datetime import datetime
from enum import StrEnum
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from shared.events.envelope import Event


class ZaloEventKind(StrEnum):
    """The subject token of a normalized event: `zalo.event.<kind>`."""

    FOLLOW = "follow"
    UNFOLLOW = "unfollow"
    USER_MESSAGE = "user_message"  # a citizen writes to the OA, 1:1 (also anonymous users)
    GROUP_MESSAGE = "group_message"  # a member writes in an OA-owned group
    OA_MESSAGE = "oa_message"  # echo of what the OA sent, to a user or a group
    REACTION = "reaction"
    RECEIPT = "receipt"  # received / seen
    USER_INFO = "user_info"  # a user submitted or updated shared information
    CHAT_OPENED = "chat_opened"  # user_click_chatnow
    GROUP = "group"  # group lifecycle and membership
    TAG = "tag"
    PRIVACY_REQUEST = "privacy_request"  # user_withdraw: a data-subject request
    SYSTEM = "system"  # permission_revoked and other OA-level notices
    UNKNOWN = "unknown"  # an event name no model knows; kept with its payload


class MessageType(StrEnum):
    TEXT = "text"
    IMAGE = "image"
    GIF = "gif"
    STICKER = "sticker"
    LINK = "link"
    AUDIO = "audio"
    VIDEO = "video"
    FILE = "file"
    LOCATION = "location"
    BUSINESS_CARD = "business_card"
    LIST = "list"
    TEMPLATE = "template"


class Attachment(BaseModel):
    """One attachment, flattened: only the fields its type carries are set."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    type: str
    url: str | None = None
    thumbnail: str | None = None
    description: str | None = None
    latitude: float | None = None
    longitude: float | None = None
    file_name: str | None = None
    file_size: int | None = None
    file_type: str | None = None
    checksum: str | None = None
    sticker_id: str | None = None


class SubmittedInfo(BaseModel):
    """What a user shared through a `request_user_info` form. Personal data: never log it."""

    model_config = ConfigDict(frozen=True, extra="ignore")

    name: str | None = None
    phone: str | None = None
    address: str | None = None
    ward: str | None = None
    district: str | None = None
    city: str | None = None


class ZaloEventReceived(Event):
    """A Zalo webhook event, normalized. `user_id` is the citizen the event is about (the
    sender of a user message, the recipient of an OA message, the follower); it is the raw
    Zalo id and must be pseudonymized before it reaches logs or staff."""

    type: Literal["zalo_event.received"] = "zalo_event.received"
    v: Literal[1] = 1
    producer: str = "ingest"

    kind: ZaloEventKind
    event_name: str
    received_at: datetime
    app_id: str
    oa_id: str | None = None
    user_id: str | None = None
    user_id_by_app: str | None = None
    sender_id: str | None = None
    sender_admin_id: str | None = None
    recipient_id: str | None = None
    group_id: str | None = None
    is_anonymous: bool = False
    conversation_id: str | None = None
    message_id: str | None = None
    message_ids: tuple[str, ...] = ()
    message_type: MessageType | None = None
    quote_message_id: str | None = None
    text: str | None = None
    attachments: tuple[Attachment, ...] = ()
    reaction: str | None = None
    source: str | None = None
    submitted_info: SubmittedInfo | None = None
    # The whole body, for unknown kinds and for those whose shapes vary between sources
    # (group lifecycle, tags, system notices), so consumers can read fields we do not model.
    payload: dict[str, Any] | None = None
