"""`decision.decide`: the model's probabilities and the safety flag -> kind, category, priority."""

import pytest

from services.reports.decision import decide, top_choices
from services.reports.model import Thresholds
from shared.events.tips import TipCategory, TipKind, TipPriority

TH = Thresholds(other_confident=0.8, tip_floor=0.3, urgent=0.4, review_below=0.6)
THEFT = {c.value: 0.0 for c in TipCategory} | {"theft": 0.9, "robbery": 0.1}
CALM = {"urgent": 0.05, "high": 0.15, "normal": 0.7, "low": 0.1}


def kinds(tip: float, question: float, help_: float, other: float) -> dict[str, float]:
    return {"tip": tip, "question": question, "help": help_, "other": other}


class TestKind:
    def test_confident_other_opens_no_case(self) -> None:
        d = decide(kinds(0.05, 0.03, 0.02, 0.9), THEFT, CALM, False, TH)
        assert (d.kind, d.category, d.priority, d.review) == (
            TipKind.OTHER,
            TipCategory.OTHER,
            TipPriority.LOW,
            False,
        )

    def test_uncertain_other_becomes_a_case_for_review(self) -> None:
        d = decide(kinds(0.25, 0.1, 0.05, 0.6), THEFT, CALM, False, TH)
        assert (d.kind, d.review) == (TipKind.TIP, True)

    def test_plausible_tip_stays_a_tip(self) -> None:
        d = decide(kinds(0.35, 0.6, 0.03, 0.02), THEFT, CALM, False, TH)
        assert (d.kind, d.category, d.review) == (TipKind.TIP, TipCategory.THEFT, True)

    def test_confident_question_is_a_question_with_normal_priority(self) -> None:
        high = {"urgent": 0.1, "high": 0.8, "normal": 0.05, "low": 0.05}
        d = decide(kinds(0.1, 0.85, 0.03, 0.02), THEFT, high, False, TH)
        assert (d.kind, d.category, d.priority, d.review) == (
            TipKind.QUESTION,
            TipCategory.OTHER,
            TipPriority.NORMAL,
            False,
        )

    def test_danger_in_a_question_opens_an_urgent_tip_for_review(self) -> None:
        d = decide(kinds(0.2, 0.75, 0.03, 0.02), THEFT, CALM, True, TH)
        assert (d.kind, d.priority, d.review) == (TipKind.TIP, TipPriority.URGENT, True)

    def test_a_question_that_asks_nothing_is_a_tip_for_review(self) -> None:
        d = decide(kinds(0.2, 0.75, 0.03, 0.02), THEFT, CALM, False, TH, asks=False)
        assert (d.kind, d.category, d.review) == (TipKind.TIP, TipCategory.THEFT, True)

    def test_low_confidence_kind_is_marked_for_review(self) -> None:
        d = decide(kinds(0.1, 0.25, 0.5, 0.15), THEFT, CALM, False, TH)
        assert (d.kind, d.review) == (TipKind.HELP, True)


class TestPriority:
    def test_safety_rule_makes_a_calm_tip_urgent(self) -> None:
        d = decide(kinds(0.9, 0.05, 0.03, 0.02), THEFT, CALM, True, TH)
        assert (d.priority, d.urgent_by_model) == (TipPriority.URGENT, False)

    def test_model_alone_makes_urgent_from_the_threshold(self) -> None:
        risky = {"urgent": 0.45, "high": 0.5, "normal": 0.04, "low": 0.01}
        d = decide(kinds(0.9, 0.05, 0.03, 0.02), THEFT, risky, False, TH)
        assert (d.priority, d.urgent_by_model) == (TipPriority.URGENT, True)

    def test_below_the_threshold_the_likeliest_other_priority(self) -> None:
        d = decide(kinds(0.9, 0.05, 0.03, 0.02), THEFT, CALM, False, TH)
        assert d.priority == TipPriority.NORMAL

    @pytest.mark.parametrize(("danger", "expected"), [(True, "urgent"), (False, "normal")])
    def test_help_is_urgent_or_normal(self, danger: bool, expected: str) -> None:
        high = {"urgent": 0.1, "high": 0.8, "normal": 0.05, "low": 0.05}
        d = decide(kinds(0.05, 0.05, 0.88, 0.02), THEFT, high, danger, TH)
        assert (d.kind, d.priority) == (TipKind.HELP, expected)


def test_top_choices_lists_the_likeliest_first() -> None:
    assert top_choices(kinds(0.48, 0.41, 0.08, 0.03)) == "tip 0.48 · question 0.41 · help 0.08"
