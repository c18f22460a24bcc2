"""The staff identity store in MongoDB: accounts, browser sessions, API tokens, sign-in throttle.

One schema for every service: the identity service writes it (`services/identity/`), every
staff service reads sessions, tokens and accounts through `shared.identity.verifier`. Nothing
here holds a usable credential: a session id and an API token are kept as their SHA-256
(both are 256-bit random values, so a plain hash is enough and costs microseconds per request),
a password as its Argon2id hash, a TOTP secret sealed with `IDENTITY_KEY`, recovery codes as
keyed hashes, and the throttle keys a name by its hash (a password typed into the name field
must not land in the database as written).

Queries stay within what FerretDB v1 supports (no transactions, no TTL indexes): expired
sessions and throttle entries are deleted by the identity service's sweeper.
"""

import hashlib
import secrets
from datetime import datetime, timedelta
from typing import Any

from pymongo import ASCENDING, DESCENDING, IndexModel, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase

from shared.mongo import ensure_indexes

Doc = dict[str, Any]

ACCOUNTS = "identity_accounts"
SESSIONS = "identity_sessions"
TOKENS = "identity_tokens"
THROTTLE = "identity_throttle"

SESSION_COOKIE = "binhyen_session"
CSRF_COOKIE = "binhyen_csrf"  # readable by the page's script: the same value it must send back
CSRF_HEADER = "x-csrf-token"
CSRF_FIELD = "csrf_token"  # the hidden field of an HTML form
API_TOKEN_PREFIX = "byt_"


def digest(secret: str) -> str:
    """SHA-256 hex of a session id or API token: what the store keeps and looks up."""
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret() -> str:
    """256 random bits, URL-safe: a session id or the secret part of an API token."""
    return secrets.token_urlsafe(32)


def new_id(prefix: str) -> str:
    return f"{prefix}-{secrets.token_hex(8)}"


class IdentityStore:
    """The identity collections of one database."""

    def __init__(self, db: AsyncDatabase[Doc]) -> None:
        self.db = db
        self.accounts = db[ACCOUNTS]
        self.sessions = db[SESSIONS]
        self.tokens = db[TOKENS]
        self.throttle = db[THROTTLE]

    async def ensure_indexes(self) -> None:
        await ensure_indexes(self.accounts, [IndexModel([("username", ASCENDING)], unique=True)])
        await ensure_indexes(
            self.sessions,
            [IndexModel([("person_id", ASCENDING)]), IndexModel([("expires_at", ASCENDING)])],
        )
        await ensure_indexes(
            self.tokens,
            [
                IndexModel([("digest", ASCENDING)], unique=True),
                IndexModel([("created_at", DESCENDING)]),
            ],
        )

    # --- accounts ---------------------------------------------------------------------------

    async def account(self, person_id: str) -> Doc | None:
        return await self.accounts.find_one({"_id": person_id})

    async def account_by_username(self, username: str) -> Doc | None:
        return await self.accounts.find_one({"username": username})

    async def insert_account(self, doc: Doc) -> None:
        await self.accounts.insert_one(doc)

    async def update_account(
        self, person_id: str, changes: Doc, unset: tuple[str, ...] = ()
    ) -> Doc | None:
        update: Doc = {"$set": changes}
        if unset:
            update["$unset"] = dict.fromkeys(unset, "")
        found: Doc | None = await self.accounts.find_one_and_update(
            {"_id": person_id}, update, return_document=ReturnDocument.AFTER
        )
        return found

    async def list_accounts(self, offset: int, limit: int) -> tuple[list[Doc], int]:
        total = await self.accounts.count_documents({})
        cursor = self.accounts.find({}).sort("username", ASCENDING).skip(offset).limit(limit)
        return [doc async for doc in cursor], total

    async def count_accounts(self) -> int:
        return await self.accounts.count_documents({})

    # --- sessions ---------------------------------------------------------------------------

    async def session(self, session_digest: str) -> Doc | None:
        return await self.sessions.find_one({"_id": session_digest})

    async def insert_session(self, doc: Doc) -> None:
        await self.sessions.insert_one(doc)

    async def touch_session(self, session_digest: str, at: datetime) -> None:
        await self.sessions.update_one({"_id": session_digest}, {"$set": {"last_seen_at": at}})

    async def update_session(self, session_digest: str, changes: Doc) -> None:
        await self.sessions.update_one({"_id": session_digest}, {"$set": changes})

    async def end_session(self, session_digest: str) -> int:
        return (await self.sessions.delete_one({"_id": session_digest})).deleted_count

    async def end_sessions_of(self, person_id: str, keep: str | None = None) -> int:
        query: Doc = {"person_id": person_id}
        if keep is not None:
            query["_id"] = {"$ne": keep}
        return (await self.sessions.delete_many(query)).deleted_count

    async def delete_expired_sessions(self, now: datetime) -> int:
        return (await self.sessions.delete_many({"expires_at": {"$lt": now}})).deleted_count

    # --- API tokens -------------------------------------------------------------------------

    async def token_by_digest(self, token_digest: str) -> Doc | None:
        return await self.tokens.find_one({"digest": token_digest})

    async def token(self, token_id: str) -> Doc | None:
        return await self.tokens.find_one({"_id": token_id})

    async def insert_token(self, doc: Doc) -> None:
        await self.tokens.insert_one(doc)

    async def list_tokens(self) -> list[Doc]:
        return [doc async for doc in self.tokens.find({}).sort("created_at", DESCENDING)]

    async def revoke_token(self, token_id: str, at: datetime, by: str) -> Doc | None:
        found: Doc | None = await self.tokens.find_one_and_update(
            {"_id": token_id, "revoked_at": None},
            {"$set": {"revoked_at": at, "revoked_by": by}},
            return_document=ReturnDocument.AFTER,
        )
        return found

    async def token_used(self, token_id: str, at: datetime) -> None:
        await self.tokens.update_one({"_id": token_id}, {"$set": {"last_used_at": at}})

    # --- sign-in throttle -------------------------------------------------------------------

    async def throttle_entry(self, key: str) -> Doc | None:
        return await self.throttle.find_one({"_id": key})

    async def record_failure(self, key: str, now: datetime, window: timedelta) -> Doc:
        """One more failure for `key` in the current window (a new window once it has passed);
        the entry as it is now. Read-then-write: two concurrent failures may count as one on
        FerretDB, which only makes the limit a little looser, never stricter."""
        entry = await self.throttle.find_one({"_id": key})
        if entry is None or entry["window_start"] + window <= now:
            fresh: Doc = {"failures": 1, "window_start": now, "locked_until": None}
            await self.throttle.replace_one({"_id": key}, fresh, upsert=True)
            return {"_id": key, **fresh}
        updated: Doc | None = await self.throttle.find_one_and_update(
            {"_id": key}, {"$inc": {"failures": 1}}, return_document=ReturnDocument.AFTER
        )
        return updated or {"_id": key, **entry, "failures": entry["failures"] + 1}

    async def lock(self, key: str, until: datetime) -> None:
        await self.throttle.update_one({"_id": key}, {"$set": {"locked_until": until}})

    async def clear_failures(self, key: str) -> None:
        await self.throttle.delete_one({"_id": key})

    async def delete_stale_throttle(self, before: datetime) -> int:
        result = await self.throttle.delete_many(
            {
                "window_start": {"$lt": before},
                "$or": [{"locked_until": None}, {"locked_until": {"$lt": before}}],
            }
        )
        return result.deleted_count
