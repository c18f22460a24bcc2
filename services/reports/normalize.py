"""The two spellings the classifier reads a message in.

`raw` is the text as typed (NFC, lower case, digits collapsed); `folded` drops the diacritics
and rewrites teencode, abbreviations and central dialect to standard words, so "ck e dang danh
vk", "chồng em đang đánh vợ" and "chồng tui chừ đang đánh vợ" share most of their features.
"""

import re
import unicodedata
from collections.abc import Mapping
from functools import lru_cache

from shared.places.text import fold, raw_words, tone_key

_DIGITS = re.compile(r"\d+")
_WORD = re.compile(r"\w+")
CACHE_SIZE = 1 << 16  # distinct words remembered (a flood of new words clears the cache)


class Normalizer:
    """Abbreviations apply to words typed without marks ("ko", "dc"); dialect words to words
    typed with the same marks ("mô" is "đâu", while "mo" stays as typed)."""

    def __init__(self, abbreviations: Mapping[str, str], dialect: Mapping[str, str]) -> None:
        self.abbreviations = dict(abbreviations)
        self.dialect = dict(dialect)
        self._plain = {fold(k): _folded_words(v) for k, v in abbreviations.items()}
        # Abbreviations written with marks ("bít", "đc") match only as typed, like dialect words.
        marked = {k: v for k, v in abbreviations.items() if tone_key(k) != fold(k)} | dict(dialect)
        self._marked = {tone_key(k): _folded_words(v) for k, v in marked.items()}
        self._words: dict[str, list[str]] = {}  # each typed word's standard words, once

    def raw(self, text: str) -> str:
        """Lower case with every number written as 0 (amounts and times vary, words do not)
        and each tone mark moved to the end of its word, so NFC or NFD and either placement
        ("hoà", "hòa") give the same features; punctuation and emoji stay."""
        text = _DIGITS.sub("0", unicodedata.normalize("NFC", text.lower()))
        return " ".join(_raw_piece(piece) for piece in text.split())

    def folded(self, text: str) -> str:
        """Folded words with abbreviations and dialect words replaced by standard ones."""
        out: list[str] = []
        for word in raw_words(_DIGITS.sub(" 0 ", text)):
            known = self._words.get(word)
            if known is None:
                known = self._standard(word)
                if len(self._words) >= CACHE_SIZE:
                    self._words.clear()
                self._words[word] = known
            out.extend(known)
        return " ".join(out)

    def _standard(self, word: str) -> list[str]:
        key, plain = _forms(word)
        if key in self._marked:
            return self._marked[key]
        if key == plain and plain in self._plain:
            return self._plain[plain]
        return [plain]


@lru_cache(maxsize=CACHE_SIZE)
def _raw_piece(piece: str) -> str:
    """One whitespace-separated piece with each word's tone mark moved to its end (pieces
    repeat across messages: each is computed once)."""
    return _WORD.sub(lambda m: _forms(m.group(0))[0], piece)


@lru_cache(maxsize=CACHE_SIZE)
def _forms(word: str) -> tuple[str, str]:
    """A word's tone key and folded form; words repeat across messages, so they are kept."""
    return tone_key(word), fold(word)


def _folded_words(text: str) -> list[str]:
    return [fold(word) for word in raw_words(text)]
