"""Staff authentication: bearer tokens mapped to people with roles and wards.

Tokens are configured, not issued here: `STAFF_TOKENS_FILE` points to a JSON file
`{"<sha256 hex of token>": {"id": ..., "name": ..., "roles": [...], "wards": [...]}}`, so the
file never holds a usable token. `STAFF_TOKENS` (same JSON, inline) is for tests and the demo.
"""

import hashlib
import hmac
import json
from collections.abc import Callable, Coroutine, Mapping
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request, status
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from pydantic import BaseModel, ConfigDict


class Role(StrEnum):
    ADMIN = "admin"
    DISPATCHER = "dispatcher"
    OFFICER = "officer"
    ANALYST = "analyst"
    EDITOR = "editor"  # writes notices
    APPROVER = "approver"  # approves notices that reach every ward


class StaffUser(BaseModel):
    """A person on the police staff. An empty `wards` means every ward."""

    model_config = ConfigDict(frozen=True)

    id: str
    name: str
    roles: frozenset[Role]
    wards: frozenset[str] = frozenset()

    def has_any(self, *roles: Role) -> bool:
        return Role.ADMIN in self.roles or bool(self.roles.intersection(roles))

    def can_see_ward(self, ward: str) -> bool:
        return Role.ADMIN in self.roles or not self.wards or ward in self.wards


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


class StaffDirectory:
    """Looks a bearer token up by its digest."""

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

    def authenticate(self, token: str) -> StaffUser | None:
        digest = token_digest(token)
        for known, user in self._users.items():
            if hmac.compare_digest(known, digest):
                return user
        return None


_bearer = HTTPBearer(auto_error=False)


async def current_staff(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
) -> StaffUser:
    """The authenticated staff member; the app puts a `StaffDirectory` on `app.state.staff`."""
    directory: StaffDirectory = request.app.state.staff
    user = directory.authenticate(credentials.credentials) if credentials else None
    if user is None:
        raise HTTPException(
            status.HTTP_401_UNAUTHORIZED,
            detail="Thiếu hoặc sai mã truy cập (bearer token).",
            headers={"WWW-Authenticate": "Bearer"},
        )
    return user


CurrentStaff = Annotated[StaffUser, Depends(current_staff)]


def require_roles(*roles: Role) -> Callable[..., Coroutine[Any, Any, StaffUser]]:
    """A dependency that lets through staff with any of `roles` (admins always)."""

    async def dependency(user: CurrentStaff) -> StaffUser:
        if not user.has_any(*roles):
            raise HTTPException(
                status.HTTP_403_FORBIDDEN,
                detail=f"Cần một trong các vai trò: {', '.join(sorted(roles))}.",
            )
        return user

    return dependency
