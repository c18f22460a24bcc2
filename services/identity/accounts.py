"""What the identity service does: sign-in and sign-out, a person's own password and second
factor, accounts and API tokens kept by admins. Every change is audited; every change that ends
or narrows access is announced on `identity.revoked`, so every service's verifier forgets what
it cached.

Sign-in answers one message for every refusal (no such name, wrong password, wrong or missing
code, deactivated account) and does the same work for each: one Argon2id verification (against
a dummy hash when the name has no account), one throttle write, one audit entry.
"""

import asyncio
import logging
import re
import secrets
import unicodedata
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from services.identity import second_factor as totp
from services.identity.passwords import Hasher, WeakPassword, check_strength
from services.identity.settings import IdentitySettings
from services.identity.throttle import Limits, Throttle
from shared.audit import AuditLog, Origin
from shared.auth import SECOND_FACTOR_ROLES, Role, StaffUser
from shared.errors import ServiceError
from shared.events.identity import RevocationReason, StaffAccessRevoked
from shared.identity.store import (
    API_TOKEN_PREFIX,
    Doc,
    IdentityStore,
    digest,
    new_id,
    new_secret,
)
from shared.identity.verifier import StaffVerifier, csrf_token

log = logging.getLogger(__name__)

REFUSED = "Sai tên đăng nhập, mật khẩu hoặc mã xác thực."
LOCKED = (
    "Tạm khoá đăng nhập vì nhập sai nhiều lần. Thử lại sau {minutes} phút, hoặc liên hệ quản "
    "trị viên."
)
USERNAME = re.compile(r"^[a-z0-9][a-z0-9._-]{2,63}$")
_TEMPORARY_ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnpqrstuvwxyz23456789"

Publish = Callable[[StaffAccessRevoked], Awaitable[None]]


class IdentityError(ServiceError):
    """A refusal of the identity service; a lockout says when to try again."""

    def __init__(
        self,
        detail: str,
        status: int = 400,
        error: str | None = None,
        retry_after: int | None = None,
    ) -> None:
        super().__init__(detail, status, error)
        self.retry_after = retry_after


def normalize_username(username: str) -> str:
    return unicodedata.normalize("NFKC", username).strip().lower()


def temporary_password() -> str:
    """20 characters (~116 bits) in groups of five, for an admin to hand over once."""
    raw = "".join(secrets.choice(_TEMPORARY_ALPHABET) for _ in range(20))
    return "-".join(raw[i : i + 5] for i in range(0, 20, 5))


@dataclass(frozen=True)
class SignedIn:
    session_id: str
    csrf_token: str
    account: Doc
    expires_at: datetime
    second_factor: bool


@dataclass(frozen=True)
class Enrolment:
    secret: str
    uri: str
    svg: str


def public_account(doc: Doc) -> dict[str, Any]:
    """An account as the API shows it: never a hash, a secret or a recovery code."""
    return {
        "id": doc["_id"],
        "username": doc["username"],
        "name": doc["name"],
        "roles": sorted(doc.get("roles", [])),
        "wards": sorted(doc.get("wards", [])),
        "active": bool(doc.get("active")),
        "second_factor": doc.get("totp") is not None,
        "second_factor_required": bool(set(doc.get("roles", [])) & SECOND_FACTOR_ROLES),
        "password_change_required": bool(doc.get("password_change_required")),
        "recovery_codes_left": len(doc.get("recovery_codes", [])),
        "created_at": doc.get("created_at"),
        "updated_at": doc.get("updated_at"),
        "last_sign_in_at": doc.get("last_sign_in_at"),
    }


def public_token(doc: Doc) -> dict[str, Any]:
    return {
        "id": doc["_id"],
        "name": doc["name"],
        "roles": sorted(doc.get("roles", [])),
        "wards": sorted(doc.get("wards", [])),
        "created_at": doc["created_at"],
        "created_by": doc.get("created_by"),
        "last_used_at": doc.get("last_used_at"),
        "revoked_at": doc.get("revoked_at"),
        "revoked_by": doc.get("revoked_by"),
    }


