"""One counting replica at a time: a lease in a JetStream key-value bucket.

Counters have one writer per database (see `ledger`): FerretDB loses concurrent `$inc`s and
the index of seen event ids lives in the writer's memory. Every replica serves HTTP; only the
holder of the lease runs the consumers. The lease is taken with `create` (put-if-absent) and
renewed with a compare-and-set `update` on its revision; the bucket's TTL drops it when its
holder stops renewing, and another replica takes it over.
"""

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from nats.errors import Error as NatsError
from nats.js.errors import KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pymongo.errors import PyMongoError

log = logging.getLogger(__name__)

KEY = "writer"
# What taking, keeping or acting on the lease may fail with and succeed later (the lead's
# start connects to NATS and loads the ledger from MongoDB); anything else is a bug: it ends
# the loop loudly, the lease expires and another replica leads.
UNAVAILABLE = (NatsError, PyMongoError, TimeoutError, ConnectionError)


class WriterLease:
    """Runs `lead()` while this replica holds the lease, and `follow()` when it loses it."""

    def __init__(
        self,
        kv: KeyValue,
        owner: str,
        ttl: float,
        lead: Callable[[], Awaitable[None]],
        follow: Callable[[], Awaitable[None]],
    ) -> None:
        self.kv, self.owner, self.ttl = kv, owner, ttl
        self.lead, self.follow = lead, follow
        self.revision: int | None = None
        self.leading = asyncio.Event()

    async def run(self) -> None:
        """Until cancelled: try to take the lease, then keep it as long as possible."""
        while True:
            try:
                await self._step()
            except asyncio.CancelledError:
                raise
            except UNAVAILABLE as exc:  # NATS or MongoDB unreachable: not leading, try again
                log.warning("writer lease error", extra={"error": type(exc).__name__})
                await self._lose()
            await asyncio.sleep(self.ttl / 3)

    async def _step(self) -> None:
        if self.revision is None:
            with contextlib.suppress(KeyWrongLastSequenceError):
                self.revision = await self.kv.create(KEY, self.owner.encode())
                log.info("writer lease taken", extra={"owner": self.owner})
                await self.lead()
                self.leading.set()
            return
        try:
            self.revision = await self.kv.update(KEY, self.owner.encode(), last=self.revision)
        except KeyWrongLastSequenceError:
            log.warning("writer lease lost", extra={"owner": self.owner})
            await self._lose()

    async def _lose(self) -> None:
        if self.revision is not None:
            self.revision = None
            self.leading.clear()
            await self.follow()

    async def release(self) -> None:
        """Give the lease up at shutdown so that another replica takes over at once."""
        if self.revision is not None:
            with contextlib.suppress(Exception):
                await self.kv.delete(KEY, last=self.revision)
            self.revision = None
            self.leading.clear()
