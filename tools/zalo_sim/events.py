"""Builders of webhook bodies in Zalo's documented shapes (ids and timestamps as strings)."""

import json
import random
import time
from typing import Any

from shared.zalo.signature import SIGNATURE_HEADER, sign

OA_ID = "388613280878808645"
GROUP_IDS = ("7210493857261940582", "7210493857261940583", "7210493857261940584")

TIP_TEXTS = (
    "Có 2 đối tượng lạ mặt đang đi lại trong xóm, nghi trộm chó, tổ dân phố 3 phường Bắc Lý",
    "ae cảnh giác, có xe máy không biển lảng vảng đầu thôn Đức Điền",
    "Báo tin: nhóm thanh niên tụ tập đánh bạc ở nhà văn hoá thôn Cộng Hòa, xã Quang Phú",
    "co nguoi danh nhau o cho Dong Hoi, co dao, can cong an den gap",
    "Nhà em vừa bị mất xe máy trước cửa, đường Trần Hưng Đạo phường Đồng Phú",
    "Em nhận được cuộc gọi tự xưng công an yêu cầu chuyển tiền, có phải lừa đảo không ạ?",
    "cho em hỏi làm căn cước gắn chip cho con ở đâu ạ",
    "ko biết ai đổ rác ra đường Lý Thường Kiệt, dc ko ạ",
)
MEDIA = {
    "image": {
        "url": "https://photo-stal.zdn.vn/sim/{n}.jpg",
        "thumbnail": "https://photo-stal.zdn.vn/sim/{n}_t.jpg",
    },
    "gif": {"url": "https://g.zdn.vn/sim/{n}.gif", "thumbnail": "https://g.zdn.vn/sim/{n}_t.jpg"},
    "audio": {"url": "https://voice.zdn.vn/sim/{n}.amr"},
    "video": {
        "url": "https://video.zdn.vn/sim/{n}.mp4",
        "thumbnail": "https://video.zdn.vn/sim/{n}.jpg",
        "description": "",
    },
    "sticker": {
        "id": "7d4f2c",
        "url": "https://zalo-api.zadn.vn/api/emoticon/sticker/webpc?eid=7d4f2c",
    },
    "link": {
        "url": "https://example.invalid/sim/{n}",
        "thumbnail": "https://example.invalid/t.jpg",
        "description": "Liên kết",
    },
    "file": {
        "url": "https://f.zdn.vn/sim/{n}.pdf",
        "name": "don-trinh-bao.pdf",
        "size": "48213",
        "type": "pdf",
        "checksum": "a1b2c3d4",
    },
    "business_card": {
        "url": "https://zalo.me/sim-card",
        "thumbnail": "https://example.invalid/card.jpg",
        "description": '{"phone":""}',
    },
}
USER_MESSAGE_TYPES = (
    "text",
    "image",
    "gif",
    "audio",
    "video",
    "sticker",
    "link",
    "file",
    "location",
    "business_card",
)
GROUP_MESSAGE_TYPES = (
    "text",
    "image",
    "link",
    "audio",
    "video",
    "business_card",
    "sticker",
    "gif",
    "file",
)
EVENT_NAMES = (
    *(f"user_send_{t}" for t in USER_MESSAGE_TYPES),
    *(f"user_send_group_{t}" for t in GROUP_MESSAGE_TYPES),
    "anonymous_send_text",
    "oa_send_text",
    "user_received_message",
    "user_seen_message",
    "user_reacted_message",
    "follow",
    "unfollow",
    "user_submit_info",
    "user_click_chatnow",
    "user_join_group",
)


class EventFactory:
    """Makes bodies with fresh ids and the current time; seeded for repeatable runs."""

    def __init__(self, app_id: str, seed: int = 0, users: int = 500) -> None:
        self.app_id = app_id
        self._rng = random.Random(seed)
        self._users = [str(246845883529197922 + n * 7919) for n in range(users)]
        self._counter = 0

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._rng.getrandbits(64):016x}{self._counter:06x}"

    def _base(self, event_name: str, timestamp_ms: int | None) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "user_id_by_app": str(552177279717587730 + self._counter),
            "event_name": event_name,
            "timestamp": str(timestamp_ms or int(time.time() * 1000)),
        }

    def make(self, event_name: str, timestamp_ms: int | None = None) -> dict[str, Any]:
        body = self._base(event_name, timestamp_ms)
        user = self._rng.choice(self._users)
        n = self._next_id()
        if event_name in ("follow", "unfollow"):
            body |= {"oa_id": OA_ID, "source": "oa_profile", "follower": {"id": user}}
        elif event_name in ("user_click_chatnow", "user_join_group"):
            body |= {"oa_id": OA_ID, "user_id": user}
            if event_name == "user_join_group":
                body["group_id"] = self._rng.choice(GROUP_IDS)
        elif event_name == "user_submit_info":
            body |= {
                "sender": {"id": user},
                "recipient": {"id": OA_ID},
                "info": {
                    "name": "Nguyễn Văn A",
                    "phone": "84912345678",
                    "full_address": {"user_ward": "Quang Phú"},
                },
            }
        elif event_name in ("user_received_message", "user_seen_message", "user_reacted_message"):
            body |= self._about_oa_message(event_name, user)
        else:
            body |= self._message(event_name, user, n)
        return body

    def _about_oa_message(self, event_name: str, user: str) -> dict[str, Any]:
        if event_name == "user_reacted_message":
            return {
                "sender": {"id": user},
                "recipient": {"id": OA_ID},
                "message": {"msg_id": self._next_id(), "react_icon": "/-heart"},
            }
        message: dict[str, Any] = (
            {"msg_ids": [self._next_id(), self._next_id()]}
            if event_name == "user_seen_message"
            else {"msg_id": self._next_id()}
        )
        return {"sender": {"id": OA_ID}, "recipient": {"id": user}, "message": message}

    def _message(self, event_name: str, user: str, n: str) -> dict[str, Any]:
        kind = event_name.rsplit("_send_", 1)[1].removeprefix("group_")
        in_group = "_group_" in event_name
        from_oa = event_name.startswith("oa_")
        sender, recipient = (
            (OA_ID, user) if from_oa else (user, self._rng.choice(GROUP_IDS) if in_group else OA_ID)
        )
        message: dict[str, Any] = {"msg_id": n}
        if kind == "text":
            message["text"] = (
                "Công an phường đã tiếp nhận tin báo." if from_oa else self._rng.choice(TIP_TEXTS)
            )
        elif kind == "location":
            lat, lon = 17.46 + self._rng.random() / 50, 106.60 + self._rng.random() / 50
            message |= {
                "text": "",
                "attachments": [
                    {
                        "type": "location",
                        "payload": {
                            "coordinates": {"latitude": f"{lat:.4f}", "longitude": f"{lon:.4f}"}
                        },
                    }
                ],
            }
        else:
            payload = {key: value.replace("{n}", n) for key, value in MEDIA[kind].items()}
            attachment_type = "link" if kind == "business_card" else kind
            message["attachments"] = [{"type": attachment_type, "payload": payload}]
        if event_name.startswith("anonymous_"):
            message["conversation_id"] = f"conv-{n[:8]}"
        return {"sender": {"id": sender}, "recipient": {"id": recipient}, "message": message}

    def random_event(self) -> dict[str, Any]:
        return self.make(self._rng.choice(EVENT_NAMES))


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signed_request(raw: bytes, app_id: str, secret_key: str, timestamp: str) -> dict[str, str]:
    """Headers Zalo would send with `raw`."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(app_id, raw, timestamp, secret_key),
    }
