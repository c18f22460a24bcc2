"""Answers to citizens' questions from a small knowledge base kept as data."""

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from services.reports.lexicon import Lexicon, Token, make_term


class Entry(BaseModel):
    id: str
    terms: dict[str, float]
    answer: str


class KnowledgeFile(BaseModel):
    demo: bool = False
    min_score: float
    footer: str = ""
    entries: list[Entry]
    ward_phones: dict[str, str] = {}


class Answer(BaseModel):
    entry_id: str
    text: str
    score: float


class KnowledgeBase:
    """Scores each entry's terms against a question and answers with the best one."""

    def __init__(self, data: KnowledgeFile, ward_names: dict[str, str]) -> None:
        self.data = data
        self._ward_names = ward_names
        self._lexicons = {
            entry.id: Lexicon(make_term(t, entry.id, w) for t, w in entry.terms.items())
            for entry in data.entries
        }

    @classmethod
    def load(cls, path: Path, ward_names: dict[str, str]) -> "KnowledgeBase":
        raw: dict[str, Any] = yaml.safe_load(path.read_text(encoding="utf-8"))
        return cls(KnowledgeFile.model_validate(raw), ward_names)

    def answer(self, tokens: list[Token], wards: list[str]) -> Answer | None:
        """The best entry scoring at least `min_score`, or None (the question becomes a case)."""
        best: tuple[float, Entry] | None = None
        for entry in self.data.entries:
            score = sum(hit.term.weight for hit in self._lexicons[entry.id].scan(tokens))
            if score >= self.data.min_score and (best is None or score > best[0]):
                best = (score, entry)
        if best is None:
            return None
        score, entry = best
        text = entry.answer.replace("{ward_phones}", self._phones(wards))
        if self.data.footer:
            text = f"{text}\n{self.data.footer}"
        return Answer(entry_id=entry.id, text=text, score=score)

    def _phones(self, wards: list[str]) -> str:
        chosen = [w for w in wards if w in self.data.ward_phones] or [
            w for w in self._ward_names if w in self.data.ward_phones
        ]
        return "; ".join(
            f"{self._ward_names.get(w, w)}: {self.data.ward_phones[w]}" for w in chosen
        )