class Identity:
    def __init__(
        self,
        settings: IdentitySettings,
        store: IdentityStore,
        audit: AuditLog,
        publish: Publish,
        verifier: StaffVerifier | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self.settings, self.store, self.audit = settings, store, audit
        self._publish, self.verifier, self.clock = publish, verifier, clock
        self.hasher = Hasher(
            settings.argon2_time_cost, settings.argon2_memory_kib, settings.argon2_parallelism
        )
        self.sealer = totp.Sealer(settings.identity_key, settings.identity_key_previous)
        limits = Limits(
            account_failures=settings.signin_max_failures,
            address_failures=settings.signin_address_max_failures,
            window=timedelta(minutes=settings.signin_window_minutes),
            lockout=timedelta(minutes=settings.signin_lockout_minutes),
        )
        self.throttle = Throttle(store, limits, self.sealer.code_digest)
        self.idle = timedelta(minutes=settings.session_idle_minutes)
        self.absolute = timedelta(hours=settings.session_absolute_hours)

    # --- helpers ----------------------------------------------------------------------------

    async def _verify_password(self, stored: str | None, password: str) -> bool:
        # Argon2id takes tens of milliseconds and 64 MiB: off the event loop.
        return await asyncio.to_thread(self.hasher.verify, stored, password)

    async def _hash(self, password: str) -> str:
        return await asyncio.to_thread(self.hasher.hash, password)

    async def revoked(
        self, reason: RevocationReason, person_id: str | None = None, token_id: str | None = None
    ) -> None:
        """Announce that cached access must be checked again (this service's cache at once)."""
        if self.verifier is not None:
            self.verifier.forget()
        now = self.clock()
        event = StaffAccessRevoked(
            event_id=new_id("rev"),
            occurred_at=now,
            reason=reason,
            person_id=person_id,
            token_id=token_id,
        )
        try:
            await self._publish(event)
        except Exception as exc:  # the caches still expire within IDENTITY_CACHE_SECONDS
            log.warning("revocation not announced", extra={"error": type(exc).__name__})

    def _check_password(self, password: str, username: str, name: str) -> None:
        try:
            check_strength(
                password, self.settings.password_min_length, username=username, name=name
            )
        except WeakPassword as exc:
            raise IdentityError(str(exc), 422, "weak_password") from exc

    async def account(self, person_id: str) -> Doc:
        account = await self.store.account(person_id)
        if account is None:
            raise IdentityError("Không tìm thấy tài khoản.", 404)
        return account

    # --- sign-in and sign-out ---------------------------------------------------------------

    async def sign_in(
        self, username: str, password: str, code: str | None, origin: Origin
    ) -> SignedIn:
        now = self.clock()
        name = normalize_username(username)
        locked = await self.throttle.locked_until(name, origin.address, now)
        if locked is not None:
            await self.audit.record("sign_in_refused_locked", origin, outcome="refused")
            raise self._locked(locked, now)
        account = await self.store.account_by_username(name) if USERNAME.match(name) else None
        right = await self._verify_password(account["password_hash"] if account else None, password)
        reason = "unknown_name" if account is None else "password" if not right else None
        if account is not None and right and not account.get("active"):
            reason = "inactive"
        used_code = False
        if reason is None and account is not None and account.get("totp") is not None:
            used_code = await self._second_factor_ok(account, code or "", origin)
            reason = None if used_code else "code"
        if reason is not None or account is None:
            until = await self.throttle.failed(name, origin.address, now)
            actor = account["_id"] if account else None
            await self.audit.record(
                "sign_in_failed", origin, actor_id=actor, outcome="refused", reason=reason
            )
            if until is not None:
                await self.audit.record("sign_in_locked", origin, actor_id=actor, outcome="locked")
                raise self._locked(until, now)
            raise IdentityError(REFUSED, 401, "sign_in_refused")
        await self.throttle.succeeded(name)
        changes: Doc = {"last_sign_in_at": now}
        if self.hasher.needs_rehash(account["password_hash"]):
            changes["password_hash"] = await self._hash(password)
        await self.store.update_account(account["_id"], changes)
        session_id = new_secret()
        expires_at = now + self.absolute
        await self.store.insert_session(
            {
                "_id": digest(session_id),
                "person_id": account["_id"],
                "created_at": now,
                "last_seen_at": now,
                "idle_seconds": self.idle.total_seconds(),
                "expires_at": expires_at,
                "second_factor": used_code,
                "address": origin.address,
                "user_agent": origin.user_agent,
            }
        )
        await self.audit.record(
            "signed_in",
            origin,
            actor_id=account["_id"],
            second_factor=used_code,
            rehashed="password_hash" in changes,
        )
        return SignedIn(session_id, csrf_token(session_id), account, expires_at, used_code)

    def _locked(self, until: datetime, now: datetime) -> IdentityError:
        seconds = max(1, int((until - now).total_seconds()))
        minutes = max(1, -(-seconds // 60))
        return IdentityError(
            LOCKED.format(minutes=minutes), 429, "sign_in_locked", retry_after=seconds
        )

    async def _second_factor_ok(self, account: Doc, code: str, origin: Origin) -> bool:
        """A current TOTP code not used before, or one unused recovery code (then spent)."""
        if totp.looks_like_recovery_code(code):
            for code_digest in self.sealer.code_digests(code):
                spent = await self.store.accounts.update_one(
                    {"_id": account["_id"], "recovery_codes": code_digest},
                    {"$pull": {"recovery_codes": code_digest}},
                )
                if spent.modified_count:
                    left = len(account.get("recovery_codes", [])) - 1
                    await self.audit.record(
                        "recovery_code_used", origin, actor_id=account["_id"], left=left
                    )
                    return True
            return False
        secret = self.sealer.open(account["totp"]["secret"])
        if secret is None:
            log.error(
                "a TOTP secret does not open with IDENTITY_KEY", extra={"person": account["_id"]}
            )
            return False
        step = totp.matching_step(secret, code)
        if step is None or step <= account["totp"].get("last_step", -1):
            return False
        changes: Doc = {"totp.last_step": step}
        if not self.sealer.is_current(account["totp"]["secret"]):  # IDENTITY_KEY rotated
            changes["totp.secret"] = self.sealer.seal(secret)
        result = await self.store.accounts.update_one(
            {"_id": account["_id"], "totp.last_step": account["totp"].get("last_step", -1)},
            {"$set": changes},
        )
        return result.modified_count == 1  # a concurrent use of the same code loses

    async def sign_out(self, user: StaffUser, origin: Origin) -> int:
        """End every session of the person: a sign-out anywhere signs out everywhere (a session
        left open on a shared desk ends too)."""
        ended = await self.store.end_sessions_of(user.id)
        await self.revoked("signed_out", person_id=user.id)
        await self.audit.record("signed_out", origin, actor=user, sessions=ended)
        return ended

    # --- a person's own account -------------------------------------------------------------

    async def _confirm_password(self, user: StaffUser, password: str, origin: Origin) -> Doc:
        """The caller's account, after checking the password again (throttled like a sign-in)."""
        account = await self.account(user.id)
        now = self.clock()
        if await self.throttle.locked_until(account["username"], origin.address, now):
            raise IdentityError(REFUSED, 403, "sign_in_locked")
        if not await self._verify_password(account["password_hash"], password):
            await self.throttle.failed(account["username"], origin.address, now)
            await self.audit.record("password_check_failed", origin, actor=user, outcome="refused")
            raise IdentityError("Mật khẩu hiện tại không đúng.", 403, "wrong_password")
        return account

    async def change_password(
        self, user: StaffUser, session_digest: str | None, current: str, new: str, origin: Origin
    ) -> None:
        account = await self._confirm_password(user, current, origin)
        self._check_password(new, account["username"], account["name"])
        if await self._verify_password(account["password_hash"], new):
            raise IdentityError("Mật khẩu mới phải khác mật khẩu cũ.", 422, "weak_password")
        await self.store.update_account(
            user.id,
            {
                "password_hash": await self._hash(new),
                "password_change_required": False,
                "password_changed_at": self.clock(),
            },
        )
        ended = await self.store.end_sessions_of(user.id, keep=session_digest)
        await self.revoked("password_changed", person_id=user.id)
        await self.audit.record("password_changed", origin, actor=user, other_sessions_ended=ended)

    async def start_enrolment(self, user: StaffUser, password: str, origin: Origin) -> Enrolment:
        account = await self._confirm_password(user, password, origin)
        if account.get("totp") is not None:
            raise IdentityError("Xác thực hai bước đã bật; tắt trước khi đăng ký lại.", 409)
        secret = totp.new_secret()
        await self.store.update_account(
            user.id, {"totp_pending": {"secret": self.sealer.seal(secret), "at": self.clock()}}
        )
        await self.audit.record("second_factor_enrolment_started", origin, actor=user)
        uri = totp.provisioning_uri(secret, account["username"], self.settings.totp_issuer)
        return Enrolment(secret, uri, totp.qr_svg(uri))

    async def confirm_enrolment(
        self, user: StaffUser, session_digest: str | None, code: str, origin: Origin
    ) -> list[str]:
        """Turn TOTP on with a first code; the recovery codes, shown this once. The session that
        confirmed counts as signed in with the second factor from now on."""
        account = await self.account(user.id)
        pending = account.get("totp_pending")
        secret = self.sealer.open(pending["secret"]) if pending else None
        if account.get("totp") is not None or pending is None or secret is None:
            raise IdentityError("Chưa bắt đầu đăng ký xác thực hai bước.", 409)
        step = totp.matching_step(secret, code)
        if step is None:
            await self.audit.record(
                "second_factor_enrolment_failed", origin, actor=user, outcome="refused"
            )
            raise IdentityError("Mã xác thực không đúng.", 422, "wrong_code")
        codes = totp.new_recovery_codes()
        await self.store.update_account(
            user.id,
            {
                "totp": {
                    "secret": pending["secret"],
                    "enabled_at": self.clock(),
                    "last_step": step,
                },
                "recovery_codes": [self.sealer.code_digest(c) for c in codes],
            },
            unset=("totp_pending",),
        )
        if session_digest is not None:
            await self.store.update_session(session_digest, {"second_factor": True})
        await self.revoked("second_factor_changed", person_id=user.id)
        await self.audit.record("second_factor_enabled", origin, actor=user)
        return codes

    async def disable_second_factor(
        self, user: StaffUser, password: str, code: str, origin: Origin
    ) -> None:
        account = await self._confirm_password(user, password, origin)
        if set(account.get("roles", [])) & SECOND_FACTOR_ROLES:
            raise IdentityError("Vai trò của bạn bắt buộc xác thực hai bước.", 409)
        if account.get("totp") is None:
            raise IdentityError("Xác thực hai bước chưa bật.", 409)
        if not await self._second_factor_ok(account, code, origin):
            raise IdentityError("Mã xác thực không đúng.", 422, "wrong_code")
        await self.store.update_account(
            user.id, {"updated_at": self.clock()}, unset=("totp", "recovery_codes")
        )
        await self.store.sessions.update_many(
            {"person_id": user.id}, {"$set": {"second_factor": False}}
        )
        await self.revoked("second_factor_changed", person_id=user.id)
        await self.audit.record("second_factor_disabled", origin, actor=user)

    async def renew_recovery_codes(
        self, user: StaffUser, password: str, code: str, origin: Origin
    ) -> list[str]:
        account = await self._confirm_password(user, password, origin)
        if account.get("totp") is None:
            raise IdentityError("Xác thực hai bước chưa bật.", 409)
        if not await self._second_factor_ok(account, code, origin):
            raise IdentityError("Mã xác thực không đúng.", 422, "wrong_code")
        codes = totp.new_recovery_codes()
        await self.store.update_account(
            user.id, {"recovery_codes": [self.sealer.code_digest(c) for c in codes]}
        )
        await self.audit.record("recovery_codes_renewed", origin, actor=user)
        return codes

    # --- accounts, kept by admins -----------------------------------------------------------

    async def create_account(
        self,
        actor: StaffUser | None,
        username: str,
        name: str,
        roles: list[Role],
        wards: list[str],
        origin: Origin,
        password: str | None = None,
    ) -> tuple[Doc, str | None]:
        """A new account; with no `password`, a temporary one (returned, shown once) that must
        be changed at the first sign-in."""
        name_ = normalize_username(username)
        if not USERNAME.match(name_):
            raise IdentityError(
                "Tên đăng nhập: 3–64 ký tự a-z, 0-9, dấu chấm, gạch dưới, gạch ngang.", 422
            )
        temporary = None if password is not None else temporary_password()
        chosen = password if password is not None else temporary
        assert chosen is not None
        if password is not None:
            self._check_password(password, name_, name)
        if await self.store.account_by_username(name_) is not None:
            raise IdentityError("Tên đăng nhập đã có.", 409)
        now = self.clock()
        doc: Doc = {
            "_id": new_id("p"),
            "username": name_,
            "name": name,
            "roles": sorted({r.value for r in roles}),
            "wards": sorted(set(wards)),
            "active": True,
            "password_hash": await self._hash(chosen),
            "password_change_required": temporary is not None,
            "password_changed_at": now,
            "totp": None,
            "recovery_codes": [],
            "created_at": now,
            "created_by": actor.id if actor else "cli",
            "updated_at": now,
        }
        await self.store.insert_account(doc)
        await self.audit.record(
            "account_created",
            origin,
            actor=actor,
            actor_id=None if actor else "cli",
            target=doc["_id"],
            roles=doc["roles"],
            wards=doc["wards"],
        )
        return doc, temporary

    async def update_account(
        self,
        actor: StaffUser,
        person_id: str,
        origin: Origin,
        name: str | None = None,
        roles: list[Role] | None = None,
        wards: list[str] | None = None,
    ) -> Doc:
        before = await self.account(person_id)
        changes: Doc = {"updated_at": self.clock(), "updated_by": actor.id}
        if name is not None:
            changes["name"] = name
        if roles is not None:
            changes["roles"] = sorted({r.value for r in roles})
            if person_id == actor.id and Role.ADMIN.value not in changes["roles"]:
                raise IdentityError("Không tự bỏ vai trò quản trị của mình.", 409)
        if wards is not None:
            changes["wards"] = sorted(set(wards))
        after = await self.store.update_account(person_id, changes)
        assert after is not None
        await self.revoked("account_changed", person_id=person_id)
        await self.audit.record(
            "account_changed",
            origin,
            actor=actor,
            target=person_id,
            roles_before=before.get("roles"),
            roles_after=after.get("roles"),
            wards_before=before.get("wards"),
            wards_after=after.get("wards"),
            renamed=name is not None and name != before.get("name"),
        )
        return after

    async def set_active(
        self, actor: StaffUser, person_id: str, active: bool, origin: Origin
    ) -> Doc:
        if person_id == actor.id and not active:
            raise IdentityError("Không tự vô hiệu hoá tài khoản của mình.", 409)
        await self.account(person_id)
        after = await self.store.update_account(
            person_id, {"active": active, "updated_at": self.clock(), "updated_by": actor.id}
        )
        assert after is not None
        ended = 0
        if not active:
            ended = await self.store.end_sessions_of(person_id)
            await self.revoked("deactivated", person_id=person_id)
        action = "account_activated" if active else "account_deactivated"
        await self.audit.record(action, origin, actor=actor, target=person_id, sessions=ended)
        return after

    async def reset(
        self, actor: StaffUser, person_id: str, second_factor: bool, origin: Origin
    ) -> tuple[Doc, str]:
        """A temporary password (shown once), every session ended; with `second_factor`, TOTP
        and recovery codes removed too (a lost phone)."""
        await self.account(person_id)
        temporary = temporary_password()
        changes: Doc = {
            "password_hash": await self._hash(temporary),
            "password_change_required": True,
            "password_changed_at": self.clock(),
            "updated_at": self.clock(),
            "updated_by": actor.id,
        }
        unset = ("totp", "recovery_codes", "totp_pending") if second_factor else ()
        after = await self.store.update_account(person_id, changes, unset=unset)
        assert after is not None
        ended = await self.store.end_sessions_of(person_id)
        await self.revoked("password_reset", person_id=person_id)
        await self.audit.record(
            "account_reset",
            origin,
            actor=actor,
            target=person_id,
            second_factor_removed=second_factor,
            sessions=ended,
        )
        return after, temporary

    # --- API tokens -------------------------------------------------------------------------

    async def create_token(
        self, actor: StaffUser, name: str, roles: list[Role], wards: list[str], origin: Origin
    ) -> tuple[Doc, str]:
        """A token for a machine client: returned once, stored as its hash. Admin and approver
        act only as a person signed in with a second factor, never through a token."""
        privileged = {r.value for r in roles} & SECOND_FACTOR_ROLES
        if privileged:
            raise IdentityError(
                f"Mã truy cập máy không được mang vai trò {', '.join(sorted(privileged))}.", 422
            )
        token_id = new_id("t")
        token = f"{API_TOKEN_PREFIX}{new_secret()}"
        doc: Doc = {
            "_id": token_id,
            "digest": digest(token),
            "name": name,
            "roles": sorted({r.value for r in roles}),
            "wards": sorted(set(wards)),
            "created_at": self.clock(),
            "created_by": actor.id,
            "last_used_at": None,
            "revoked_at": None,
            "revoked_by": None,
        }
        await self.store.insert_token(doc)
        await self.audit.record(
            "token_created",
            origin,
            actor=actor,
            target=token_id,
            roles=doc["roles"],
            wards=doc["wards"],
        )
        return doc, token

    async def revoke_token(self, actor: StaffUser, token_id: str, origin: Origin) -> Doc:
        doc = await self.store.revoke_token(token_id, self.clock(), actor.id)
        if doc is None:
            existing = await self.store.token(token_id)
            if existing is None:
                raise IdentityError("Không tìm thấy mã truy cập.", 404)
            return existing  # revoked already: the same answer again
        await self.revoked("token_revoked", token_id=token_id)
        await self.audit.record("token_revoked", origin, actor=actor, target=token_id)
        return doc

    # --- housekeeping -----------------------------------------------------------------------

    async def sweep(self) -> tuple[int, int]:
        now = self.clock()
        return await self.store.delete_expired_sessions(now), await self.throttle.sweep(now)
