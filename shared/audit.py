"""The staff audit log: who did what, when and from where, in one collection for every service.

Written by the identity service (sign-in and sign-out, failed attempts, lockouts, second-factor
changes, account and token changes) and by the services for their privileged actions (a
tipster's identity revealed, a notice approved or withdrawn). An entry never holds a password,
a code, a token or a session id, nor a name typed at a failed sign-in (it may be a password
typed into the wrong field): only the account it matched, if any.

Read by admins through the identity service (`GET /audit`). Services keep their own domain
records as before (reports `audit` with the case of a reveal, broadcast `broadcast_audit`).
"""

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from fastapi import Request
from pymongo import DESCENDING, IndexModel
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import ensure_indexes

if TYPE_CHECKING:
    from shared.auth import StaffUser

AUDIT_LOG = "audit_log"
MAX_USER_AGENT = 200


FORWARDED_FOR = "x-forwarded-for"


@dataclass(frozen=True)
class Origin:
    """Where a request came from: the connecting address, or, when that is a proxy the service
    trusts (the staff console, a load balancer), the address that proxy says it forwarded
    for; and the browser or client it named."""

    address: str | None
    user_agent: str | None = None

    @classmethod
    def of(cls, request: Request, trusted_proxies: frozenset[str] = frozenset()) -> "Origin":
        agent = request.headers.get("user-agent")
        peer = request.client.host if request.client else None
        return cls(
            address=client_address(peer, request.headers.getlist(FORWARDED_FOR), trusted_proxies),
            user_agent=agent[:MAX_USER_AGENT] if agent else None,
        )


def client_address(
    peer: str | None, forwarded_for: list[str], trusted_proxies: frozenset[str]
) -> str | None:
    """The client's address: the last one a trusted proxy appended to X-Forwarded-For (the
    ones before it are whatever the client sent, anyone can write them); the peer itself when
    it is not a trusted proxy or names no one."""
    if peer not in trusted_proxies:
        return peer
    hops = [hop.strip() for header in forwarded_for for hop in header.split(",")]
    return hops[-1][:64] if hops and hops[-1] else peer


CLI = Origin(address="local", user_agent="cli")


class AuditLog:
    def __init__(self, db: AsyncDatabase[dict[str, Any]], service: str) -> None:
        self.entries = db[AUDIT_LOG]
        self.service = service

    async def ensure_indexes(self) -> None:
        await ensure_indexes(
            self.entries,
            [
                IndexModel([("at", DESCENDING)]),
                IndexModel([("actor_id", DESCENDING), ("at", DESCENDING)]),
            ],
        )

    async def record(
        self,
        action: str,
        origin: Origin,
        *,
        actor: "StaffUser | None" = None,
        actor_id: str | None = None,
        target: str | None = None,
        outcome: str = "ok",
        **details: Any,
    ) -> None:
        entry: dict[str, Any] = {
            "_id": uuid.uuid4().hex,
            "at": datetime.now(UTC),
            "service": self.service,
            "action": action,
            "outcome": outcome,
            "actor_id": actor.id if actor else actor_id,
            "actor_name": actor.name if actor else None,
            "via": actor.via if actor else None,
            "address": origin.address,
            "user_agent": origin.user_agent,
            "target": target,
            "details": details,
        }
        await self.entries.insert_one(entry)

    async def find(
        self,
        limit: int,
        action: str | None = None,
        actor_id: str | None = None,
        since: datetime | None = None,
    ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {}
        if action:
            query["action"] = action
        if actor_id:
            query["actor_id"] = actor_id
        if since:
            query["at"] = {"$gte": since}
        cursor = self.entries.find(query, {"_id": 0}).sort("at", DESCENDING).limit(limit)
        return [entry async for entry in cursor]


async def audit(request: Request, action: str, actor: "StaffUser", **fields: Any) -> None:
    """Record a privileged action of the request's caller in the service's audit log (the one
    its staff verifier holds, `request.app.state.staff.audit`)."""
    log: AuditLog | None = getattr(request.app.state.staff, "audit", None)
    if log is not None:
        await log.record(action, Origin.of(request), actor=actor, **fields)
