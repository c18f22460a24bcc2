"""`python -m tools.zalo_sim`: send signed, realistic Zalo webhooks to ingest at a given rate.

The senders are the demo world's residents and groups (`tools/demo_world`); at the end it prints
ingest's answers and what it sent in the terms the product reports (messages per kind, follows,
unfollows, the cases reports should open per ward), so the dashboard can be checked against it.
"""

import argparse
import asyncio
import json
from collections import Counter
from typing import Any

import httpx

from shared.settings import ZaloSettings
from tools.zalo_sim.events import EVENT_NAMES, EventFactory, encode, signed_request


async def run(
    url: str, rate: float, count: int, names: list[str], seed: int
) -> tuple[Counter[str], dict[str, Any]]:
    """Send `count` events; the answers by status, and what was sent (`Tally.summary`)."""
    settings = ZaloSettings()
    factory = EventFactory(settings.zalo_app_id, seed=seed)
    statuses: Counter[str] = Counter()
    interval = 1.0 / rate
    async with httpx.AsyncClient(timeout=5) as client:
        loop = asyncio.get_running_loop()
        start = loop.time()
        pending = []
        for n in range(count):
            body = factory.make(names[n % len(names)])
            raw = encode(body)
            headers = signed_request(
                raw, settings.zalo_app_id, settings.zalo_oa_secret_key, body["timestamp"]
            )
            pending.append(asyncio.create_task(client.post(url, content=raw, headers=headers)))
            await asyncio.sleep(max(0.0, start + (n + 1) * interval - loop.time()))
        for response in await asyncio.gather(*pending, return_exceptions=True):
            if isinstance(response, httpx.Response):
                reply = response.json()
                statuses[f"{response.status_code} {reply.get('status', reply.get('error'))}"] += 1
            else:
                statuses[type(response).__name__] += 1
    return statuses, factory.tally.summary()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--url", default="http://127.0.0.1:8010/webhooks/zalo")
    parser.add_argument("--rate", type=float, default=5.0, help="events per second")
    parser.add_argument("--count", type=int, default=50)
    parser.add_argument(
        "--events", default=",".join(EVENT_NAMES), help="comma-separated event names"
    )
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    statuses, sent = asyncio.run(
        run(args.url, args.rate, args.count, args.events.split(","), args.seed)
    )
    print(json.dumps({"answers": dict(statuses), "sent": sent}, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
