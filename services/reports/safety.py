"""Safety rules: danger happening now raises a message to urgent, whatever the model says.

Recall first: a rule names the signals that must all be present and those that rule it out
(a past event, a hypothetical question). The rules are data (`rules/safety.yaml`).
"""

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field

from services.reports.lexicon import Lexicon, Token, make_term
from shared.events.tips import Reason

RULES_DIR = Path(__file__).resolve().parent / "rules"
DEFAULT_SAFETY_FILE = RULES_DIR / "safety.yaml"


class SafetyRule(BaseModel):
    model_config = ConfigDict(frozen=True, populate_by_name=True)

    name: str
    all_of: tuple[str, ...] = Field(alias="all")
    none_of: tuple[str, ...] = Field(default=(), alias="none")
    any_of: tuple[str, ...] = Field(default=(), alias="any")  # at least one, when given


class SafetyFile(BaseModel):
    version: int
    signals: dict[str, list[str]]
    rules: list[SafetyRule]

    @classmethod
    def load(cls, path: Path = DEFAULT_SAFETY_FILE) -> "SafetyFile":
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls.model_validate(raw)


class SafetyRules:
    """Compiled signals; `check` returns one reason per matched term of every rule that fires."""

    def __init__(self, spec: SafetyFile) -> None:
        self.rules = spec.rules
        # A term may belong to several signals ("đánh nhau" is violence and a fight); the
        # lexicon keeps one term per spelling and this map gives all its signals.
        self._signals: dict[str, set[str]] = {}
        for signal, terms in spec.signals.items():
            for term in terms:
                self._signals.setdefault(term, set()).add(signal)
        self._lexicon = Lexicon(make_term(term, term) for term in self._signals)
        for rule in spec.rules:
            unknown = {*rule.all_of, *rule.none_of, *rule.any_of} - spec.signals.keys()
            if unknown:
                raise ValueError(f"safety rule {rule.name} names unknown signals {sorted(unknown)}")

    @classmethod
    def from_file(cls, path: Path = DEFAULT_SAFETY_FILE) -> "SafetyRules":
        return cls(SafetyFile.load(path))

    def check(self, tokens: list[Token]) -> list[Reason]:
        terms = [hit.term.text for hit in self._lexicon.scan(tokens)]
        present = {signal for term in terms for signal in self._signals[term]}
        reasons: list[Reason] = []
        for rule in self.rules:
            if not _fires(rule, present):
                continue
            wanted = {*rule.all_of, *rule.any_of}
            reasons += [
                Reason(rule=f"safety.{rule.name}", term=term)
                for term in terms
                if self._signals[term] & wanted
            ]
        return reasons


def _fires(rule: SafetyRule, present: set[str]) -> bool:
    if not set(rule.all_of) <= present or present.intersection(rule.none_of):
        return False
    return not rule.any_of or bool(present.intersection(rule.any_of))
