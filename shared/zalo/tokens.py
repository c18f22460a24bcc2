"""The OA token pair, shared by all replicas, refreshed by exactly one of them at a time.

Zalo's refresh token is single-use: two replicas refreshing with the same one would leave one of
them (and possibly the stored pair) dead. So the pair lives in one JetStream key-value entry and
a refresh is a lease taken by compare-and-set on the entry's revision: the winner calls Zalo and
writes the new pair; losers wait for the entry to change and use the winner's token.
"""

import asyncio
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Protocol

from nats.js.errors import KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue
from pydantic import BaseModel

from shared.zalo.errors import TokenUnavailable
from shared.zalo.models import TokenPair

log = logging.getLogger(__name__)

TOKEN_KEY = "oa"
_POLL_START, _POLL_MAX = 0.01, 0.25


class TokenState(BaseModel):
    """The stored entry: the current pair and, while a refresh runs, who holds the lease."""

    pair: TokenPair | None = None
    lease_owner: str | None = None
    lease_until: float = 0.0


class TokenStore(Protocol):
    """A single entry with compare-and-set; revision 0 means "absent"."""

    async def load(self) -> tuple[TokenState | None, int]: ...

    async def swap(self, state: TokenState, revision: int) -> int | None:
        """Write if the entry is still at `revision`; the new revision, or None if it moved."""
        ...


class MemoryTokenStore:
    """In-process store for unit use without NATS (one process only)."""

    def __init__(self) -> None:
        self._state: TokenState | None = None
        self._revision = 0

    async def load(self) -> tuple[TokenState | None, int]:
        return self._state, self._revision

    async def swap(self, state: TokenState, revision: int) -> int | None:
        if revision != self._revision:
            return None
        self._state, self._revision = state, self._revision + 1
        return self._revision


class KvTokenStore:
    """The entry in a JetStream key-value bucket (history 1), CAS through `last=revision`."""

    def __init__(self, kv: KeyValue, key: str = TOKEN_KEY) -> None:
        self._kv, self._key = kv, key

    async def load(self) -> tuple[TokenState | None, int]:
        try:
            entry = await self._kv.get(self._key)
        except KeyNotFoundError:
            return None, 0
        if not entry.value:
            return None, entry.revision or 0
        return TokenState.model_validate_json(entry.value), entry.revision or 0

    async def swap(self, state: TokenState, revision: int) -> int | None:
        value = state.model_dump_json().encode()
        try:
            if revision == 0:
                return await self._kv.create(self._key, value)
            return await self._kv.update(self._key, value, last=revision)
        except KeyWrongLastSequenceError:
            return None


Refresher = Callable[[str], Awaitable[TokenPair]]


class TokenKeeper:
    """Hands out a fresh access token; refreshes it single-flight across all replicas."""

    def __init__(
        self,
        store: TokenStore,
        refresher: Refresher,
        *,
        margin: float,
        lease: float,
        seed: TokenPair | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self._store, self._refresher, self._seed = store, refresher, seed
        self._margin, self._lease, self._clock = margin, lease, clock
        self._owner = uuid.uuid4().hex
        self._cached: TokenPair | None = None
        self._lock = asyncio.Lock()

    async def access_token(self) -> str:
        """A token with more than `margin` seconds left, refreshing first if needed."""
        cached = self._cached
        if cached is not None and cached.is_fresh(self._clock(), self._margin):
            return cached.access_token
        return (await self._current(stale=None)).access_token

    async def refresh(self, stale: str | None) -> TokenPair:
        """Replace `stale` (a token Zalo refused; None = unconditionally) and return the pair."""
        if stale is None:
            stale = (await self._current(stale=None)).access_token
        return await self._current(stale=stale, force=True)

    async def store(self, pair: TokenPair) -> None:
        """Replace the stored pair (bootstrap after the OAuth code flow)."""
        while True:
            _, revision = await self._store.load()
            if await self._store.swap(TokenState(pair=pair), revision) is not None:
                self._cached = pair
                return

    async def _current(self, *, stale: str | None, force: bool = False) -> TokenPair:
        async with self._lock:
            deadline = self._clock() + 2 * self._lease
            poll = _POLL_START
            while True:
                state, revision = await self._store.load()
                if state is None or state.pair is None:
                    state, revision = await self._seed_store(revision)
                pair = state.pair
                assert pair is not None
                now = self._clock()
                usable = pair.access_token != stale if force else pair.is_fresh(now, self._margin)
                if usable:
                    self._cached = pair
                    return pair
                if state.lease_until > now and state.lease_owner != self._owner:
                    if now > deadline:
                        raise TokenUnavailable(0, "token refresh by another replica timed out")
                    await asyncio.sleep(poll)  # the lease holder writes the new pair soon
                    poll = min(poll * 2, _POLL_MAX)
                    continue
                leased = state.model_copy(
                    update={"lease_owner": self._owner, "lease_until": now + self._lease}
                )
                lease_revision = await self._store.swap(leased, revision)
                if lease_revision is None:
                    continue  # another replica moved first: re-read its state
                return await self._refresh_under_lease(pair, leased, lease_revision)

    async def _refresh_under_lease(
        self, pair: TokenPair, leased: TokenState, revision: int
    ) -> TokenPair:
        try:
            fresh = await self._refresher(pair.refresh_token)
        except BaseException:
            released = leased.model_copy(update={"lease_owner": None, "lease_until": 0.0})
            await self._store.swap(released, revision)
            raise
        if await self._store.swap(TokenState(pair=fresh), revision) is None:
            # The lease ran out and the entry moved; our pair is the only live one, so it wins.
            log.warning("token lease expired before the new pair was stored; overwriting")
            await self.store(fresh)
        log.info("zalo access token refreshed", extra={"expires_at": fresh.expires_at})
        self._cached = fresh
        return fresh

    async def _seed_store(self, revision: int) -> tuple[TokenState, int]:
        if self._seed is None:
            raise TokenUnavailable(0, "no Zalo token pair stored and none configured")
        seeded = TokenState(pair=self._seed)
        new_revision = await self._store.swap(seeded, revision)
        if new_revision is None:
            state, revision = await self._store.load()
            if state is None or state.pair is None:
                raise TokenUnavailable(0, "token store changed without a token pair")
            return state, revision
        log.info("zalo token pair seeded from configuration")
        return seeded, new_revision
