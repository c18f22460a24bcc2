"""Term matching on Vietnamese text typed with, without or with half of its diacritics.

A term matches where the folded words agree and every word the user typed *with* marks also
has the term's marks (tone placement aside). So "chay nha" matches "cháy nhà", while a user who
wrote "chạy" does not hit "cháy". Teencode and abbreviations are expanded first.
"""

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from functools import lru_cache

from shared.places.text import fold, raw_words, tone_key


@dataclass(frozen=True)
class Token:
    folded: str
    keyed: str  # tone_key of what was typed; equal to `folded` when typed without marks

    @property
    def is_plain(self) -> bool:
        return self.keyed == self.folded


@dataclass(frozen=True)
class Term:
    text: str  # as written in the rules file
    group: str  # category, kind or signal the term belongs to
    weight: float
    keyed: tuple[str, ...]
    folded: tuple[str, ...]


@dataclass(frozen=True)
class Hit:
    term: Term
    start: int


def tokenize(text: str, abbreviations: Mapping[str, str]) -> list[Token]:
    """Words of the text, with abbreviations typed without marks expanded."""
    tokens: list[Token] = []
    for word in raw_words(text):
        tokens.extend(_word_tokens(word, abbreviations))
    return tokens


class Tokenizer:
    """`tokenize` with one abbreviation table and each word's tokens kept (the hot path)."""

    def __init__(self, abbreviations: Mapping[str, str]) -> None:
        self.abbreviations = dict(abbreviations)
        self._words: dict[str, list[Token]] = {}

    def __call__(self, text: str) -> list[Token]:
        tokens: list[Token] = []
        for word in raw_words(text):
            known = self._words.get(word)
            if known is None:
                known = _word_tokens(word, self.abbreviations)
                if len(self._words) >= 1 << 16:
                    self._words.clear()  # a flood of new words must not grow memory
                self._words[word] = known
            tokens.extend(known)
        return tokens


def _word_tokens(word: str, abbreviations: Mapping[str, str]) -> list[Token]:
    folded, keyed = _forms(word)
    expansion = abbreviations.get(folded) if keyed == folded else None
    if expansion is None:
        return [Token(folded, keyed)]
    return [Token(fold(part), fold(part)) for part in expansion.split()]


@lru_cache(maxsize=1 << 16)
def _forms(word: str) -> tuple[str, str]:
    """Folded and tone-keyed forms of a word (words repeat: computed once each)."""
    return fold(word), tone_key(word)


def make_term(text: str, group: str, weight: float = 1.0) -> Term:
    words = raw_words(text)
    return Term(
        text=text,
        group=group,
        weight=weight,
        keyed=tuple(tone_key(w) for w in words),
        folded=tuple(fold(w) for w in words),
    )


class Lexicon:
    """A set of terms matched longest-first without overlap, so "đổ trộm" (dumping) hides
    the "trộm" (theft) inside it."""

    def __init__(self, terms: Iterable[Term]) -> None:
        self._by_folded: dict[tuple[str, ...], list[Term]] = {}
        for term in terms:
            if term.folded:
                self._by_folded.setdefault(term.folded, []).append(term)
        self._longest = max((len(key) for key in self._by_folded), default=0)
        # Most words start no term: one set lookup skips them (the scan is on the hot path).
        self._first_words = {key[0] for key in self._by_folded}

    def scan(self, tokens: list[Token]) -> list[Hit]:
        hits: list[Hit] = []
        folded = [t.folded for t in tokens]
        i = 0
        while i < len(tokens):
            if folded[i] not in self._first_words:
                i += 1
                continue
            term = self._longest_at(tokens, folded, i)
            if term is None:
                i += 1
                continue
            hits.append(Hit(term, i))
            i += len(term.folded)
        return hits

    def _longest_at(self, tokens: list[Token], folded: list[str], start: int) -> Term | None:
        for size in range(min(self._longest, len(tokens) - start), 0, -1):
            candidates = self._by_folded.get(tuple(folded[start : start + size]))
            if not candidates:
                continue
            window = tokens[start : start + size]
            for term in candidates:
                if all(t.is_plain or t.keyed == k for t, k in zip(window, term.keyed, strict=True)):
                    return term
        return None
