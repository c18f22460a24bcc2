"""Vietnamese text folding: one key for a name with or without diacritics.

NFC and NFD input, both tone-mark placements (hoà / hòa) and upper or lower case all fold
to the same lowercase ASCII form, so matching works on what people actually type.
"""

import re
import unicodedata

_WORD = re.compile(r"[a-z0-9]+")


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
