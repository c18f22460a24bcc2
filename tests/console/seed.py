"""Many cases at once, for the long-queue test and `bench/console.py`: written straight into
reports' store with reports' own `insert_cases` (the write intake makes), since a thousand
webhooks would take minutes and the queue only needs the cases to be there."""

import asyncio
import os
import random
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from services.reports.cases import Case, CaseMessage, case_id_for, reference_code
from services.reports.store import ReportsStore
from shared.events.tips import CaseStatus, TipCategory, TipKind, TipPriority
from shared.mongo import connect_mongo

# 5 % urgent (never acknowledged: their countdowns run), 15 % high, 60 % normal, 20 % low.
PRIORITIES = [TipPriority.URGENT] * 5 + [TipPriority.HIGH] * 15 + [TipPriority.NORMAL] * 60
PRIORITIES += [TipPriority.LOW] * 20
TEXTS = (
    "Có người lạ mặt lảng vảng quanh nhà văn hóa tổ dân phố {n}, phường Quang Phú",
    "Mất trộm xe máy trước cửa nhà số {n} đường Trương Pháp, phường Quang Phú",
    "Quán karaoke số {n} mở nhạc to quá nửa đêm, phường Quang Phú",
    "Có người gọi điện giả danh công an đòi chuyển tiền, số {n}, phường Quang Phú",
)


def stack_mongodb_url(banner: str) -> str:
    """The MongoDB-wire server of a `make run` (from its banner)."""
    return banner.split("MongoDB-wire", 1)[1].split()[0]


def seed_cases(
    mongodb_url: str,
    count: int,
    *,
    ward: str = "quang-phu",
    status: CaseStatus = CaseStatus.NEW,
    label: str = "seed",
    priorities: Sequence[TipPriority] = (),
) -> None:
    """`count` cases of `ward` created over the last day, newest first; each text names
    `label` and its number (`{label} 7`), so a test can find them. Priorities are drawn from
    the mix above unless `priorities` gives them in turn."""

    async def write() -> None:
        client: Any = connect_mongo(mongodb_url)
        try:
            store = ReportsStore(client[os.environ.get("MONGODB_DATABASE", "binhyen")])
            now = datetime.now(UTC)
            rng = random.Random(17)
            cases = []
            for n in range(count):
                case_id = case_id_for(f"{label}-{n}")
                at = now - timedelta(seconds=86_400 * n / count)
                text = f"{rng.choice(TEXTS).format(n=n)} ({label} {n})"
                message = CaseMessage(
                    event_id=f"{label}-{n}", at=at, message_type="text", text=text
                )
                cases.append(
                    Case(
                        id=case_id,
                        ref=reference_code(case_id, "BY"),
                        kind=TipKind.TIP,
                        category=rng.choice(list(TipCategory)),
                        priority=(
                            priorities[n % len(priorities)]
                            if priorities
                            else rng.choice(PRIORITIES)
                        ),
                        ward=ward,
                        ward_source="text",
                        status=status,
                        tipster=f"p-{label}{n:05d}",
                        channel="oa",
                        messages=[message],
                        message_ids=[message.event_id],
                        created_at=at,
                        updated_at=at,
                        last_message_at=at,
                    )
                )
            for start in range(0, count, 200):
                await store.insert_cases(cases[start : start + 200])
        finally:
            await client.close()

    # A thread of its own: a test's Playwright keeps an event loop running in this one.
    with ThreadPoolExecutor(1) as thread:
        thread.submit(asyncio.run, write()).result()
