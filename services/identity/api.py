"""The identity service's JSON API: sign-in and sign-out, the caller's own account and second
factor, and (admins) accounts, API tokens and the audit log.

Every route but sign-in resolves the caller through the same `shared.identity` verification as
every other service, so the same session cookie (with its CSRF token on state-changing
requests) or API token works here and there alike.
"""

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, HTTPException, Path, Query, Request, Response, status
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from services.identity.accounts import Identity, IdentityError, public_account, public_token
from shared.audit import AuditLog, Origin
from shared.auth import CurrentStaff, Role, StaffUser, require_roles
from shared.errors import ErrorBody, error_body
from shared.identity.store import CSRF_COOKIE, SESSION_COOKIE, digest
from shared.identity.verifier import csrf_token
from shared.text import SafeLine
from shared.web import IsoDateTime

router = APIRouter()
Admin = Annotated[StaffUser, Depends(require_roles(Role.ADMIN))]

Username = Annotated[str, Field(min_length=1, max_length=64)]
Password = Annotated[str, Field(min_length=1, max_length=256)]
Code = Annotated[str, Field(min_length=1, max_length=32)]
PersonName = Annotated[SafeLine, Field(min_length=1, max_length=120)]
Ward = Annotated[str, Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", max_length=60)]
Wards = Annotated[list[Ward], Field(max_length=50)]
Roles = Annotated[list[Role], Field(max_length=6)]
PersonId = Annotated[str, Path(max_length=40)]
TokenId = Annotated[str, Path(max_length=40)]


def get_identity(request: Request) -> Identity:
    identity: Identity = request.app.state.service.identity
    return identity


IdentityDep = Annotated[Identity, Depends(get_identity)]


# --- models ---------------------------------------------------------------------------------


class SignInIn(BaseModel):
    username: Username
    password: Password
    code: Code | None = Field(
        default=None, description="TOTP code (6 digits), or one recovery code"
    )


class Account(BaseModel):
    id: str
    username: str
    name: str
    roles: list[str]
    wards: list[str]
    active: bool
    second_factor: bool
    second_factor_required: bool
    password_change_required: bool
    recovery_codes_left: int
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_sign_in_at: datetime | None = None


class SignedInOut(BaseModel):
    account: Account
    csrf_token: str = Field(description="Send as X-CSRF-Token with every state-changing request")
    expires_at: datetime
    second_factor: bool


class Caller(BaseModel):
    id: str
    name: str
    via: str
    roles: list[str] = Field(description="Roles this request may use")
    wards: list[str]
    withheld: list[str] = Field(description="Roles held but not usable yet")
    withheld_because: str | None
    csrf_token: str | None = None


class PasswordIn(BaseModel):
    current_password: Password
    new_password: Password


class PasswordConfirmIn(BaseModel):
    password: Password


class CodeIn(BaseModel):
    code: Code


class PasswordAndCodeIn(BaseModel):
    password: Password
    code: Code


class EnrolmentOut(BaseModel):
    secret: str = Field(description="Base32, for typing into an app that cannot scan")
    otpauth_uri: str
    qr_svg: str = Field(description="The same URI as a QR code, an SVG document")


class RecoveryCodesOut(BaseModel):
    codes: list[str] = Field(description="Shown once; each works once in place of a code")


class AccountIn(BaseModel):
    username: Username
    name: PersonName
    roles: Roles
    wards: Wards = []


class AccountChange(BaseModel):
    name: PersonName | None = None
    roles: Roles | None = None
    wards: Wards | None = None


class ResetIn(BaseModel):
    second_factor: bool = Field(default=False, description="Also remove TOTP (a lost phone)")


class AccountWithPassword(BaseModel):
    account: Account
    temporary_password: str = Field(description="Shown once; must be changed at first sign-in")


class AccountPage(BaseModel):
    items: list[Account]
    total: int
    offset: int
    limit: int


class TokenIn(BaseModel):
    name: PersonName
    roles: Roles
    wards: Wards = []


class Token(BaseModel):
    id: str
    name: str
    roles: list[str]
    wards: list[str]
    created_at: datetime
    created_by: str | None
    last_used_at: datetime | None
    revoked_at: datetime | None
    revoked_by: str | None


class TokenCreated(BaseModel):
    token: Token
    secret: str = Field(description="Shown once: Authorization: Bearer <secret>")


class AuditEntry(BaseModel):
    at: datetime
    service: str
    action: str
    outcome: str
    actor_id: str | None
    actor_name: str | None
    via: str | None
    address: str | None
    user_agent: str | None
    target: str | None
    details: dict[str, Any]


# --- helpers --------------------------------------------------------------------------------


async def identity_error(_: Request, exc: Exception) -> JSONResponse:
    """The one error body, with `Retry-After` on a lockout."""
    assert isinstance(exc, IdentityError)
    headers = {"Retry-After": str(exc.retry_after)} if exc.retry_after else None
    body = error_body(exc.detail, error=exc.error)
    return JSONResponse(body, status_code=exc.status, headers=headers)


def origin(request: Request) -> Origin:
    """Where the request came from; behind a trusted proxy, the client it forwarded for."""
    return Origin.of(request, request.app.state.settings.trusted_proxies)


def secure_cookies(request: Request) -> bool:
    mode = request.app.state.settings.session_cookie_secure
    return mode == "always" or (mode == "auto" and request.url.scheme == "https")


def set_session_cookies(
    request: Request, response: Response, session_id: str, csrf: str, max_age: int
) -> None:
    secure = secure_cookies(request)
    response.set_cookie(
        SESSION_COOKIE,
        session_id,
        max_age=max_age,
        path="/",
        httponly=True,
        samesite="lax",
        secure=secure,
    )
    # The page's script reads this one to send it back as X-CSRF-Token (double submit).
    response.set_cookie(
        CSRF_COOKIE,
        csrf,
        max_age=max_age,
        path="/",
        httponly=False,
        samesite="strict",
        secure=secure,
    )


def clear_session_cookies(request: Request, response: Response) -> None:
    secure = secure_cookies(request)
    for name, httponly in ((SESSION_COOKIE, True), (CSRF_COOKIE, False)):
        response.delete_cookie(name, path="/", httponly=httponly, samesite="lax", secure=secure)


def session_digest(request: Request, user: StaffUser) -> str | None:
    session_id = request.cookies.get(SESSION_COOKIE)
    return digest(session_id) if session_id and user.via == "session" else None


def person(user: StaffUser) -> StaffUser:
    if user.via != "session":
        raise HTTPException(
            status.HTTP_403_FORBIDDEN,
            detail="Chỉ dành cho cán bộ đăng nhập bằng tài khoản của mình (không phải mã máy).",
        )
    return user


# --- sign-in, sign-out, the caller ------------------------------------------------------------


LOCKED_RESPONSE: dict[int | str, dict[str, Any]] = {
    429: {"model": ErrorBody, "description": "Locked after repeated failures (`sign_in_locked`)"}
}


@router.post("/auth/sign-in", tags=["sign-in"], responses=LOCKED_RESPONSE)
async def sign_in(
    body: SignInIn, request: Request, response: Response, identity: IdentityDep
) -> SignedInOut:
    """Password, and the TOTP code (or a recovery code) when the account has one. Every
    refusal has the same message; repeated failures lock the name and the address (429)."""
    done = await identity.sign_in(body.username, body.password, body.code, origin(request))
    max_age = int(identity.absolute.total_seconds())
    set_session_cookies(request, response, done.session_id, done.csrf_token, max_age)
    return SignedInOut(
        account=Account(**public_account(done.account)),
        csrf_token=done.csrf_token,
        expires_at=done.expires_at,
        second_factor=done.second_factor,
    )


@router.post("/auth/sign-out", tags=["sign-in"], status_code=204)
async def sign_out(
    request: Request, response: Response, user: CurrentStaff, identity: IdentityDep
) -> Response:
    """Ends every session of the person (here and on every service)."""
    await identity.sign_out(person(user), origin(request))
    answer = Response(status_code=204)
    clear_session_cookies(request, answer)
    return answer


@router.get("/auth/session", tags=["sign-in"])
async def whoami(request: Request, user: CurrentStaff) -> Caller:
    """Who the caller is and what this request may do; a session's CSRF token too."""
    session_id = request.cookies.get(SESSION_COOKIE) if user.via == "session" else None
    return Caller(
        id=user.id,
        name=user.name,
        via=user.via,
        roles=sorted(user.roles),
        wards=sorted(user.wards),
        withheld=sorted(user.withheld),
        withheld_because=user.withheld_because,
        csrf_token=csrf_token(session_id) if session_id else None,
    )


@router.get("/me", tags=["me"])
async def my_account(user: CurrentStaff, identity: IdentityDep) -> Account:
    person(user)
    return Account(**public_account(await identity.account(user.id)))


@router.post("/me/password", tags=["me"], status_code=204)
async def change_password(
    body: PasswordIn, request: Request, user: CurrentStaff, identity: IdentityDep
) -> Response:
    """Other sessions of the person end; this one stays."""
    await identity.change_password(
        person(user),
        session_digest(request, user),
        body.current_password,
        body.new_password,
        origin(request),
    )
    return Response(status_code=204)


@router.post("/me/second-factor", tags=["me"])
async def start_second_factor(
    body: PasswordConfirmIn, request: Request, user: CurrentStaff, identity: IdentityDep
) -> EnrolmentOut:
    """Start TOTP enrolment: scan the QR code, then confirm with a first code."""
    found = await identity.start_enrolment(person(user), body.password, origin(request))
    return EnrolmentOut(secret=found.secret, otpauth_uri=found.uri, qr_svg=found.svg)


@router.post("/me/second-factor/confirm", tags=["me"])
async def confirm_second_factor(
    body: CodeIn, request: Request, user: CurrentStaff, identity: IdentityDep
) -> RecoveryCodesOut:
    codes = await identity.confirm_enrolment(
        person(user), session_digest(request, user), body.code, origin(request)
    )
    return RecoveryCodesOut(codes=codes)


@router.post("/me/second-factor/disable", tags=["me"], status_code=204)
async def disable_second_factor(
    body: PasswordAndCodeIn, request: Request, user: CurrentStaff, identity: IdentityDep
) -> Response:
    """Not for admins and approvers, who must keep it."""
    await identity.disable_second_factor(person(user), body.password, body.code, origin(request))
    return Response(status_code=204)


@router.post("/me/recovery-codes", tags=["me"])
async def renew_recovery_codes(
    body: PasswordAndCodeIn, request: Request, user: CurrentStaff, identity: IdentityDep
) -> RecoveryCodesOut:
    codes = await identity.renew_recovery_codes(
        person(user), body.password, body.code, origin(request)
    )
    return RecoveryCodesOut(codes=codes)


# --- accounts (admins) ------------------------------------------------------------------------


@router.get("/accounts", tags=["accounts"])
async def list_accounts(
    _: Admin,
    identity: IdentityDep,
    offset: Annotated[int, Query(ge=0, le=1_000_000)] = 0,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> AccountPage:
    docs, total = await identity.store.list_accounts(offset, limit)
    items = [Account(**public_account(d)) for d in docs]
    return AccountPage(items=items, total=total, offset=offset, limit=limit)


@router.post("/accounts", tags=["accounts"], status_code=201)
async def create_account(
    body: AccountIn, request: Request, user: Admin, identity: IdentityDep
) -> AccountWithPassword:
    doc, temporary = await identity.create_account(
        user, body.username, body.name, body.roles, body.wards, origin(request)
    )
    assert temporary is not None
    return AccountWithPassword(account=Account(**public_account(doc)), temporary_password=temporary)


@router.get("/accounts/{person_id}", tags=["accounts"])
async def read_account(person_id: PersonId, _: Admin, identity: IdentityDep) -> Account:
    return Account(**public_account(await identity.account(person_id)))


@router.patch("/accounts/{person_id}", tags=["accounts"])
async def change_account(
    person_id: PersonId, body: AccountChange, request: Request, user: Admin, identity: IdentityDep
) -> Account:
    """New roles and wards apply on every service at once (the change is announced)."""
    doc = await identity.update_account(
        user, person_id, origin(request), body.name, body.roles, body.wards
    )
    return Account(**public_account(doc))


@router.post("/accounts/{person_id}/deactivate", tags=["accounts"])
async def deactivate_account(
    person_id: PersonId, request: Request, user: Admin, identity: IdentityDep
) -> Account:
    """Every session of the person ends, on every service."""
    doc = await identity.set_active(user, person_id, False, origin(request))
    return Account(**public_account(doc))


@router.post("/accounts/{person_id}/activate", tags=["accounts"])
async def activate_account(
    person_id: PersonId, request: Request, user: Admin, identity: IdentityDep
) -> Account:
    doc = await identity.set_active(user, person_id, True, origin(request))
    return Account(**public_account(doc))


@router.post("/accounts/{person_id}/reset", tags=["accounts"])
async def reset_account(
    person_id: PersonId, body: ResetIn, request: Request, user: Admin, identity: IdentityDep
) -> AccountWithPassword:
    """A temporary password, shown once; every session of the person ends."""
    doc, temporary = await identity.reset(user, person_id, body.second_factor, origin(request))
    return AccountWithPassword(account=Account(**public_account(doc)), temporary_password=temporary)


# --- API tokens (admins) ----------------------------------------------------------------------


@router.get("/tokens", tags=["tokens"])
async def list_tokens(_: Admin, identity: IdentityDep) -> list[Token]:
    return [Token(**public_token(d)) for d in await identity.store.list_tokens()]


@router.post("/tokens", tags=["tokens"], status_code=201)
async def create_token(
    body: TokenIn, request: Request, user: Admin, identity: IdentityDep
) -> TokenCreated:
    """For a machine client (a dispatch centre's integration, a kiosk): never admin or
    approver. The secret is shown this once and stored only as its hash."""
    doc, secret = await identity.create_token(
        user, body.name, body.roles, body.wards, origin(request)
    )
    return TokenCreated(token=Token(**public_token(doc)), secret=secret)


@router.post("/tokens/{token_id}/revoke", tags=["tokens"])
async def revoke_token(
    token_id: TokenId, request: Request, user: Admin, identity: IdentityDep
) -> Token:
    """Refused by every service at once (announced), within 2 s at worst."""
    doc = await identity.revoke_token(user, token_id, origin(request))
    return Token(**public_token(doc))


# --- the audit log (admins) -------------------------------------------------------------------


@router.get("/audit", tags=["audit"])
async def audit_log(
    request: Request,
    _: Admin,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    action: Annotated[str | None, Query(max_length=60)] = None,
    actor_id: Annotated[str | None, Query(max_length=60)] = None,
    since: IsoDateTime | None = None,
) -> list[AuditEntry]:
    """Every service's entries, newest first: sign-ins and failures, second-factor, account
    and token changes, tipster reveals, notice approvals; who, when, from where."""
    log: AuditLog = request.app.state.staff.audit
    return [AuditEntry(**e) for e in await log.find(limit, action, actor_id, since)]
