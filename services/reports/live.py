"""Fans tip events out to live browser consoles (Server-Sent Events) in this process."""

import asyncio
import json
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from nats.aio.msg import Msg

log = logging.getLogger(__name__)


class LiveFeed:
    """Every tip event seen on NATS, copied to each open stream's queue."""

    def __init__(self, queue_size: int = 256) -> None:
        self._queues: set[asyncio.Queue[tuple[str, dict[str, Any]]]] = set()
        self._size = queue_size

    async def on_message(self, msg: Msg) -> None:
        try:
            payload = json.loads(msg.data)
        except ValueError:
            log.warning("undecodable tip event skipped", extra={"subject": msg.subject})
            return
        self.push(msg.subject, payload)

    def push(self, subject: str, payload: dict[str, Any]) -> None:
        for queue in self._queues:
            if queue.full():
                log.warning("live stream too slow; event dropped", extra={"subject": subject})
                continue
            queue.put_nowait((subject, payload))

    @asynccontextmanager
    async def listen(self) -> AsyncIterator["asyncio.Queue[tuple[str, dict[str, Any]]]"]:
        queue: asyncio.Queue[tuple[str, dict[str, Any]]] = asyncio.Queue(self._size)
        self._queues.add(queue)
        try:
            yield queue
        finally:
            self._queues.discard(queue)
