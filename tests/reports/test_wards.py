"""`wards.ward_in_text`: the unit a text names, per docs/triage-labelling.md §7 (examples from
the guide, not from the corpus)."""

import pytest

from services.reports.wards import ward_in_text
from shared.places import DEFAULT_UNITS_FILE, DEMO_CROSSWALK_FILE, DEMO_PLACES_FILE, Gazetteer


@pytest.fixture(scope="module")
def both_sets() -> Gazetteer:
    """The 2025 wards in force, the former units resolving to them (the bench's setting)."""
    return Gazetteer.load(DEFAULT_UNITS_FILE, DEMO_CROSSWALK_FILE, DEMO_PLACES_FILE)


@pytest.mark.parametrize(
    ("text", "unit"),
    [
        ("Tôi ở Bắc Lý, hôm qua đi chợ ở Đức Ninh Đông bị móc túi", "duc-ninh-dong"),
        ("nhà tôi ở Phú Hải, tối qua trộm vô nhà", "phu-hai"),
        ("Giật xong chạy về hướng Bảo Ninh, ở ngã ba Phú Thượng", "phu-hai"),
        ("khu Tây Bắc Nam Lý, giờ thuộc phường Đồng Hới", "nam-ly"),
        ("Phường Đồng Thuận mình có ai bị gọi điện giả danh bên điện lực không", "dong-thuan"),
        ("Cháy ở chợ phường Đồng Sơn mới, sau sáp nhập", "dong-son-2025"),
        ("Trộm xe ở tổ 3 Đồng Sơn tối qua", "dong-son"),
        ("RƯỢT CHÉM NGƯỜI Ở CỪA!!!", "quang-phu"),
        ("Mấy thằng xăm trổ xuống chợ Cừa thu tiền", "quang-phu"),
        ("Có hai thanh niên lạ nhìn vào từng nhà ở Diêm Điền", "dong-hai"),
        ("Có người đuối nước ở biển Nhật Lệ!!", "hai-thanh"),
        ("phường đồng hới có làm căn cước thứ bảy không", "dong-hoi"),
    ],
)
def test_the_unit_named(both_sets: Gazetteer, text: str, unit: str) -> None:
    found = ward_in_text(both_sets, text)
    assert found is not None
    assert found.unit == unit


@pytest.mark.parametrize(
    "text",
    [
        "Có người nhảy xuống sông từ cầu Nhật Lệ",  # the bridge, not the beach
        "Trời Đồng Hới hôm ni nóng như lửa đốt",  # the city, not the ward
        "tụi nó chạy về hướng Bảo Ninh",  # a direction
        "Có hai thanh niên lạ đi xe không biển",  # two youths, not Hải Thành
    ],
)
def test_no_unit(both_sets: Gazetteer, text: str) -> None:
    assert ward_in_text(both_sets, text) is None


def test_routing_ward_is_current_in_the_deployments_set() -> None:
    former = Gazetteer.load(DEFAULT_UNITS_FILE, None, DEMO_PLACES_FILE)
    found = ward_in_text(former, "Cháy ở chợ phường Đồng Sơn mới")
    assert found is not None
    assert found.ward == "dong-son"  # without a crosswalk the new ward has no desk of its own
