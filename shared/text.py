"""Outside text made safe: phone numbers masked, control characters removed for screens,
and input that cannot be stored or shown refused at the edge (`SafeText`, `SafeLine`).

Pure functions; every service that shows, streams or accepts outside text uses these.
"""

import re
import unicodedata
from typing import Annotated

from pydantic import AfterValidator

PHONE_MASK = "[số điện thoại]"

# Digit runs, and what may separate the groups of one number: anything that is neither a
# letter nor a digit (spaces, dots, dashes, slashes, underscores, brackets...), at most 3 of
# them. People write "0912  345 678", "0912/345/678", "(0912) 345 678", "0912 - 345 - 678".
_DIGITS = re.compile(r"[0-9]+")
_MAX_GAP = 3


def _ascii_digits(text: str) -> str:
    """NFKC (full-width "０９１２" and other compatibility forms become ASCII), then every other
    decimal digit (Arabic-Indic, Devanagari...) as its ASCII digit."""
    folded = unicodedata.normalize("NFKC", text)
    if folded.isascii():
        return folded
    return "".join(str(unicodedata.decimal(ch)) if ch.isdecimal() else ch for ch in folded)


def is_phone_number(digits: str) -> bool:
    """A Vietnamese number once its separators are gone: mobiles 0xxx xxx xxx (10 digits),
    landlines 02xx xxxx xxx (11), old 11-digit mobiles 01xx; written with 0, 84, +84 or 0084."""
    if digits.startswith("0084"):
        digits = "0" + digits[4:]
    elif digits.startswith("84") and len(digits) in (11, 12):
        digits = "0" + digits[2:]
    return len(digits) in (10, 11) and digits[0] == "0" and digits[1] != "0"


def _joined(text: str, end: int, start: int) -> bool:
    gap = text[end:start]
    return len(gap) <= _MAX_GAP and not any(ch.isalnum() for ch in gap)


def _chains(text: str) -> list[list[re.Match[str]]]:
    """Digit runs grouped into chains: runs separated only by a short non-alphanumeric gap."""
    chains: list[list[re.Match[str]]] = []
    for run in _DIGITS.finditer(text):
        if chains and _joined(text, chains[-1][-1].end(), run.start()):
            chains[-1].append(run)
        else:
            chains.append([run])
    return chains


def _phone_spans(chain: list[re.Match[str]]) -> list[tuple[int, int]]:
    """The spans of a chain that are phone numbers: from each run, the longest stretch of runs
    whose digits make a number (a number can follow a house number: "số 12 0912 345 678")."""
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(chain):
        digits, found = "", -1
        for j in range(i, len(chain)):
            digits += chain[j].group()
            if len(digits) > 14:
                break
            if is_phone_number(digits):
                found = j
        if found >= 0:
            spans.append((chain[i].start(), chain[found].end()))
            i = found + 1
        else:
            i += 1
    return spans


def mask_phones(text: str) -> str:
    """The text (NFKC-normalized) with every phone number replaced by PHONE_MASK, whatever its
    separators or digit forms. A "+" or "(" right before a number goes with it."""
    text = _ascii_digits(text)
    out: list[str] = []
    last = 0
    for chain in _chains(text):
        for start, end in _phone_spans(chain):
            while start > last and text[start - 1] in "+(":
                start -= 1
            out += [text[last:start], PHONE_MASK]
            last = end
    out.append(text[last:])
    return "".join(out)


def strip_controls(text: str, keep_newlines: bool = True) -> str:
    """Text without C0/C1 control characters (ESC sequences, OSC 52 clipboard writes, bells,
    carriage returns that overwrite a line), nor the bidi overrides that reorder what a
    terminal shows. Newlines (and tabs, as a space) stay when `keep_newlines`."""
    kept: list[str] = []
    for ch in text:
        if ch == "\n" and keep_newlines:
            kept.append(ch)
        elif ch == "\t":
            kept.append(" ")
        elif unicodedata.category(ch) in ("Cc", "Cs") or ch in _BIDI_CONTROLS:
            continue
        else:
            kept.append(ch)
    return "".join(kept)


_BIDI_CONTROLS = frozenset("\u200e\u200f\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")


def check_text(value: str, multiline: bool = True) -> str:
    """For input models: refuse what cannot be stored or shown safely (a pydantic validator,
    so the answer is 422 naming the field). Lone surrogates cannot be encoded as UTF-8 (BSON,
    NATS, XML all fail later, and forever); control characters break CAP's XML 1.0 and
    terminals. Newlines and tabs are text when `multiline`."""
    allowed = "\n\t\r" if multiline else ""
    for ch in value:
        code = ord(ch)
        if 0xD800 <= code <= 0xDFFF:
            raise ValueError("chứa ký tự UTF-16 lẻ (surrogate) không hợp lệ")
        if (code < 0x20 or 0x7F <= code <= 0x9F) and ch not in allowed:
            raise ValueError(f"chứa ký tự điều khiển U+{code:04X}")
    return value


def _check_line(value: str) -> str:
    return check_text(value, multiline=False)


SafeText = Annotated[str, AfterValidator(check_text)]
SafeLine = Annotated[str, AfterValidator(_check_line)]
