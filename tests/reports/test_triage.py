import unicodedata

import pytest

from bench.triage import evaluate, load
from services.reports.triage import Triager
from shared.events.tips import TipCategory, TipKind, TipPriority


@pytest.fixture(scope="module")
def triager() -> Triager:
    return Triager.from_files()


class TestClassify:
    def test_tip_carries_category_priority_and_reasons(self, triager: Triager) -> None:
        result = triager.classify("Cướp có dao đang ở tiệm vàng đầu chợ, cứu với")
        assert (result.kind, result.category, result.priority) == (
            TipKind.TIP,
            TipCategory.ROBBERY,
            TipPriority.URGENT,
        )
        rules = {reason.rule for reason in result.reasons}
        assert "category.robbery" in rules
        assert any(rule.startswith("priority.") for rule in rules)

    @pytest.mark.parametrize(
        "text",
        [
            "Cháy nhà lớn, có người kẹt bên trong",
            "chay nha lon, co nguoi ket ben trong",
            "Cháy nhà lớn, có người kẹt bên trong".upper(),
        ],
    )
    def test_with_and_without_diacritics(self, triager: Triager, text: str) -> None:
        for form in ("NFC", "NFD"):
            result = triager.classify(unicodedata.normalize(form, text))
            assert (result.category, result.priority) == (TipCategory.FIRE, TipPriority.URGENT)

    def test_tone_mark_placement_does_not_matter(self, triager: Triager) -> None:
        old, new = (
            triager.classify("Cháy nhà, gọi cứu hoả"),
            triager.classify("Cháy nhà, gọi cứu hỏa"),
        )
        assert old == new

    def test_marks_that_were_typed_must_agree(self, triager: Triager) -> None:
        # "chạy" (run) is not "cháy" (fire) when the user typed the marks.
        result = triager.classify("Hai thanh niên chạy xe không biển lảng vảng quanh xóm")
        assert result.category == TipCategory.SUSPICIOUS
        assert result.priority != TipPriority.URGENT

    def test_teencode_is_expanded(self, triager: Triager) -> None:
        result = triager.classify("ck e dang danh vk con, ko ai can dc")
        assert result.category == TipCategory.DOMESTIC_VIOLENCE
        assert result.priority in (TipPriority.HIGH, TipPriority.URGENT)

    def test_longer_term_hides_the_shorter_one(self, triager: Triager) -> None:
        result = triager.classify("Có người đổ trộm rác ra bãi đất trống")
        assert result.category == TipCategory.PUBLIC_DISORDER

    def test_procedure_question(self, triager: Triager) -> None:
        result = triager.classify("Cho em hỏi làm căn cước gắn chip ở đâu ạ?")
        assert (result.kind, result.priority) == (TipKind.QUESTION, TipPriority.LOW)
        assert any(reason.rule == "kind.question" for reason in result.reasons)

    def test_help_request(self, triager: Triager) -> None:
        assert triager.classify("Con tôi đi lạc ở chợ, nhờ mọi người tìm giúp").kind == TipKind.HELP

    def test_empty_and_greeting_are_other(self, triager: Triager) -> None:
        assert triager.classify("").kind == TipKind.OTHER
        assert triager.classify("chào ad, cảm ơn").kind == TipKind.OTHER

    def test_past_event_is_not_urgent(self, triager: Triager) -> None:
        result = triager.classify("Tuần trước tôi bị đánh chảy máu đầu ở quán nhậu")
        assert result.priority == TipPriority.NORMAL


class TestLabeledSet:
    def test_set_is_large_and_covers_every_category(self) -> None:
        rows = load()
        assert len(rows) >= 150
        tip_categories = {row["category"] for row in rows if row["kind"] == "tip"}
        assert tip_categories == {c.value for c in TipCategory}
        assert {row["split"] for row in rows} == {"dev", "heldout"}

    def test_quality_targets_hold(self, triager: Triager) -> None:
        result = evaluate(triager, load())
        assert result["category_accuracy"] >= 0.90
        assert result["urgent_recall"] >= 0.95
