"""Failed sign-ins, counted per account name and per address, in the identity store (so every
replica of the identity service counts the same failures).

A name is counted whether or not an account has it, so a lockout says nothing about which names
exist; it is kept as a keyed hash (a password typed into the name field must not be stored as
written). A locked name or address is refused with the same message, before any password is
checked, until the lock ends; a successful sign-in clears the name's failures (not the
address's: one good password must not reset a guessing run from the same place).
"""

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta

from shared.identity.store import IdentityStore


@dataclass(frozen=True)
class Limits:
    account_failures: int
    address_failures: int
    window: timedelta
    lockout: timedelta


class Throttle:
    def __init__(self, store: IdentityStore, limits: Limits, keyed: Callable[[str], str]) -> None:
        self.store, self.limits, self.keyed = store, limits, keyed

    def _keys(self, username: str, address: str | None) -> list[tuple[str, int]]:
        keys = [(f"account:{self.keyed(username)}", self.limits.account_failures)]
        if address:
            keys.append((f"address:{address}", self.limits.address_failures))
        return keys

    async def locked_until(
        self, username: str, address: str | None, now: datetime
    ) -> datetime | None:
        """The end of the lock on this name or address, if either is locked now."""
        ends = []
        for key, _ in self._keys(username, address):
            entry = await self.store.throttle_entry(key)
            until = entry.get("locked_until") if entry else None
            if until is not None and until > now:
                ends.append(until)
        return max(ends, default=None)

    async def failed(self, username: str, address: str | None, now: datetime) -> datetime | None:
        """Count a failure; the end of the lock if this failure locked the name or address."""
        locked = None
        for key, limit in self._keys(username, address):
            entry = await self.store.record_failure(key, now, self.limits.window)
            if entry["failures"] >= limit:
                locked = now + self.limits.lockout
                await self.store.lock(key, locked)
        return locked

    async def succeeded(self, username: str) -> None:
        await self.store.clear_failures(f"account:{self.keyed(username)}")

    async def sweep(self, now: datetime) -> int:
        return await self.store.delete_stale_throttle(
            now - self.limits.window - self.limits.lockout
        )
