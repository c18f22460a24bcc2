"""MongoDB access through PyMongo's async API (the official successor of Motor)."""

from pymongo import AsyncMongoClient


def connect_mongo(url: str) -> AsyncMongoClient:  # type: ignore[type-arg]
    """A client with timezone-aware datetimes and a short server-selection timeout."""
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=3000)
