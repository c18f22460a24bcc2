"""Triage of a citizen's message: kind, category and priority, each with its reasons.

The rules are data (`rules/triage.yaml`); this module only scores what they say.
"""

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from services.reports.lexicon import Hit, Lexicon, Token, make_term, tokenize
from shared.events.tips import Reason, TipCategory, TipKind, TipPriority

RULES_DIR = Path(__file__).resolve().parent / "rules"
DEFAULT_RULES_FILE = RULES_DIR / "triage.yaml"


class PriorityRule(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: str
    all_of: tuple[str, ...] = Field(alias="all")
    none_of: tuple[str, ...] = Field(default=(), alias="none")
    set: TipPriority


class CategoryRules(BaseModel):
    label: str
    terms: dict[str, float]


class TriageRules(BaseModel):
    """The rules file, validated."""

    version: int
    abbreviations: dict[str, str]
    kinds: dict[TipKind, dict[str, float]]
    kind_margin: dict[TipKind, float] = {}
    categories: dict[TipCategory, CategoryRules]
    signals: dict[str, dict[str, float]]
    priority_rules: list[PriorityRule]
    default_priority: dict[TipKind, TipPriority]
    stopwords: list[str] = []

    @classmethod
    def load(cls, path: Path = DEFAULT_RULES_FILE) -> "TriageRules":
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls.model_validate(raw)


class Triage(BaseModel):
    """What triage decided about one text, and why."""

    model_config = ConfigDict(frozen=True)

    kind: TipKind
    category: TipCategory
    priority: TipPriority
    reasons: tuple[Reason, ...]


@dataclass(frozen=True)
class _Scores:
    by_group: dict[str, float]
    hits: list[Hit]

    def best(self) -> tuple[str | None, float]:
        if not self.by_group:
            return None, 0.0
        group = max(self.by_group, key=lambda g: self.by_group[g])
        return group, self.by_group[group]

    def reasons(self, group: str, prefix: str) -> list[Reason]:
        return [Reason(rule=prefix, term=h.term.text) for h in self.hits if h.term.group == group]


class Triager:
    """Compiled rules, ready to classify texts."""

    def __init__(self, rules: TriageRules) -> None:
        self.rules = rules
        self._abbreviations = rules.abbreviations
        self._kinds = Lexicon(
            make_term(text, kind, weight)
            for kind, terms in rules.kinds.items()
            for text, weight in terms.items()
        )
        self._categories = Lexicon(
            make_term(text, category, weight)
            for category, spec in rules.categories.items()
            for text, weight in spec.terms.items()
        )
        self._signals = Lexicon(
            make_term(text, signal, weight)
            for signal, terms in rules.signals.items()
            for text, weight in terms.items()
        )

    @classmethod
    def from_file(cls, path: Path = DEFAULT_RULES_FILE) -> "Triager":
        return cls(TriageRules.load(path))

    def label(self, category: TipCategory) -> str:
        return self.rules.categories[category].label

    def tokens(self, text: str) -> list[Token]:
        return tokenize(text, self._abbreviations)

    def classify(self, text: str) -> Triage:
        """Kind, category and priority of a text (an empty text is `other`, low)."""
        tokens = self.tokens(text)
        categories = _score(self._categories, tokens)
        kinds = _score(self._kinds, tokens)
        category, category_score = categories.best()
        kind = self._kind(kinds, category_score, text)
        reasons = kinds.reasons(kind, f"kind.{kind}") if kind != TipKind.TIP else []
        if kind == TipKind.TIP:
            reasons += kinds.reasons(TipKind.TIP, "kind.tip")
        chosen = TipCategory(category) if category and kind == TipKind.TIP else TipCategory.OTHER
        if category and kind == TipKind.TIP:
            reasons += categories.reasons(category, f"category.{category}")
        priority, priority_reasons = self._priority(kind, tokens)
        return Triage(
            kind=kind,
            category=chosen,
            priority=priority,
            reasons=tuple(reasons + priority_reasons),
        )

    def _kind(self, kinds: _Scores, category_score: float, text: str) -> TipKind:
        tip_score = category_score + kinds.by_group.get(TipKind.TIP, 0.0)
        others = {kind: kinds.by_group.get(kind, 0.0) for kind in _NON_TIP}
        if "?" in text:
            others[TipKind.QUESTION] += 1.0
        contenders = {
            kind: score
            for kind, score in others.items()
            if score > 0 and score >= tip_score + self.rules.kind_margin.get(kind, 0.0)
        }
        if contenders:
            return max(contenders, key=lambda kind: contenders[kind])
        return TipKind.TIP if tip_score > 0 else TipKind.OTHER

    def _priority(self, kind: TipKind, tokens: list[Token]) -> tuple[TipPriority, list[Reason]]:
        default = self.rules.default_priority[kind]
        if kind not in (TipKind.TIP, TipKind.HELP):
            return default, []
        signals = _score(self._signals, tokens)
        present = {group for group, score in signals.by_group.items() if score > 0}
        for rule in self.rules.priority_rules:
            if set(rule.all_of) <= present and not present.intersection(rule.none_of):
                reasons = [
                    Reason(rule=f"priority.{rule.name}", term=h.term.text)
                    for h in signals.hits
                    if h.term.group in rule.all_of
                ]
                return _at_least(rule.set, default), reasons
        return default, []


_NON_TIP = (TipKind.QUESTION, TipKind.HELP, TipKind.OTHER)
_ORDER = [TipPriority.LOW, TipPriority.NORMAL, TipPriority.HIGH, TipPriority.URGENT]


def _at_least(priority: TipPriority, floor: TipPriority) -> TipPriority:
    return max(priority, floor, key=_ORDER.index)


def _score(lexicon: Lexicon, tokens: list[Token]) -> _Scores:
    hits = lexicon.scan(tokens)
    totals: dict[str, float] = defaultdict(float)
    for hit in hits:
        totals[hit.term.group] += hit.term.weight
    return _Scores(dict(totals), hits)
