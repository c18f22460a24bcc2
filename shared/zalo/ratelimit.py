"""Client-side rate limiting per operation family, shared by every replica through NATS.

The algorithm is GCRA (a token bucket stated as one "theoretical arrival time" per family,
the TAT). A process reserves a *block* of consecutive slots with one compare-and-set on a
JetStream key-value entry, advancing the stored TAT by `count / rate`, and hands the slots out
to its own callers, each of whom sleeps until its slot. The block holds `block` seconds' worth
of slots (at least one): at 40 calls/s that is 2 slots, at 2,000/s 100, so the key-value round
trip (about a millisecond) and the contention between replicas are paid once per block, not per
call, and the limit still holds for all processes together: every call goes at or after the time
of a slot no other process holds.

A slot that is more than `STALE_AFTER` seconds in the past when a caller reaches it (the process
was idle, or its event loop stalled) is skipped, not used late: late slots would bunch calls
together. Skipped slots, and the unused rest of a block when its process dies, are simply lost,
which only lowers the achieved rate (the safe direction); at most `block` seconds of capacity.
Replicas must share a clock (NTP); a skew of `s` seconds lets one replica run up to `s * rate`
early. A family with no configured limit (or a limit of 0 or infinity) costs one dict lookup.
"""

import asyncio
import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue

STALE_AFTER = 0.005  # seconds a slot may lie in the past and still be used


@dataclass(frozen=True)
class SlotBlock:
    """`count` slots starting at theoretical arrival `arrival`, reserved at `reserved_at`."""

    arrival: float
    interval: float
    tolerance: float
    reserved_at: float
    count: int

    def allowed(self, index: int) -> float:
        """The time (epoch seconds) slot `index` of the block may go."""
        return max(self.arrival + index * self.interval - self.tolerance, self.reserved_at)

    def first_fresh(self, index: int, now: float) -> int:
        """The first slot at or after `index` not stale at `now` (`>= count`: none is left)."""
        horizon = now - STALE_AFTER + self.tolerance - self.arrival
        if horizon <= index * self.interval or self.allowed(index) >= now - STALE_AFTER:
            return index
        return max(index, math.ceil(horizon / self.interval - 1e-6))  # 1e-6: float noise


class RateStore(Protocol):
    async def reserve(
        self, family: str, interval: float, tolerance: float, now: float, count: int = 1
    ) -> SlotBlock:
        """Reserve the next `count` consecutive slots of `family`."""
        ...


def _next_block(
    stored: float, interval: float, tolerance: float, now: float, count: int
) -> tuple[SlotBlock, float]:
    """GCRA step for `count` slots: (the block, the new stored arrival time)."""
    arrival = max(stored, now)
    return SlotBlock(arrival, interval, tolerance, now, count), arrival + count * interval


class MemoryRateStore:
    """In-process state for unit use without NATS (one process only)."""

    def __init__(self) -> None:
        self._arrivals: dict[str, float] = {}

    async def reserve(
        self, family: str, interval: float, tolerance: float, now: float, count: int = 1
    ) -> SlotBlock:
        block, self._arrivals[family] = _next_block(
            self._arrivals.get(family, 0.0), interval, tolerance, now, count
        )
        return block


class KvRateStore:
    """The arrival time per family in a key-value bucket, advanced by compare-and-set.

    The entry this process wrote last (value and revision) is remembered, so an uncontended
    reservation is one round trip (`update` against that revision); only when another process
    moved the entry in between does it cost a `get` and a second try.
    """

    def __init__(self, kv: KeyValue, clock: Callable[[], float] = time.time) -> None:
        self._kv, self._clock = kv, clock
        self._known: dict[str, tuple[float, int]] = {}  # key -> (stored arrival, revision)

    async def reserve(
        self, family: str, interval: float, tolerance: float, now: float, count: int = 1
    ) -> SlotBlock:
        key = f"rate.{family}"
        known = self._known.pop(key, None)
        while True:
            if known is None:
                known = await self._read(key)
            stored, revision = known
            block, arrival = _next_block(stored, interval, tolerance, self._clock(), count)
            value = repr(arrival).encode()
            try:
                if revision == 0:
                    new_revision = await self._kv.create(key, value)
                else:
                    new_revision = await self._kv.update(key, value, last=revision)
            except KeyWrongLastSequenceError:
                known = None  # another process moved the entry: re-read it and take the next
                continue
            self._known[key] = (arrival, new_revision)
            return block

    async def _read(self, key: str) -> tuple[float, int]:
        try:
            entry = await self._kv.get(key)
        except KeyNotFoundError:
            return 0.0, 0
        return float(entry.value or b"0"), entry.revision or 0


class _Local:
    """The slots of one family this process holds: its current block and the next index."""

    def __init__(self) -> None:
        self.block: SlotBlock | None = None
        self.next = 0
        self.lock = asyncio.Lock()  # one reservation in flight per family

    def take(self, now: float) -> float | None:
        """The allowed time of the next fresh slot, or None when the block is used up."""
        block = self.block
        if block is None:
            return None
        index = block.first_fresh(self.next, now)
        if index >= block.count:
            self.block = None
            return None
        self.next = index + 1
        return block.allowed(index)


class RateLimiter:
    """Waits until a call of the given family fits under its configured rate.

    `block` is how many seconds' worth of slots one reservation takes (0: one slot each time).
    """

    def __init__(
        self,
        store: RateStore,
        limits: dict[str, float],
        burst: dict[str, float] | None = None,
        clock: Callable[[], float] = time.time,
        block: float = 0.0,
    ) -> None:
        self._store, self._burst, self._clock, self._block = store, burst or {}, clock, block
        self._limits = {f: r for f, r in limits.items() if r and r > 0 and not math.isinf(r)}
        self._local: dict[str, _Local] = {}

    async def acquire(self, family: str) -> float:
        """Block until the next slot of `family`; returns the seconds waited (0 if unlimited)."""
        rate = self._limits.get(family)
        if rate is None:
            return 0.0
        local = self._local.get(family)
        if local is None:
            local = self._local[family] = _Local()
        allowed = local.take(self._clock())
        if allowed is None:
            allowed = await self._reserve(family, rate, local)
        delay = allowed - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
        return max(delay, 0.0)

    async def _reserve(self, family: str, rate: float, local: _Local) -> float:
        async with local.lock:
            # Another caller may have reserved a block while this one waited for the lock.
            allowed = local.take(self._clock())
            if allowed is not None:
                return allowed
            interval = 1.0 / rate
            tolerance = max(self._burst.get(family, 1.0) - 1.0, 0.0) * interval
            count = max(1, int(rate * self._block))
            block = await self._store.reserve(family, interval, tolerance, self._clock(), count)
            # The first slot is this caller's even if the round trip made it a little stale.
            local.block, local.next = block, 1
            if count == 1:
                local.block = None
            return block.allowed(0)
