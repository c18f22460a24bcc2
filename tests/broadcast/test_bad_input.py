"""Findings 6 and 7 in broadcast: bad input is answered 4xx with the one error body, never
500; bodies and headers are limited, integers bounded, lists capped."""

import json
from pathlib import Path

import pytest

from tests.broadcast.builders import ADMIN, EDITOR, groups_csv, notice_body
from tests.shared.errors import assert_error, chunks

pytestmark = pytest.mark.integration
HUGE = 2**70
CAP = Path(__file__).resolve().parents[1] / "data" / "cap" / "oasis-example1.xml"


async def test_probed_500s_are_4xx_with_the_error_body(broadcast) -> None:
    h = await broadcast(workers=False)
    for path in ("/groups", "/notices"):
        assert_error(await h.http.get(path, params={"page": HUGE}, headers=EDITOR), 422)
    targeting = {"wards": ["dong-hai"], "followers": True, "follower_targeting": {"ages": [HUGE]}}
    bodies = [
        notice_body(targets=targeting),
        notice_body(title="Cảnh báo\x00"),
        notice_body(body="Nội dung \x07 chuông \x1b[2J"),
        notice_body(targets={"wards": ["dong-hai"] * 101}),
        notice_body(targets={"groups": ["x" * 41]}),
    ]
    for body in bodies:
        assert_error(await h.http.post("/notices", json=body, headers=EDITOR), 422)
    # a lone surrogate, as a JSON escape (json.dumps writes it so)
    raw = json.dumps(notice_body(title="Cảnh báo \ud800")).encode()
    headers = EDITOR | {"Content-Type": "application/json"}
    assert_error(await h.http.post("/notices", content=raw, headers=headers), 422)

    xml = CAP.read_bytes()
    body = xml.split(b"?>", 1)[1]
    doctype = b'<?xml version="1.0"?><!DOCTYPE alert [<!ENTITY x "y">]>' + body
    latin1 = b'<?xml version="1.0" encoding="ISO-8859-1"?>' + body.replace(b"Homeland", b"H\xe9")
    for document in (doctype, latin1):
        assert_error(await h.http.post("/notices/cap", content=document, headers=EDITOR), 422)

    long_field = groups_csv([{"group_id": "1", "name": "x" * 200_000, "ward": "dong-hai"}])
    assert_error(await h.http.post("/groups/import", content=long_field, headers=ADMIN), 422)
    nul = groups_csv([{"group_id": "1", "name": "a\x00b", "ward": "dong-hai", "channel": "oa"}])
    assert_error(await h.http.post("/groups/import", content=nul, headers=ADMIN), 422)


async def test_bodies_and_headers_are_limited(broadcast) -> None:
    h = await broadcast(workers=False)
    big = b"{" + b" " * (1024 * 1024) + b"}"
    headers = EDITOR | {"Content-Type": "application/json"}
    assert_error(await h.http.post("/notices", content=big, headers=headers), 413)
    streamed = await h.http.post("/notices", content=chunks(2 * 1024 * 1024), headers=headers)
    assert_error(streamed, 413)
    cap = await h.http.post("/notices/cap", content=chunks(600 * 1024), headers=EDITOR)
    assert_error(cap, 413)
    assert_error(await h.http.get("/groups", headers=EDITOR | {"X-Big": "x" * 40_000}), 431)
    # the registry may be larger than 1 MiB (a city's CSV)
    rows = [
        {"group_id": f"9{n:08d}", "name": "Tổ " + "x" * 100, "ward": "dong-hai"}
        for n in range(9000)
    ]
    csv = groups_csv([r | {"channel": "oa"} for r in rows])
    assert len(csv) > 1024 * 1024
    imported = await h.http.post("/groups/import", content=csv, headers=ADMIN)
    assert imported.status_code == 200, imported.text[:300]


async def test_error_responses_are_documented(broadcast) -> None:
    h = await broadcast(workers=False)
    spec = (await h.http.get("/openapi.json")).json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status in ("401", "403", "404", "409", "413", "422"):
                ref = operation["responses"][status]["content"]["application/json"]["schema"]
                assert ref["$ref"].endswith("/ErrorBody"), (method, path, status)
