"""Staff authorization for every service: who the caller is, and what their roles and wards let
them do.

Every staff service resolves the caller the same way, through `shared.identity.verifier`
(`StaffVerifier`, on `app.state.staff`): an API token (`Authorization: Bearer byt_...`) or a
browser session (the `binhyen_session` cookie, with a CSRF token on every state-changing
request), checked against the identity store that the identity service keeps
(`services/identity/`). Roles and wards are applied here, the same for both.

`STAFF_TOKENS_FILE` / `STAFF_TOKENS` (JSON `{"<sha256 hex of token>": {"id", "name", "roles",
"wards"}}`) are the old static tokens, kept for the tests and `make run`'s demo tokens: a
service refuses to start with them outside dev mode (`shared.startup.forbid_static_tokens`),
because a static token can be neither revoked nor expired.
"""

import hashlib
import hmac
import json
from collections.abc import Callable, Coroutine, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Protocol

from fastapi import Depends, HTTPException, Request, status
from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    OFFICER = "officer"
    ANALYST = "analyst"
    EDITOR = "editor"  # writes notices
    APPROVER = "approver"  # approves notices that reach every ward
    REGISTRAR = "registrar"  # keeps broadcast's group registry (import, edit)


# Roles a person may use only in a session signed in with a second factor (TOTP); an API token
# may not hold them at all (services/identity).
SECOND_FACTOR_ROLES = frozenset({Role.ADMIN, Role.APPROVER})

Via = Literal["session", "token", "static"]
Withheld = Literal["second_factor", "password_change"]


class StaffUser(BaseModel):
    """A person on the police staff, or a machine client's API token. An empty `wards` means
    every ward. `roles` are the roles this request may use; `withheld` are roles the account
    holds but may not use yet, and why (no second factor in this session, or a password that
    must be changed first)."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    roles: frozenset[Role]
    wards: frozenset[str] = frozenset()
    via: Via = "static"
    withheld: frozenset[Role] = frozenset()
    withheld_because: Withheld | None = None

    def has_any(self, *roles: Role) -> bool:
        return Role.ADMIN in self.roles or bool(self.roles.intersection(roles))

    def can_see_ward(self, ward: str) -> bool:
        return Role.ADMIN in self.roles or not self.wards or ward in self.wards


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffDirectory:
    """The static tokens of `STAFF_TOKENS(_FILE)`: a bearer token looked up by its digest."""

    def __init__(self, users_by_digest: Mapping[str, StaffUser]) -> None:
        self._users = dict(users_by_digest)

    @classmethod
    def from_json(cls, text: str) -> "StaffDirectory":
        raw: dict[str, dict[str, Any]] = json.loads(text) if text.strip() else {}
        return cls({digest: StaffUser.model_validate(user) for digest, user in raw.items()})

    @classmethod
    def from_settings(cls, tokens_file: str | None, tokens_json: str | None) -> "StaffDirectory":
        if tokens_file:
            return cls.from_json(Path(tokens_file).read_text(encoding="utf-8"))
        return cls.from_json(tokens_json or "{}")

    def __len__(self) -> int:
        return len(self._users)

    def authenticate(self, token: str) -> StaffUser | None:
        digest = token_digest(token)
        for known, user in self._users.items():
            if hmac.compare_digest(known, digest):
                return user
        return None


class Verifier(Protocol):
    async def authenticate(self, request: Request) -> StaffUser: ...


def unauthenticated(
    detail: str = "Chưa đăng nhập, hoặc phiên/mã truy cập đã hết hạn.",
) -> HTTPException:
    return HTTPException(
        status.HTTP_401_UNAUTHORIZED, detail=detail, headers={"WWW-Authenticate": "Bearer"}
    )


async def current_staff(request: Request) -> StaffUser:
    """The authenticated caller; the app puts its verifier on `app.state.staff`
    (`shared.identity.verifier.StaffVerifier`)."""
    verifier: Verifier = request.app.state.staff
    return await verifier.authenticate(request)


CurrentStaff = Annotated[StaffUser, Depends(current_staff)]

_WITHHELD_DETAIL: dict[Withheld, str] = {
    "second_factor": (
        "Vai trò {roles} cần đăng nhập bằng xác thực hai bước: bật mã xác thực (TOTP) "
        "rồi đăng nhập lại."
    ),
    "password_change": "Cần đổi mật khẩu tạm trước khi làm việc.",
}


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, StaffUser]]:
    """A dependency that lets through staff with any of `roles` (admins always)."""

    async def dependency(user: CurrentStaff) -> StaffUser:
        if not user.has_any(*roles):
            held_back = user.withheld & (set(roles) | {Role.ADMIN})
            if held_back and user.withheld_because:
                detail = _WITHHELD_DETAIL[user.withheld_because].format(
                    roles=", ".join(sorted(held_back))
                )
            else:
                detail = f"Cần một trong các vai trò: {', '.join(sorted(roles))}."
            raise HTTPException(status.HTTP_403_FORBIDDEN, detail=detail)
        return user

    return dependency
