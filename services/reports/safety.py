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
        self._lexicon = Lexicon(
            make_term(term, signal) for signal, terms in spec.signals.items() for term in terms
        )
        for rule in spec.rules:
            unknown = {*rule.all_of, *rule.none_of, *rule.any_of} - spec.signals.keys()
            if unknown:
                raise ValueError(f"safety rule {rule.name} names unknown signals {sorted(unknown)}")

    @classmethod
    def from_file(cls, path: Path = DEFAULT_SAFETY_FILE) -> "SafetyRules":
        return cls(SafetyFile.load(path))

    def check(self, tokens: list[Token]) -> list[Reason]:
        hits = self._lexicon.scan(tokens)
        present = {hit.term.group for hit in hits}
        reasons: list[Reason] = []
        for rule in self.rules:
            if not _fires(rule, present):
                continue
            wanted = {*rule.all_of, *rule.any_of}
            reasons += [
                Reason(rule=f"safety.{rule.name}", term=hit.term.text)
                for hit in hits
                if hit.term.group in wanted
            ]
        return reasons


def _fires(rule: SafetyRule, present: set[str]) -> bool:
    if not set(rule.all_of) <= present or present.intersection(rule.none_of):
        return False
    return not rule.any_of or bool(present.intersection(rule.any_of))
