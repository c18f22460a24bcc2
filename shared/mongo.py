"""MongoDB access through PyMongo's async API (the official successor of Motor)."""

from typing import Any

from pymongo import AsyncMongoClient, IndexModel
from pymongo.asynchronous.collection import AsyncCollection


def connect_mongo(url: str) -> AsyncMongoClient:  # type: ignore[type-arg]
    """A client with timezone-aware datetimes and a short server-selection timeout."""
    return AsyncMongoClient(url, tz_aware=True, serverSelectionTimeoutMS=3000)


async def ensure_indexes(collection: AsyncCollection[Any], indexes: list[IndexModel]) -> None:
    """Create each index with its own `create_index` call, idempotently.

    FerretDB v1 drops the connection when one `create_indexes` command names several indexes
    that exist already, which is every start after the first.
    """
    for index in indexes:
        document = dict(index.document)
        keys = list(document.pop("key").items())
        await collection.create_index(keys, **document)
