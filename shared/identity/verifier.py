"""One verification of the caller for every staff service (`app.state.staff`).

A request carries either an API token (`Authorization: Bearer byt_...`, machine clients) or a
browser session (the `binhyen_session` cookie). Both are looked up in the identity store by
their SHA-256, with the account behind a session, and become a `StaffUser` with the roles and
wards the services have always applied. A state-changing request (not GET/HEAD/OPTIONS) made
with a session must also carry its CSRF token, in the `X-CSRF-Token` header or, for an HTML
form, the `csrf_token` field; a bearer token needs none (a browser never sends one by itself).

Results are cached per credential for `IDENTITY_CACHE_SECONDS` (2 s), so a busy desk costs one
store lookup per credential every two seconds, not one per request. The identity service
announces every revocation on `identity.revoked` and each verifier drops its cache when it
hears one: a signed-out session, a deactivated person or a revoked token is refused by every
service at once, and within the cache's lifetime even if the announcement is lost.

The CSRF token of a session is HMAC-SHA256(session id, "binhyen-csrf"): only someone who holds
the session id (an HttpOnly cookie, unreadable by script) can compute it, every service can
check it without a shared key or a lookup, and it never reveals the session id.
"""

import contextlib
import hashlib
import hmac
import logging
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs

from fastapi import HTTPException, Request
from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from pydantic import ValidationError

from shared.audit import AuditLog
from shared.auth import (
    SECOND_FACTOR_ROLES,
    Role,
    StaffDirectory,
    StaffUser,
    unauthenticated,
)
from shared.errors import ServiceError
from shared.events.identity import StaffAccessRevoked
from shared.identity.store import (
    API_TOKEN_PREFIX,
    CSRF_FIELD,
    CSRF_HEADER,
    SESSION_COOKIE,
    Doc,
    IdentityStore,
    digest,
)

log = logging.getLogger(__name__)

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
FORM_TYPE = "application/x-www-form-urlencoded"
MAX_CACHE_ENTRIES = 10_000
# A session's last activity and a token's last use are written at most this often.
TOUCH_EVERY = timedelta(seconds=30)
TOKEN_USED_EVERY = timedelta(seconds=60)


def csrf_token(session_id: str) -> str:
    return hmac.new(session_id.encode(), b"binhyen-csrf", hashlib.sha256).hexdigest()


def session_principal(account: Doc, second_factor: bool) -> StaffUser:
    """What a person may do in a session: their roles, less the ones the session may not use
    yet (a temporary password to change first; admin and approver without a second factor)."""
    roles = frozenset(Role(r) for r in account.get("roles", []))
    withheld: frozenset[Role] = frozenset()
    because = None
    if account.get("password_change_required"):
        withheld, because = roles, "password_change"
    elif not second_factor and roles & SECOND_FACTOR_ROLES:
        withheld, because = roles & SECOND_FACTOR_ROLES, "second_factor"
    return StaffUser(
        id=account["_id"],
        name=account.get("name", ""),
        roles=roles - withheld,
        wards=frozenset(account.get("wards", [])),
        via="session",
        withheld=withheld,
        withheld_because=because,
    )


def token_principal(token: Doc) -> StaffUser:
    return StaffUser(
        id=f"token:{token['_id']}",
        name=token.get("name", ""),
        roles=frozenset(Role(r) for r in token.get("roles", [])) - SECOND_FACTOR_ROLES,
        wards=frozenset(token.get("wards", [])),
        via="token",
    )


@dataclass(frozen=True)
class _Entry:
    user: StaffUser | None
    fresh_until: float  # monotonic: look it up again after this
    valid_until: datetime | None  # wall clock: the session's idle or absolute end


