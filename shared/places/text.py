"""Vietnamese text folding: one key for a name with or without diacritics.

NFC and NFD input, both tone-mark placements (hoà / hòa) and upper or lower case all fold
to the same lowercase ASCII form, so matching works on what people actually type.
"""

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+")
_RAW_WORD = re.compile(r"\w+")
# The five tone marks; circumflex, breve and horn shape the vowel and are kept by `tone_key`.
_TONES = frozenset("\u0300\u0301\u0303\u0309\u0323")


def fold(text: str) -> str:
    """Lowercase ASCII with diacritics removed and `đ` → `d` ("Hoà" and "hòa" → "hoa")."""
    decomposed = unicodedata.normalize("NFD", text.lower())
    stripped = "".join(ch for ch in decomposed if not unicodedata.combining(ch))
    return stripped.replace("đ", "d")


def words(text: str) -> list[str]:
    """The folded words of a text, punctuation dropped."""
    return _WORD.findall(fold(text))


def fold_phrase(text: str) -> str:
    """Folded words joined by single spaces: the key used to compare names and phrases."""
    return " ".join(words(text))


def slugify(text: str) -> str:
    """The ASCII kebab-case slug of a name ("Đức Ninh Đông" → "duc-ninh-dong")."""
    return "-".join(words(text))


def tone_key(word: str) -> str:
    """A lowercase word with its tone mark moved to the end, so "hoà" and "hòa" are equal
    while "lửa" and "lừa" stay different."""
    decomposed = unicodedata.normalize("NFD", word.lower())
    tones = "".join(ch for ch in decomposed if ch in _TONES)
    base = "".join(ch for ch in decomposed if ch not in _TONES)
    return unicodedata.normalize("NFC", base) + tones


def raw_words(text: str) -> list[str]:
    """The words of a text as typed (NFC, lowercase), diacritics kept."""
    return _RAW_WORD.findall(unicodedata.normalize("NFC", text.lower()))
