"""The session servers are real: JetStream acknowledges, the MongoDB-wire server stores."""

import pytest
from nats.js.api import StreamConfig

from shared.mongo import connect_mongo

pytestmark = pytest.mark.integration


async def test_jetstream_acknowledges_a_publish(nats_client, unique: str) -> None:
    js = nats_client.jetstream()
    await js.add_stream(StreamConfig(name=f"T_{unique}", subjects=[f"t{unique}.>"]))
    ack = await js.publish(f"t{unique}.x", b"hello")
    assert ack.stream == f"T_{unique}"
    assert ack.seq == 1
    await js.delete_stream(f"T_{unique}")


async def test_mongodb_wire_server_round_trips_a_document(mongodb_url: str, unique: str) -> None:
    client = connect_mongo(mongodb_url)
    try:
        collection = client[f"t_{unique}"]["docs"]
        await collection.insert_one({"_id": "a", "n": 1})
        await collection.update_one({"_id": "a"}, {"$inc": {"n": 2}})
        assert await collection.find_one({"_id": "a"}) == {"_id": "a", "n": 3}
        await client.drop_database(f"t_{unique}")
    finally:
        await client.close()
