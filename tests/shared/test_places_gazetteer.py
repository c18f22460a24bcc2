import json
import unicodedata
from pathlib import Path

import pytest

from shared.places import (
    DEFAULT_UNITS_FILE,
    DEMO_CROSSWALK_FILE,
    DEMO_PLACES_FILE,
    SET_AFTER,
    SET_BEFORE,
    Gazetteer,
)


@pytest.fixture(scope="module")
def before() -> Gazetteer:
    return Gazetteer.load(DEFAULT_UNITS_FILE, extra_file=DEMO_PLACES_FILE)


@pytest.fixture(scope="module")
def after() -> Gazetteer:
    return Gazetteer.load(DEFAULT_UNITS_FILE, DEMO_CROSSWALK_FILE, DEMO_PLACES_FILE)


class TestUnitSets:
    def test_default_set_is_the_fifteen_former_units(self, before: Gazetteer) -> None:
        assert before.current_set == SET_BEFORE
        assert len(before.current_units()) == 15

    def test_crosswalk_makes_the_three_wards_current(self, after: Gazetteer) -> None:
        assert after.current_set == SET_AFTER
        assert {u.slug for u in after.current_units()} == {
            "dong-hoi",
            "dong-thuan",
            "dong-son-2025",
        }

    def test_demo_crosswalk_is_labelled_demo(self) -> None:
        raw = json.loads(DEMO_CROSSWALK_FILE.read_text(encoding="utf-8"))
        assert raw["demo"] is True
        assert "DEMO" in raw["notice"]


class TestResolve:
    def test_old_unit_name_resolves_to_its_current_ward(self, after: Gazetteer) -> None:
        assert after.resolve("phường Bắc Lý") == "dong-hoi"
        assert after.resolve("xa quang phu") == "dong-thuan"
        assert after.resolve("nghia-ninh") == "dong-son-2025"

    def test_former_unit_is_marked_as_such(self, after: Gazetteer) -> None:
        [match] = after.find("co trom o phuong Nam Ly")
        assert (match.ward, match.unit, match.via) == ("dong-hoi", "nam-ly", "former_unit")

    @pytest.mark.parametrize(
        "text", ["Đức Ninh Đông", "duc ninh dong", "ĐỨC NINH ĐÔNG", "P. Đức Ninh Đông"]
    )
    def test_spellings_resolve_alike(self, before: Gazetteer, text: str) -> None:
        assert before.resolve(text) == "duc-ninh-dong"
        assert before.resolve(unicodedata.normalize("NFD", text)) == "duc-ninh-dong"

    def test_longest_name_wins(self, before: Gazetteer) -> None:
        assert [m.unit for m in before.find("ở Đức Ninh Đông")] == ["duc-ninh-dong"]
        assert [m.unit for m in before.find("ở xã Đức Ninh")] == ["duc-ninh"]

    def test_same_name_in_two_sets_prefers_the_current_one(self, after: Gazetteer) -> None:
        assert after.resolve("Đồng Sơn") == "dong-son-2025"

    def test_new_ward_is_unknown_without_crosswalk(self, before: Gazetteer) -> None:
        assert before.resolve("phường Đồng Thuận") is None


class TestOperatorPlaces:
    def test_village_resolves_to_its_unit(self, before: Gazetteer) -> None:
        [match] = before.find("xe không biển lảng vảng đầu thôn Đức Điền")
        assert (match.ward, match.via) == ("duc-ninh", "place")

    def test_one_word_name_needs_its_kind(self, before: Gazetteer) -> None:
        assert before.find("bắt được con cua to") == []
        assert [m.ward for m in before.find("trộm chó ở xóm Cừa")] == ["quang-phu"]

    def test_place_in_unknown_unit_is_refused(self, tmp_path: Path) -> None:
        extra = tmp_path / "places.json"
        extra.write_text(json.dumps({"places": [{"name": "X Y", "kind": "thôn", "unit": "nope"}]}))
        with pytest.raises(ValueError, match="unknown unit"):
            Gazetteer.load(DEFAULT_UNITS_FILE, extra_file=extra)


class TestStatistics:
    def test_counts_roll_up_into_the_new_set(self, after: Gazetteer) -> None:
        counts = {"bac-ly": 2, "nam-ly": 3, "quang-phu": 1, "somewhere": 4}
        assert after.rollup(counts, SET_AFTER) == {"dong-hoi": 5, "dong-thuan": 1, "unknown": 4}

    def test_counts_stay_in_the_old_set(self, after: Gazetteer) -> None:
        assert after.rollup({"bac-ly": 2}, SET_BEFORE) == {"bac-ly": 2}


class TestLocation:
    def test_shared_location_goes_to_the_nearest_unit(self, before: Gazetteer) -> None:
        match = before.nearest(17.5149, 106.5951, max_km=3)
        assert match is not None
        assert (match.ward, match.via) == ("quang-phu", "location")

    def test_far_location_is_not_placed(self, before: Gazetteer) -> None:
        assert before.nearest(16.0, 108.0, max_km=3) is None

    def test_location_resolves_to_the_current_ward(self, after: Gazetteer) -> None:
        match = after.nearest(17.5149, 106.5951, max_km=3)
        assert match is not None
        assert (match.ward, match.unit) == ("dong-thuan", "quang-phu")
