"""Staff access that ended or changed (producer: identity)."""

from typing import Literal

from shared.events.envelope import Event

RevocationReason = Literal[
    "signed_out",
    "deactivated",
    "password_reset",
    "password_changed",
    "second_factor_changed",
    "account_changed",
    "token_revoked",
]


class StaffAccessRevoked(Event):
    """On `identity.revoked`: what a verifier may have cached for this person or token is no
    longer true. Carries ids only (never a credential or its digest); a verifier drops its
    whole cache on it, so the next request of anyone is checked against the store again."""

    type: Literal["staff_access.revoked"] = "staff_access.revoked"
    v: Literal[1] = 1
    producer: str = "identity"

    reason: RevocationReason
    person_id: str | None = None
    token_id: str | None = None
