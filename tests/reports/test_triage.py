"""`Triager`: the model, the safety rules and the decision together, with the reasons a
dispatcher reads; then the shipped model on the labelling guide's own examples."""

import math

import numpy as np
import pytest

from services.reports.features import FeatureExtractor
from services.reports.model import Head, Thresholds, TriageModel
from services.reports.normalize import Normalizer
from services.reports.safety import SafetyRules
from services.reports.triage import REVIEW_RULE, Triager, TriageRules
from shared.events.tips import TipCategory, TipKind, TipPriority

RULES = TriageRules.load()
SAFETY = SafetyRules.from_file()


def constant_head(probabilities: dict[str, float]) -> Head:
    """A head without features whose calibrated output is `probabilities` for every text."""
    classes = tuple(probabilities)
    # The calibrator is 1 / (1 + exp(a * score + b)); with a = -1 and b = 0 it is the logistic
    # of the intercept, so the intercept is the logit of each probability.
    logits = [math.log(p / (1 - p)) for p in probabilities.values()]
    return Head(
        classes=classes,
        weights=np.zeros((0, len(classes)), np.float32),
        intercept=np.array(logits, np.float32),
        cal_a=np.full(len(classes), -1.0, np.float32),
        cal_b=np.zeros(len(classes), np.float32),
    )


def triager_saying(kind: dict[str, float], priority: dict[str, float] | None = None) -> Triager:
    heads = {
        "kind": constant_head(kind),
        "category": constant_head({"theft": 0.7, "robbery": 0.2, "fraud": 0.1}),
        "priority": constant_head(priority or {"urgent": 0.05, "high": 0.15, "normal": 0.8}),
    }
    normalizer = Normalizer(RULES.abbreviations, RULES.dialect)
    model = TriageModel(FeatureExtractor([], normalizer), heads, Thresholds(), {})
    return Triager(RULES, model, SAFETY)


class TestTriager:
    def test_empty_text_is_other_without_reasons(self) -> None:
        result = triager_saying({"tip": 0.9, "other": 0.1}).classify("  ")
        assert (result.kind, result.priority, result.reasons) == (
            TipKind.OTHER,
            TipPriority.LOW,
            (),
        )

    def test_uncertain_message_is_a_case_with_the_models_top_choices(self) -> None:
        unsure = {"tip": 0.2, "question": 0.1, "help": 0.1, "other": 0.6}
        result = triager_saying(unsure).classify("ờ thì cũng không biết nói sao")
        assert result.kind == TipKind.TIP
        assert result.review
        terms = [r.term for r in result.reasons if r.rule == REVIEW_RULE]
        assert terms[0].startswith("other 0.60 · tip 0.20")
        assert terms[1].startswith("theft 0.70")

    def test_confident_chat_opens_nothing(self) -> None:
        sure = {"tip": 0.02, "question": 0.02, "help": 0.01, "other": 0.95}
        result = triager_saying(sure).classify("chúc cả nhà buổi tối vui vẻ")
        assert (result.kind, result.review) == (TipKind.OTHER, False)

    @pytest.mark.parametrize(
        ("text", "kind"),
        [
            ("Tố giác: có đối tượng bán ma tuý ở quán nước đầu ngõ", TipKind.TIP),
            ("Bán ma tuý bị phạt bao nhiêu năm?", TipKind.QUESTION),
            ("cho em hoi lam can cuoc", TipKind.QUESTION),
        ],
    )
    def test_a_question_must_ask(self, text: str, kind: TipKind) -> None:
        asking = {"tip": 0.2, "question": 0.75, "help": 0.03, "other": 0.02}
        assert triager_saying(asking).classify(text).kind == kind

    def test_safety_rule_overrides_a_calm_model_and_says_why(self) -> None:
        calm = {"tip": 0.9, "question": 0.05, "help": 0.03, "other": 0.02}
        result = triager_saying(calm).classify("CHÁY NHÀ Ở BẢO NINH!!!")
        assert result.priority == TipPriority.URGENT
        assert ("safety.fire", "cháy nhà") in {(r.rule, r.term) for r in result.reasons}


@pytest.fixture(scope="module")
def shipped() -> Triager:
    return Triager.from_files()


# Examples printed in docs/triage-labelling.md (the guide, not the corpus).
GUIDE = [
    ("Thằng nớ cầm dao rượt người ngoài chợ Cừa, cứu với!", "tip", "violence", "urgent"),
    (
        'Mạ em đang nghe điện thoại "công an" bảo ra ngân hàng chuyển tiền, giờ mạ đang đi!',
        "tip",
        "fraud",
        "urgent",
    ),
    ("Tối qua nhà tôi ở Bắc Nghĩa bị mất xe đạp điện", "tip", "theft", "normal"),
    ("Mất căn cước thì làm lại ở đâu ạ?", "question", "other", "normal"),
    ("Có người đuối nước ở biển Nhật Lệ!!", "help", "other", "urgent"),
]


class TestShippedModel:
    @pytest.mark.parametrize(("text", "kind", "category", "priority"), GUIDE)
    def test_guide_examples(
        self, shipped: Triager, text: str, kind: str, category: str, priority: str
    ) -> None:
        result = shipped.classify(text)
        assert (result.kind, result.category, result.priority) == (kind, category, priority)

    def test_reasons_name_the_models_evidence(self, shipped: Triager) -> None:
        result = shipped.classify("Tối qua nhà tôi ở Bắc Nghĩa bị mất xe đạp điện")
        rules = {r.rule for r in result.reasons}
        assert {"model.kind", "model.category"} <= rules

    def test_figurative_fire_is_not_urgent(self, shipped: Triager) -> None:
        result = shipped.classify("Tháng ni cháy túi rồi bà con ơi 😭")
        assert result.priority != TipPriority.URGENT
        assert result.category != TipCategory.FIRE
