"""Triage of a citizen's message: kind, category and priority, each with its reasons.

The learned model (`model.py`) gives probabilities, the safety rules (`rules/safety.yaml`) name
danger happening now, and `decision.decide` turns both into the case's triage. The language
tables (abbreviations, dialect, stopwords) are data in `rules/triage.yaml`.
"""

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict

from services.reports.decision import Decision, decide, top_choices
from services.reports.lexicon import Lexicon, Token, Tokenizer, make_term
from services.reports.model import DEFAULT_MODEL_FILE, Prediction, TriageModel
from services.reports.safety import DEFAULT_SAFETY_FILE, SafetyRules
from shared.events.tips import Reason, TipCategory, TipKind, TipPriority

RULES_DIR = Path(__file__).resolve().parent / "rules"
DEFAULT_RULES_FILE = RULES_DIR / "triage.yaml"
REVIEW_RULE = "model.review"


class TriageRules(BaseModel):
    """The language tables, validated."""

    version: int
    abbreviations: dict[str, str]
    dialect: dict[str, str] = {}
    question_cues: list[str] = []
    stopwords: list[str] = []

    @classmethod
    def load(cls, path: Path = DEFAULT_RULES_FILE) -> "TriageRules":
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls.model_validate(raw)


class QuestionCues:
    """Whether a text asks something: a "?" or one of the rules' question words."""

    def __init__(self, cues: list[str]) -> None:
        self._lexicon = Lexicon(make_term(cue, "cue") for cue in cues)

    def asks(self, text: str, tokens: list[Token]) -> bool:
        return "?" in text or bool(self._lexicon.scan(tokens))


class Triage(BaseModel):
    """What triage decided about one text, and why."""

    model_config = ConfigDict(frozen=True)

    kind: TipKind
    category: TipCategory
    priority: TipPriority
    reasons: tuple[Reason, ...]

    @property
    def review(self) -> bool:
        return any(reason.rule == REVIEW_RULE for reason in self.reasons)


EMPTY = Triage(kind=TipKind.OTHER, category=TipCategory.OTHER, priority=TipPriority.LOW, reasons=())


class Triager:
    """The model, the safety rules and the language tables, ready to classify texts."""

    def __init__(self, rules: TriageRules, model: TriageModel, safety: SafetyRules) -> None:
        self.rules = rules
        self.model = model
        self.safety = safety
        self._tokenize = Tokenizer(rules.abbreviations)
        self._cues = QuestionCues(rules.question_cues)

    @classmethod
    def from_files(
        cls,
        rules_file: Path = DEFAULT_RULES_FILE,
        model_file: Path = DEFAULT_MODEL_FILE,
        safety_file: Path = DEFAULT_SAFETY_FILE,
    ) -> "Triager":
        return cls(
            TriageRules.load(rules_file),
            TriageModel.load(model_file),
            SafetyRules.from_file(safety_file),
        )

    def tokens(self, text: str) -> list[Token]:
        return self._tokenize(text)

    def classify(self, text: str) -> Triage:
        """Kind, category and priority of a text (an empty text is `other`, low)."""
        if not text.strip():
            return EMPTY
        prediction = self.model.predict(text)
        tokens = self.tokens(text)
        danger = self.safety.check(tokens)
        decision = decide(
            prediction.kind,
            prediction.category,
            prediction.priority,
            bool(danger),
            self.model.thresholds,
            asks=self._cues.asks(text, tokens),
        )
        reasons = self._model_reasons(decision, prediction) + danger
        return Triage(
            kind=decision.kind,
            category=decision.category,
            priority=decision.priority,
            reasons=tuple(reasons),
        )

    def _model_reasons(self, decision: Decision, prediction: Prediction) -> list[Reason]:
        evidence = self.model.evidence
        reasons = [
            Reason(rule="model.kind", term=term)
            for term in evidence(prediction, "kind", decision.kind)
        ]
        if decision.kind == TipKind.TIP:
            reasons += [
                Reason(rule="model.category", term=term)
                for term in evidence(prediction, "category", decision.category)
            ]
        if decision.urgent_by_model:
            reasons += [
                Reason(rule="model.priority", term=term)
                for term in evidence(prediction, "priority", TipPriority.URGENT)
            ]
        if decision.review:
            reasons.append(Reason(rule=REVIEW_RULE, term=top_choices(prediction.kind)))
            if decision.kind == TipKind.TIP:
                reasons.append(Reason(rule=REVIEW_RULE, term=top_choices(prediction.category)))
        return reasons
