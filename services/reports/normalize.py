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

    def raw(self, text: str) -> str:
        """Lower case with every number written as 0 (amounts and times vary, words do not)
        and each tone mark moved to the end of its word, so NFC or NFD and either placement
        ("hoà", "hòa") give the same features; punctuation and emoji stay."""
        text = _DIGITS.sub("0", unicodedata.normalize("NFC", text.lower()))
        return " ".join(_WORD.sub(lambda m: _forms(m.group(0))[0], text).split())

    def folded(self, text: str) -> str:
        """Folded words with abbreviations and dialect words replaced by standard ones."""
        out: list[str] = []
        for word in raw_words(_DIGITS.sub(" 0 ", text)):
            key, plain = _forms(word)
            if key in self._marked:
                out.extend(self._marked[key])
            elif key == plain and plain in self._plain:
                out.extend(self._plain[plain])
            else:
                out.append(plain)
        return " ".join(out)


@lru_cache(maxsize=1 << 16)
def _forms(word: str) -> tuple[str, str]:
    """A word's tone key and folded form; words repeat across messages, so they are kept."""
    return tone_key(word), fold(word)


def _folded_words(text: str) -> list[str]:
    return [fold(word) for word in raw_words(text)]
