"""A durable, ordered on-disk spool for events that could not reach JetStream.

SQLite in WAL mode with `synchronous=FULL`: a row is on disk (fsynced) when `append` returns,
so a 200 given after spooling survives a crash of ingest. Rows drain in insertion order.
Each row keeps the webhook's trace context (`traceparent`, `tracestate` if any) so that the
event, published later, still belongs to the trace its webhook started.
All SQLite calls run on one dedicated thread; the event loop never blocks on disk.
"""

import asyncio
import json
import sqlite3
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class SpooledEvent:
    seq: int
    event_id: str
    subject: str
    data: bytes
    headers: dict[str, str]  # the trace context to publish the event with


class Spool:
    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="spool")
        self._path = directory / "spool.sqlite3"
        self._db: sqlite3.Connection | None = None
        self._size = 0

    async def open(self) -> None:
        self._size = await self._run(self._open)

    async def close(self) -> None:
        await self._run(self._close)
        self._executor.shutdown(wait=True)

    @property
    def size(self) -> int:
        """Rows waiting to be drained."""
        return self._size

    async def append(
        self, event_id: str, subject: str, data: bytes, headers: dict[str, str] | None = None
    ) -> None:
        await self._run(self._insert, event_id, subject, data, headers or {})
        self._size += 1

    async def peek(self, limit: int) -> list[SpooledEvent]:
        """The oldest rows, without removing them."""
        return await self._run(self._select, limit)

    async def remove(self, seq: int) -> None:
        await self._run(self._delete, seq)
        self._size -= 1

    async def _run(self, function: Callable[..., T], *args: object) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    def _open(self) -> int:
        self._db = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.execute(
            "CREATE TABLE IF NOT EXISTS spool (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
            " event_id TEXT NOT NULL, subject TEXT NOT NULL, data BLOB NOT NULL)"
        )
        columns = {row[1] for row in self._db.execute("PRAGMA table_info(spool)")}
        if "headers" not in columns:  # a spool written before rows kept their trace context
            self._db.execute("ALTER TABLE spool ADD COLUMN headers TEXT")
        (count,) = self._db.execute("SELECT COUNT(*) FROM spool").fetchone()
        return int(count)

    def _close(self) -> None:
        if self._db is not None:
            self._db.close()
            self._db = None

    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            raise RuntimeError("spool is not open")
        return self._db

    def _insert(self, event_id: str, subject: str, data: bytes, headers: dict[str, str]) -> None:
        self._connection().execute(
            "INSERT INTO spool (event_id, subject, data, headers) VALUES (?, ?, ?, ?)",
            (event_id, subject, data, json.dumps(headers) if headers else None),
        )

    def _select(self, limit: int) -> list[SpooledEvent]:
        rows = self._connection().execute(
            "SELECT seq, event_id, subject, data, headers FROM spool ORDER BY seq LIMIT ?",
            (limit,),
        )
        return [
            SpooledEvent(
                int(seq), eid, subject, bytes(data), json.loads(headers) if headers else {}
            )
            for seq, eid, subject, data, headers in rows
        ]

    def _delete(self, seq: int) -> None:
        self._connection().execute("DELETE FROM spool WHERE seq = ?", (seq,))
