"""A dispatcher's live queue in a terminal: `python -m services.reports.watch --ward quang-phu`.

A durable consumer per ward desk, so a restarted watcher replays what it missed. Shows only
pseudonyms and masked narratives, exactly what the TIPS stream carries.
"""

import argparse
import asyncio
import contextlib
import json
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any, TextIO

from nats.errors import TimeoutError as NatsTimeout
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy

from services.reports.settings import ReportsSettings
from shared.jetstream import connect, ensure_consumer
from shared.subjects import reports_desk_durable, tips_ward_filters
from shared.text import mask_phones, strip_controls

PRIORITY_MARKS = {"urgent": "!!!", "high": "!! ", "normal": "!  ", "low": "   "}
CHANGE_LABELS = {
    "message_added": "thêm tin nhắn",
    "retriaged": "phân loại lại",
    "status_changed": "đổi trạng thái",
    "assigned": "phân công",
    "note_added": "thêm ghi chú",
    "rerouted": "chuyển phường/xã",
    "duplicate_suggested": "nghi trùng",
    "merged": "gộp tin trùng",
    "replied": "đã trả lời người báo",
    "info_copy": "bản sao để biết",
}
NARRATIVE_WIDTH = 90


def format_event(payload: dict[str, Any]) -> str:
    """One line per tip event, for a terminal: as text only. Every field can carry a
    resident's bytes, and a terminal acts on ESC sequences (titles, clearing, OSC 52 clipboard
    writes), so C0/C1 controls go; numbers are masked again for events older than the mask."""
    return strip_controls(_line(payload), keep_newlines=False)


def _line(payload: dict[str, Any]) -> str:
    when = _clock(payload.get("occurred_at"))
    kind = payload.get("type")
    ref, ward = payload.get("ref", "?"), payload.get("ward", "?")
    if kind == "tip.triaged":
        mark = PRIORITY_MARKS.get(payload.get("priority", ""), "   ")
        narrative = " ".join(mask_phones(str(payload.get("narrative", ""))).split())
        if len(narrative) > NARRATIVE_WIDTH:
            narrative = narrative[: NARRATIVE_WIDTH - 1] + "…"
        info = " [để biết]" if payload.get("info_only") else ""
        dup = f" [nghi trùng {payload['duplicate_of']}]" if payload.get("duplicate_of") else ""
        return (
            f"{when} {mark} MỚI {ref} {ward} {payload.get('priority')}/{payload.get('category')}"
            f"{info}{dup} người báo {payload.get('tipster')}: {narrative}"
        )
    if kind == "tip.escalated":
        waited = int(float(payload.get("waited_seconds", 0)) // 60)
        return f"{when} !!! QUÁ HẠN {ref} {ward}: tin khẩn chưa được tiếp nhận sau {waited} phút"
    change = CHANGE_LABELS.get(str(payload.get("change")), str(payload.get("change")))
    detail = f" ({payload['detail']})" if payload.get("detail") else ""
    return f"{when}     CẬP NHẬT {ref} {ward}: {change}{detail} → {payload.get('status')}"


def _clock(value: object) -> str:
    try:
        return datetime.fromisoformat(str(value)).astimezone().strftime("%H:%M:%S")
    except ValueError:
        return "--:--:--"


async def watch(
    nats_url: str,
    wards: Sequence[str],
    stream: str,
    out: TextIO,
    durable: str | None = None,
    replay: bool = False,
    limit: int | None = None,
) -> int:
    """Print tip events of `wards` until interrupted (or `limit` events); returns the count."""
    nc = await connect(nats_url, name="reports-watch")
    shown = 0
    try:
        js = nc.jetstream()
        name = durable or reports_desk_durable("-".join(sorted(wards)))
        config = ConsumerConfig(
            durable_name=name,
            filter_subjects=[s for ward in wards for s in tips_ward_filters(ward)],
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL if replay else DeliverPolicy.NEW,
        )
        await ensure_consumer(js, stream, config)
        sub = await js.pull_subscribe_bind(name, stream)
        try:
            while limit is None or shown < limit:
                with contextlib.suppress(NatsTimeout):
                    for msg in await sub.fetch(10, timeout=1.0):
                        print(format_event(json.loads(msg.data)), file=out, flush=True)
                        await msg.ack()
                        shown += 1
        finally:
            await sub.unsubscribe()
    finally:
        await nc.close()
    return shown


def main(argv: Sequence[str] | None = None) -> None:
    settings = ReportsSettings()
    parser = argparse.ArgumentParser(description="Hàng đợi tin báo của một phường/xã.")
    parser.add_argument("--ward", action="append", required=True, help="slug, e.g. quang-phu")
    parser.add_argument("--nats-url", default=settings.nats_url)
    parser.add_argument("--stream", default=settings.tips_stream)
    parser.add_argument("--durable", default=None, help="desk consumer name (default per ward)")
    parser.add_argument("--replay", action="store_true", help="a new desk starts from the start")
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            watch(args.nats_url, args.ward, args.stream, sys.stdout, args.durable, args.replay)
        )


if __name__ == "__main__":
    main()
