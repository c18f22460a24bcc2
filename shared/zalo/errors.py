"""Typed failures of the Zalo OA API (reference §6) and of the transport under it.

Zalo answers most failures with HTTP 200 and a negative `error` field; `error_for` turns that
code into one of the classes below. `retryable` says whether repeating the same request later
can succeed; permanent per-user errors (`UserUnreachable`) never are.
"""


class ZaloError(Exception):
    """A failed Zalo call: the API's `error` code (or HTTP status) and its message."""

    retryable: bool = False

    def __init__(self, code: int, message: str) -> None:
        super().__init__(f"Zalo error {code}: {message}")
        self.code = code
        self.message = message


class RateLimited(ZaloError):
    """-32: the app or OA reached its API call limit; back off and retry."""

    retryable = True

    def __init__(self, code: int, message: str, retry_after: float | None = None) -> None:
        super().__init__(code, message)
        self.retry_after = retry_after


class AccessTokenInvalid(ZaloError):
    """-216 / -220: the access token is invalid, expired or revoked; refresh, then retry once."""


class TokenRefreshFailed(ZaloError):
    """The OAuth server refused the refresh token (used, expired or revoked): re-consent needed."""


class TokenUnavailable(ZaloError):
    """No token pair is stored yet: seed one (settings or the OAuth code flow) first."""


class UserUnreachable(ZaloError):
    """A permanent error for one user: do not retry this user, move on (-244 and subclasses)."""


class NotFollower(UserUnreachable):
    """-213: the user does not follow the OA."""


class OutsideInteractionWindow(UserUnreachable):
    """-230 / -232 / -227: no interaction within 7 days, interaction expired, or user inactive."""


class GroupUnavailable(ZaloError):
    """-403 / -237: the OA is not in the group, or the group's GMF asset expired."""


class InvalidPayload(ZaloError):
    """-201 / -210 / -233: invalid field, parameter over its limit, or bad message type."""


class NightTimeRestricted(ZaloError):
    """-234: this message type cannot be sent at night (22:00-06:00 Asia/Ho_Chi_Minh)."""


class UnexpectedZaloError(ZaloError):
    """Any other non-zero `error` code (quota, OA disabled, API not registered, ...)."""


class ZaloHttpError(ZaloError):
    """HTTP-level or transport failure: `code` is the HTTP status, or 0 when no response came.

    `retryable` is true for 5xx, 429, timeouts and connection failures. `maybe_delivered` is
    true when the request may have reached Zalo (a read timeout or 5xx after sending), so a
    non-idempotent send must not be repeated blindly.
    """

    def __init__(
        self,
        code: int,
        message: str,
        *,
        retryable: bool,
        maybe_delivered: bool,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(code, message)
        self.retryable = retryable
        self.maybe_delivered = maybe_delivered
        self.retry_after = retry_after


_BY_CODE: dict[int, type[ZaloError]] = {
    -32: RateLimited,
    -216: AccessTokenInvalid,
    -220: AccessTokenInvalid,
    -213: NotFollower,
    -227: OutsideInteractionWindow,
    -230: OutsideInteractionWindow,
    -232: OutsideInteractionWindow,
    -244: UserUnreachable,
    -403: GroupUnavailable,
    -237: GroupUnavailable,
    -201: InvalidPayload,
    -210: InvalidPayload,
    -233: InvalidPayload,
    -234: NightTimeRestricted,
}

MAPPED_CODES: tuple[int, ...] = tuple(sorted(_BY_CODE))


def error_for(code: int, message: str) -> ZaloError:
    """The typed exception for a non-zero Zalo `error` code."""
    return _BY_CODE.get(code, UnexpectedZaloError)(code, message)
