"""Client-side rate limiting per operation family, shared by every replica through NATS.

The algorithm is GCRA (a token bucket stated as one "theoretical arrival time" per family):
each call reserves the next slot by advancing the stored time by `1 / rate` with a
compare-and-set on a JetStream key-value entry, then sleeps until its slot. One round trip per
call, no lock holder that can die, and the limit holds for all processes together. Replicas
must share a clock (NTP); a skew of `s` seconds lets one replica run up to `s * rate` early.
"""

import asyncio
import time
from collections.abc import Callable
from typing import Protocol

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class RateStore(Protocol):
    async def reserve(self, family: str, interval: float, tolerance: float, now: float) -> float:
        """Reserve the next slot; returns the time (epoch seconds) the caller may go."""
        ...


def _next_slot(stored: float, interval: float, tolerance: float, now: float) -> tuple[float, float]:
    """GCRA step: (allowed_at, new stored arrival time)."""
    arrival = max(stored, now)
    return max(arrival - tolerance, now), arrival + interval


class MemoryRateStore:
    """In-process state for unit use without NATS (one process only)."""

    def __init__(self) -> None:
        self._arrivals: dict[str, float] = {}

    async def reserve(self, family: str, interval: float, tolerance: float, now: float) -> float:
        allowed, self._arrivals[family] = _next_slot(
            self._arrivals.get(family, 0.0), interval, tolerance, now
        )
        return allowed


class KvRateStore:
    """The arrival time per family in a key-value bucket, advanced by compare-and-set."""

    def __init__(self, kv: KeyValue, clock: Callable[[], float] = time.time) -> None:
        self._kv, self._clock = kv, clock

    async def reserve(self, family: str, interval: float, tolerance: float, now: float) -> float:
        key = f"rate.{family}"
        while True:
            try:
                entry = await self._kv.get(key)
                stored, revision = float(entry.value or b"0"), entry.revision or 0
            except KeyNotFoundError:
                stored, revision = 0.0, 0
            allowed, arrival = _next_slot(stored, interval, tolerance, self._clock())
            value = repr(arrival).encode()
            try:
                if revision == 0:
                    await self._kv.create(key, value)
                else:
                    await self._kv.update(key, value, last=revision)
            except KeyWrongLastSequenceError:
                continue  # another caller took this slot; take the next one
            return allowed


class RateLimiter:
    """Waits until a call of the given family fits under its configured rate."""

    def __init__(
        self,
        store: RateStore,
        limits: dict[str, float],
        burst: dict[str, float] | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._limits, self._burst, self._clock = store, limits, burst or {}, clock

    async def acquire(self, family: str) -> float:
        """Block until the next slot of `family`; returns the seconds waited (0 if unlimited)."""
        rate = self._limits.get(family)
        if not rate or rate <= 0:
            return 0.0
        interval = 1.0 / rate
        tolerance = max(self._burst.get(family, 1.0) - 1.0, 0.0) * interval
        allowed = await self._store.reserve(family, interval, tolerance, self._clock())
        delay = allowed - self._clock()
        if delay > 0:
            await asyncio.sleep(delay)
        return max(delay, 0.0)
