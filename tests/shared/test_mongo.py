"""Index declaration survives restarts on the MongoDB-wire server (FerretDB v1 included)."""

import pytest
from pymongo import ASCENDING, DESCENDING, IndexModel
from pymongo.errors import DuplicateKeyError

from shared.mongo import connect_mongo, ensure_indexes

pytestmark = pytest.mark.integration


async def test_second_start_with_several_existing_indexes_works(
    mongodb_url: str, unique: str
) -> None:
    client = connect_mongo(mongodb_url)
    try:
        cases = client[f"t_{unique}"]["cases"]
        indexes = [
            IndexModel([("ref", ASCENDING)], unique=True),
            IndexModel([("ward", ASCENDING), ("created_at", DESCENDING)]),
            IndexModel([("status", ASCENDING), ("priority", ASCENDING)]),
        ]
        for _ in range(3):  # every start of a service after the first
            await ensure_indexes(cases, indexes)
        names = set((await cases.index_information()).keys())
        assert {"ref_1", "ward_1_created_at_-1", "status_1_priority_1"} <= names
        await cases.insert_one({"ref": "BY-1"})
        with pytest.raises(DuplicateKeyError):
            await cases.insert_one({"ref": "BY-1"})
        await client.drop_database(f"t_{unique}")
    finally:
        await client.close()
