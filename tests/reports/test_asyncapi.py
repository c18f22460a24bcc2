import json

from services.reports.asyncapi import specification
from services.reports.settings import ReportsSettings


def test_document_names_every_subject_and_schema() -> None:
    document = json.loads(specification(ReportsSettings()))
    addresses = {channel["address"] for channel in document["channels"].values()}
    assert addresses == {
        "zalo.event.>",
        "tips.triaged.{ward}.{priority}",
        "tips.updated.{ward}",
        "tips.escalated.{ward}",
    }
    schemas = document["components"]["schemas"]
    assert {"ZaloEventReceived", "TipTriaged", "TipUpdated", "TipEscalated"} <= set(schemas)
    assert "tipster" in schemas["TipTriaged"]["properties"]