class StaffVerifier:
    """Resolves the caller of a request (see the module docstring)."""

    def __init__(
        self,
        store: IdentityStore | None,
        static: StaffDirectory | None = None,
        *,
        audit: AuditLog | None = None,
        cache_seconds: float = 2.0,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        ticker: Callable[[], float] = time.monotonic,
        serves_password_change: bool = False,
    ) -> None:
        self.store, self.static, self.audit = store, static or StaffDirectory({}), audit
        self.cache_seconds, self.clock = cache_seconds, clock
        self.ticker = ticker  # monotonic seconds, for the cache's freshness
        # Only the identity service answers a person whose temporary password must be
        # changed first (to let them change it); every other service refuses them.
        self.serves_password_change = serves_password_change
        self._cache: dict[str, _Entry] = {}
        self.revocations_heard = 0

    @classmethod
    def static_only(cls, settings: Any) -> "StaffVerifier":
        """Until the lifespan has connected to the store: the static tokens alone (tests that
        drive an app without its lifespan see nothing else)."""
        static = StaffDirectory.from_settings(settings.staff_tokens_file, settings.staff_tokens)
        return cls(None, static)

    # --- requests ---------------------------------------------------------------------------

    async def authenticate(self, request: Request) -> StaffUser:
        header = request.headers.get("authorization")
        if header is not None:
            scheme, _, credential = header.partition(" ")
            credential = credential.strip()
            if scheme.lower() != "bearer" or not credential:
                raise unauthenticated()
            user = await self.from_token(credential)
        else:
            session_id = request.cookies.get(SESSION_COOKIE)
            if not session_id:
                raise unauthenticated()
            user = await self.from_session(session_id)
            if user is not None and request.method not in SAFE_METHODS:
                await check_csrf(request, session_id)
        if user is None:
            raise unauthenticated()
        if user.withheld_because == "password_change" and not self.serves_password_change:
            raise ServiceError(
                "Cần đổi mật khẩu tạm trước khi làm việc.", 403, "password_change_required"
            )
        return user

    async def still_valid(self, request: Request) -> bool:
        """For long-lived answers (the live case stream): is the request's credential still
        good? Checked from the cache, so as cheap as a request."""
        try:
            await self.authenticate(request)
        except (HTTPException, ServiceError):
            return False
        return True

    # --- credentials ------------------------------------------------------------------------

    async def from_token(self, token: str) -> StaffUser | None:
        if not token.startswith(API_TOKEN_PREFIX) or self.store is None:
            return self.static.authenticate(token)
        key = "t:" + digest(token)
        cached = self._cached(key)
        if cached is not None:
            return cached.user
        doc = await self.store.token_by_digest(key[2:])
        user = None
        if doc is not None and doc.get("revoked_at") is None:
            user = token_principal(doc)
            now = self.clock()
            last = doc.get("last_used_at")
            if last is None or now - last >= TOKEN_USED_EVERY:
                await self.store.token_used(doc["_id"], now)
        self._remember(key, user, None)
        return user

    async def from_session(self, session_id: str) -> StaffUser | None:
        if self.store is None or len(session_id) > 200:
            return None
        key = "s:" + digest(session_id)
        cached = self._cached(key)
        if cached is not None:
            return cached.user
        user, valid_until = await self._load_session(key[2:])
        self._remember(key, user, valid_until)
        return user

    async def _load_session(self, session_digest: str) -> tuple[StaffUser | None, datetime | None]:
        assert self.store is not None
        session = await self.store.session(session_digest)
        if session is None:
            return None, None
        now = self.clock()
        idle = timedelta(seconds=session["idle_seconds"])
        valid_until = min(session["expires_at"], session["last_seen_at"] + idle)
        if now >= valid_until:
            await self.store.end_session(session_digest)
            return None, None
        account = await self.store.account(session["person_id"])
        if account is None or not account.get("active", False):
            return None, None
        if now - session["last_seen_at"] >= min(TOUCH_EVERY, idle / 4):
            await self.store.touch_session(session_digest, now)
            valid_until = min(session["expires_at"], now + idle)
        return session_principal(account, bool(session.get("second_factor"))), valid_until

    # --- the cache --------------------------------------------------------------------------

    def _cached(self, key: str) -> _Entry | None:
        entry = self._cache.get(key)
        if entry is None or self.ticker() >= entry.fresh_until:
            return None
        if entry.valid_until is not None and self.clock() >= entry.valid_until:
            return None
        return entry

    def _remember(self, key: str, user: StaffUser | None, valid_until: datetime | None) -> None:
        if self.cache_seconds <= 0:
            return
        if len(self._cache) >= MAX_CACHE_ENTRIES:
            self._cache.clear()  # guessing floods it with misses; forgetting is always safe
        self._cache[key] = _Entry(user, self.ticker() + self.cache_seconds, valid_until)

    def forget(self) -> None:
        """Drop everything cached: the next request of anyone is checked against the store."""
        self._cache.clear()

    async def on_revoked(self, msg: Msg) -> None:
        """`identity.revoked`: drop the cache (a malformed message too: forgetting is safe)."""
        self.forget()
        self.revocations_heard += 1
        try:
            event = StaffAccessRevoked.model_validate_json(msg.data)
        except ValidationError:
            log.warning("malformed revocation event; cache dropped anyway")
            return
        log.info(
            "staff access revoked",
            extra={
                "reason": event.reason,
                "person_id": event.person_id,
                "token_id": event.token_id,
            },
        )


async def check_csrf(request: Request, session_id: str) -> None:
    """A state-changing request made with a session must prove it comes from our own page."""
    expected = csrf_token(session_id)
    offered = request.headers.get(CSRF_HEADER)
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if offered is None and content_type == FORM_TYPE:
        form = parse_qs((await request.body()).decode("utf-8", errors="replace"))
        offered = next(iter(form.get(CSRF_FIELD, [])), None)
    if offered is None or not hmac.compare_digest(offered.encode(), expected.encode()):
        raise ServiceError(
            "Thiếu hoặc sai mã chống giả mạo yêu cầu (CSRF): tải lại trang rồi thử lại.",
            403,
            "csrf",
        )


@asynccontextmanager
async def staff_verifier(
    settings: Any, service: str, *, serves_password_change: bool = False
) -> AsyncIterator[StaffVerifier]:
    """The verifier of a service, for its lifespan: the identity store in the service's
    database, the static tokens of its settings, and a subscription to `identity.revoked`.
    `settings` is a `ServiceSettings` with `StaffAuthSettings`."""
    from shared.jetstream import connect
    from shared.mongo import connect_mongo
    from shared.subjects import IDENTITY_REVOKED

    mongo: Any = connect_mongo(settings.mongodb_url)
    try:
        db = mongo[settings.mongodb_database]
        verifier = StaffVerifier(
            IdentityStore(db),
            StaffDirectory.from_settings(settings.staff_tokens_file, settings.staff_tokens),
            audit=AuditLog(db, service),
            cache_seconds=settings.identity_cache_seconds,
            serves_password_change=serves_password_change,
        )
        nc = await connect(settings.nats_url, name=f"{service}-identity")
        try:
            subscription = await nc.subscribe(IDENTITY_REVOKED, cb=verifier.on_revoked)
            await nc.flush()  # subscribed at the server before the service reports ready
            try:
                yield verifier
            finally:
                with contextlib.suppress(NatsError):
                    await subscription.unsubscribe()
        finally:
            await nc.close()
    finally:
        await mongo.close()
