"""The AsyncAPI document of the identity service: the revocations it announces.

`python -m services.identity.asyncapi [--out docs/asyncapi/identity.json]`. Identity publishes
`identity.revoked` on core NATS (not a stream) with `nats-py`; every staff service's verifier
subscribes to it (`shared.identity.verifier.staff_verifier`). Both are declared here on a
FastStream broker that never connects, with the event's model, so the document comes from the
same definitions as the code.
"""

from collections.abc import Sequence
from typing import Any

from faststream.nats import NatsBroker

from shared.asyncapi import document, write
from shared.events.identity import StaffAccessRevoked
from shared.subjects import IDENTITY_REVOKED

DESCRIPTION = (
    "Staff identity: accounts, sessions and API tokens. Announces every revocation so that "
    "every staff service drops its cached verifications at once."
)


def documented_broker() -> NatsBroker:
    broker = NatsBroker()
    broker.publisher(
        IDENTITY_REVOKED,
        schema=StaffAccessRevoked,
        title=f"{IDENTITY_REVOKED} (published)",
        description=(
            "A session or API token ended, or an account changed: sign-out, deactivation, "
            "password or second-factor change, token revocation, new roles or wards."
        ),
    )

    async def forget(event: StaffAccessRevoked) -> None:
        raise RuntimeError(f"the documentation broker never handles messages: {event}")

    broker.subscriber(
        IDENTITY_REVOKED,
        title=f"{IDENTITY_REVOKED} (every staff service)",
        description="Each verifier (reports, broadcast, analytics, identity) drops its cache.",
    )(forget)
    return broker


def specification(_: Any = None) -> str:
    return document(documented_broker(), "identity", DESCRIPTION)


def main(argv: Sequence[str] | None = None) -> None:
    write("identity", specification, argv)


if __name__ == "__main__":
    main()
