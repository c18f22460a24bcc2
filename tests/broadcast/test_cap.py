from pathlib import Path

import pytest

from services.broadcast.cap import export_xml, parse_cap
from services.broadcast.domain import BroadcastError, MsgType
from tests.broadcast.builders import EDITOR
from tests.polling import eventually


def oasis_examples(test_data_dir: Path) -> list[Path]:
    return sorted((test_data_dir / "cap").glob("oasis-example*.xml"))


class TestParse:
    def test_round_trip_of_oasis_examples(self, test_data_dir: Path) -> None:
        examples = oasis_examples(test_data_dir)
        assert len(examples) == 4
        for path in examples:
            alert = parse_cap(path.read_bytes())
            again = parse_cap(export_xml(alert.tree))
            assert again == alert, path.name

    def test_mapping(self, test_data_dir: Path) -> None:
        amber = parse_cap((test_data_dir / "cap/oasis-example4.xml").read_bytes())
        assert amber.category == "wanted_missing"
        assert amber.headline == "Amber Alert in Los Angeles County"
        update = parse_cap((test_data_dir / "cap/oasis-example3.xml").read_bytes())
        assert update.msg_type == MsgType.UPDATE
        assert update.references[0].startswith("trinet@caltech.edu,TRI13970876.1")

    @pytest.mark.parametrize(
        ("mutate", "reason"),
        [
            (lambda x: x.replace(b"<urgency>Immediate", b"<urgency>Soon"), b"urgency"),
            (lambda x: x.replace(b"<status>Actual</status>", b""), b"status"),
            (lambda x: x[:-20], b"XML"),
        ],
    )
    def test_invalid_cap_names_the_reason(self, test_data_dir: Path, mutate, reason) -> None:
        raw = (test_data_dir / "cap/oasis-example1.xml").read_bytes()
        with pytest.raises(BroadcastError) as caught:
            parse_cap(mutate(raw))
        assert reason.decode() in caught.value.detail


@pytest.mark.integration
class TestCapApi:
    async def test_import_then_export(self, broadcast, test_data_dir: Path) -> None:
        h = await broadcast(workers=False)
        for path in oasis_examples(test_data_dir):
            raw = path.read_bytes()
            r = await h.http.post("/notices/cap", content=raw, headers=EDITOR)
            if parse_cap(raw).expires is not None:  # example 2 expired in 2003
                assert r.status_code == 422
                assert "hết hạn" in r.json()["detail"]
                continue
            assert r.status_code == 201, r.text
            notice = r.json()
            assert notice["status"] == "pending_approval"  # no ward of ours named: all groups
            exported = await h.http.get(f"/notices/{notice['id']}/cap", headers=EDITOR)
            assert exported.headers["content-type"].startswith("application/cap+xml")
            assert parse_cap(exported.content) == parse_cap(raw)

    async def test_own_notice_exports_valid_cap(self, broadcast) -> None:
        from tests.broadcast.builders import notice_body

        h = await broadcast()
        r = await h.http.post("/notices", json=notice_body(), headers=EDITOR)
        notice_id = r.json()["id"]

        async def dispatched():
            view = await h.http.get(f"/notices/{notice_id}", headers=EDITOR)
            return view.json()["notice"]["status"] == "dispatched"

        await eventually(dispatched)
        exported = await h.http.get(f"/notices/{notice_id}/cap", headers=EDITOR)
        alert = parse_cap(exported.content)
        assert alert.identifier == f"binhyen-{notice_id}"
        assert alert.headline == "Cảnh báo lừa đảo qua mạng"
        assert alert.areas == ("Phường/xã Đồng Hải, TP Đồng Hới",)

    async def test_invalid_cap_is_rejected(self, broadcast) -> None:
        h = await broadcast(workers=False)
        r = await h.http.post("/notices/cap", content=b"<alert/>", headers=EDITOR)
        assert r.status_code == 422
        assert "CAP" in r.json()["detail"]
