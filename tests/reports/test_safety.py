"""Safety rules (`rules/safety.yaml`): one test per rule, and the words that must not fire."""

import pytest

from services.reports.lexicon import tokenize
from services.reports.safety import SafetyFile, SafetyRules
from services.reports.triage import TriageRules

RULES = TriageRules.load()

# One message per rule, in the styles residents use; each must fire exactly its rule's name.
FIRES = {
    "weapon_now": "Thằng nớ đang cầm mã tấu đứng trước quán, ai cũng sợ",
    "violence_now": "hai nhom thanh nien dang danh nhau o cho, toi ngay",
    "fight": "ĐÁNH NHAU Ở BẮC NGHĨA!!!",
    "injury": "Tai nạn ở ngã tư, người đi xe máy nằm chảy máu nhiều lắm",
    "child_at_risk": "Có người lạ đứng cổng trường mầm non cho kẹo dụ dỗ mấy bé",
    "missing_person": "Mệ nhà choa bị lẫn, đi ra khỏi nhà từ trưa tới chừ nỏ thấy về",
    "intruder_inside": "Cứu, có trộm đang ở trong nhà, em trốn trên gác",
    "fire": "CHÁY NHÀ Ở BẢO NINH!!!",
    "money_transfer": "Mạ em đang nghe điện thoại viện kiểm sát bảo ra ngân hàng chuyển tiền",
    "scam_call_now": "mẹ e đang nói chuyện vs 1 ng xưng là công an, bắt ko dc tắt máy",
    "suicide_threat": "Cháu tui nhắn là muốn chết, đang đứng trên cầu",
}


@pytest.fixture(scope="module")
def safety() -> SafetyRules:
    return SafetyRules.from_file()


def fired(safety: SafetyRules, text: str) -> set[str]:
    return {
        r.rule.removeprefix("safety.") for r in safety.check(tokenize(text, RULES.abbreviations))
    }


def test_every_rule_in_the_file_has_a_test() -> None:
    assert {rule.name for rule in SafetyFile.load().rules} == set(FIRES)


@pytest.mark.parametrize("rule", sorted(FIRES))
def test_rule_fires_on_its_message(safety: SafetyRules, rule: str) -> None:
    assert rule in fired(safety, FIRES[rule])


def test_reasons_name_the_matched_terms(safety: SafetyRules) -> None:
    reasons = safety.check(tokenize(FIRES["fire"], RULES.abbreviations))
    assert [(r.rule, r.term) for r in reasons] == [("safety.fire", "cháy nhà")]


@pytest.mark.parametrize(
    "text",
    [
        "Tối qua có đứa cầm dao dọa chủ quán rồi bỏ đi",  # past: high, not urgent
        "Cho hỏi bị lừa đảo qua mạng thì báo ở đâu",  # "đảo" is not a knife ("dao")
        "lua dao qua mang thi bao o dau",  # the same without marks
        "Tháng ni cháy túi rồi bà con ơi",  # figurative
        "Xóm tui tối mô cũng đánh bài tới khuya",  # gambling, not a beating
        "Hai thanh niên chạy xe lòng vòng trong xóm",  # "chạy" typed with marks is not "cháy"
        "Cảm ơn công an phường đã hỗ trợ",  # "cảm" is not "cầm"
        "Sáng nay mất xe ở chợ, hôm nay chưa tìm được",  # "nay" is not "nãy" (just now)
        "Nhà tôi có con dao mới mua ở chợ",  # a knife, no violence, nothing happening
        "Con chó nhà tôi chạy ra khỏi nhà chưa về",  # missing, but not a child or elderly
        "Cho hỏi học sinh đánh nhau gây thương tích thì xử lý thế nào?",  # a question
        "Cho hỏi nếu lỡ bị lừa chuyển khoản thì cần chuẩn bị giấy tờ gì?",  # hypothetical
    ],
)
def test_does_not_fire(safety: SafetyRules, text: str) -> None:
    assert fired(safety, text) == set()


def test_unknown_signal_in_a_rule_is_refused() -> None:
    spec = SafetyFile.model_validate(
        {"version": 1, "signals": {"now": ["đang"]}, "rules": [{"name": "x", "all": ["fire"]}]}
    )
    with pytest.raises(ValueError, match="unknown signals"):
        SafetyRules(spec)
