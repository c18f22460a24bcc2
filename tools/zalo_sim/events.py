"""Builders of webhook bodies in Zalo's documented shapes (ids and timestamps as strings)."""

import json
import random
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from shared.places import DEMO_PLACES_FILE, UNKNOWN_WARD
from shared.zalo.signature import SIGNATURE_HEADER, sign
from tools.demo_world import World, WorldGroup, resident_id

OA_ID = "388613280878808645"
# Reports of something that happened in a named unit, as residents write them ({place} is
# "phường Bắc Lý", "xã Bảo Ninh", ...). Each opens one case in that unit (group messages: in the
# group's unit). Plain, unambiguous reports: the simulator checks the plumbing, not triage.
TIP_TEXTS = (
    "Báo tin: có 2 đối tượng lạ mặt đang cạy khoá xe máy trước nhà dân ở {place}",
    "Nhà em ở {place} vừa bị trộm đột nhập lấy mất xe máy và tiền, nhờ công an xuống giúp",
    "Có nhóm thanh niên tụ tập đánh bạc ăn tiền ở nhà văn hoá {place}, báo công an xử lý",
    "Cảnh báo: có người gọi điện tự xưng công an {place} yêu cầu chuyển tiền, là lừa đảo",
    "bao tin co nguoi danh nhau co dao o cho {place}, can cong an den ngay",
    "Báo công an: xe tải đâm xe máy ở {place}, người bị thương nằm dưới đường",
    "Có người lạ lảng vảng nhìn vào từng nhà ở {place} mấy hôm nay, nghi trộm chó",
    "Tố giác: có đối tượng bán ma tuý ở quán nước đầu ngõ {place}",
)
# Events whose message can open a case on its own (a text report, a photo, a location).
CASE_OPENING = frozenset(
    {
        "user_send_text",
        "user_send_image",
        "user_send_gif",
        "user_send_location",
        "user_send_group_text",
        "user_send_group_image",
        "user_send_group_gif",
        "anonymous_send_text",
    }
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
# The kind ingest gives each event name (`zalo.event.<kind>`), as Zalo's documentation implies.
KIND_OF = {
    **{f"user_send_{t}": "user_message" for t in USER_MESSAGE_TYPES},
    **{f"user_send_group_{t}": "group_message" for t in GROUP_MESSAGE_TYPES},
    "anonymous_send_text": "user_message",
    "oa_send_text": "oa_message",
    "user_received_message": "receipt",
    "user_seen_message": "receipt",
    "user_reacted_message": "reaction",
    "follow": "follow",
    "unfollow": "unfollow",
    "user_submit_info": "user_info",
    "user_click_chatnow": "chat_opened",
    "user_join_group": "group",
}
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


@dataclass
class Tally:
    """What a factory has made, in the terms the product reports: events per kind as ingest
    publishes them, follows and unfollows, and the cases reports should open (one per
    case-opening message, each from a resident with no open case) with their ward."""

    kinds: Counter[str] = field(default_factory=Counter)
    cases: Counter[str] = field(default_factory=Counter)  # ward -> cases expected there

    def summary(self) -> dict[str, Any]:
        messages = sum(self.kinds[k] for k in ("user_message", "group_message", "oa_message"))
        return {
            "events": sum(self.kinds.values()),
            "kinds": dict(sorted(self.kinds.items())),
            "messages": messages,
            "follows": self.kinds["follow"],
            "unfollows": self.kinds["unfollow"],
            "cases": sum(self.cases.values()),
            "cases_per_ward": dict(sorted(self.cases.items())),
        }


class EventFactory:
    """Makes bodies with fresh ids and the current time; seeded for repeatable runs.

    By default the senders are the demo world's residents and groups (`tools.demo_world`), and
    every citizen event comes from a resident who has not spoken yet, so what the product must
    count follows from what was sent (`tally`). `users=N` instead picks among N made-up users at
    random (the benchmarks' load, where only volume matters)."""

    def __init__(
        self, app_id: str, seed: int = 0, users: int | None = None, world: World | None = None
    ) -> None:
        self.app_id = app_id
        self._rng = random.Random(seed)
        self._counter = 0
        self.world = world or _demo_world()
        self.tally = Tally()
        self._random_users = (
            [resident_id(self.world.residents + n) for n in range(users)] if users else None
        )
        self._oa_groups = [g for g in self.world.groups if g.channel == "oa"]
        followers = set(self.world.follower_indexes)
        order = list(range(self.world.residents))
        self._rng.shuffle(order)
        self._unheard = {
            True: [i for i in order if i in followers],
            False: [i for i in order if i not in followers],
        }
        self._spoken: set[int] = set()
        self._centroids = _centroids()

    def _next_id(self) -> str:
        self._counter += 1
        return f"{self._rng.getrandbits(64):016x}{self._counter:06x}"

    def _resident(self, follower: bool | None = None, group: WorldGroup | None = None) -> str:
        """A resident who has not sent anything yet (a member of `group` if given)."""
        if self._random_users is not None:
            return self._rng.choice(self._random_users)
        if group is not None:
            for n in range(group.member_count):
                index = group.first_member + n
                if index not in self._spoken:
                    self._spoken.add(index)
                    return resident_id(index)
            raise RuntimeError(f"every member of group {group.id} has spoken")
        pools = [self._unheard[follower]] if follower is not None else list(self._unheard.values())
        for pool in pools:
            while pool:
                index = pool.pop()
                if index not in self._spoken:
                    self._spoken.add(index)
                    return resident_id(index)
        raise RuntimeError("every resident has spoken: use fewer events")

    def _group(self) -> WorldGroup:
        return self._rng.choice(self._oa_groups)

    def _base(self, event_name: str, timestamp_ms: int | None) -> dict[str, Any]:
        return {
            "app_id": self.app_id,
            "user_id_by_app": str(552177279717587730 + self._counter),
            "event_name": event_name,
            "timestamp": str(timestamp_ms or int(time.time() * 1000)),
        }

    def make(self, event_name: str, timestamp_ms: int | None = None) -> dict[str, Any]:
        body = self._base(event_name, timestamp_ms)
        n = self._next_id()
        if event_name in ("follow", "unfollow"):
            user = self._resident(follower=event_name == "unfollow")
            body |= {"oa_id": OA_ID, "source": "oa_profile", "follower": {"id": user}}
        elif event_name == "user_click_chatnow":
            body |= {"oa_id": OA_ID, "user_id": self._resident()}
        elif event_name == "user_join_group":
            body |= {"oa_id": OA_ID, "user_id": self._resident(), "group_id": self._group().id}
        elif event_name == "user_submit_info":
            body |= {
                "sender": {"id": self._resident()},
                "recipient": {"id": OA_ID},
                "info": {
                    "name": "Nguyễn Văn A",
                    "phone": "84912345678",
                    "full_address": {"user_ward": "Quang Phú"},
                },
            }
        elif event_name in ("user_received_message", "user_seen_message", "user_reacted_message"):
            body |= self._about_oa_message(event_name, self._resident())
        else:
            body |= self._message(event_name, n)
        self.tally.kinds[KIND_OF.get(event_name, "unknown")] += 1
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

    def _message(self, event_name: str, n: str) -> dict[str, Any]:
        kind = event_name.rsplit("_send_", 1)[1].removeprefix("group_")
        group = self._group() if "_group_" in event_name else None
        from_oa = event_name.startswith("oa_")
        user = self._resident() if from_oa else self._resident(group=group)
        sender, recipient = (OA_ID, user) if from_oa else (user, group.id if group else OA_ID)
        # The unit the message is about: its group's, else one the text names or a location.
        ward = group.ward if group else self._rng.choice(self.world.units).slug
        message: dict[str, Any] = {"msg_id": n}
        if kind == "text":
            template = self._rng.choice(TIP_TEXTS)
            tip = template.format(place=self.world.unit_name(ward))
            message["text"] = "Công an phường đã tiếp nhận tin báo." if from_oa else tip
        elif kind == "location":
            ward = self._rng.choice(sorted(self._centroids))
            lat, lon = self._centroids[ward]
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
            if group is None:
                ward = UNKNOWN_WARD  # a photo alone says nothing of where
        if event_name.startswith("anonymous_"):
            message["conversation_id"] = f"conv-{n[:8]}"
        if event_name in CASE_OPENING:
            self.tally.cases[ward] += 1
        return {"sender": {"id": sender}, "recipient": {"id": recipient}, "message": message}

    def random_event(self) -> dict[str, Any]:
        return self.make(self._rng.choice(EVENT_NAMES))


@lru_cache(maxsize=1)
def _demo_world() -> World:
    return World.load()


@lru_cache(maxsize=1)
def _centroids() -> dict[str, tuple[float, float]]:
    """Rough unit centres of the demo places (reports places a shared location by them)."""
    raw = json.loads(DEMO_PLACES_FILE.read_text(encoding="utf-8"))
    return {ward: (float(c[0]), float(c[1])) for ward, c in raw["centroids"].items()}


def encode(body: dict[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


def signed_request(raw: bytes, app_id: str, secret_key: str, timestamp: str) -> dict[str, str]:
    """Headers Zalo would send with `raw`."""
    return {
        "Content-Type": "application/json",
        SIGNATURE_HEADER: sign(app_id, raw, timestamp, secret_key),
    }
