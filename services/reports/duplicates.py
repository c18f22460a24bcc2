"""Is a new report the same incident as an open case? Text, place and time together."""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from services.reports.cases import Case
from shared.places import UNKNOWN_WARD
from shared.places.text import words

RECENT_LIMIT = 50  # duplicate candidates per ward (the most recent ones)
PLACE_BONUS = 0.2
CATEGORY_BONUS = 0.15


@dataclass(frozen=True)
class Fingerprint:
    """What duplicate detection compares, small enough to keep in a ward's recent list."""

    case_id: str
    tipster: str
    ward: str
    category: str
    places: frozenset[str]
    words: frozenset[str]
    at: datetime
    # Set for cases noted since the list dropped closed cases (`ReportsStore.forget_recent`):
    # such a candidate is open, and its code is here, so intake need not load its case.
    ref: str | None = None

    def to_document(self) -> dict[str, Any]:
        return {
            "case_id": self.case_id,
            "ref": self.ref,
            "tipster": self.tipster,
            "ward": self.ward,
            "category": str(self.category),
            # Joined strings, not arrays: far cheaper for FerretDB to store and decode.
            "places": " ".join(sorted(self.places)),
            "words": " ".join(sorted(self.words)),
            "at": self.at,
        }

    @classmethod
    def from_document(cls, doc: dict[str, Any]) -> "Fingerprint":
        return cls(
            case_id=doc["case_id"],
            tipster=doc["tipster"],
            ward=doc["ward"],
            category=doc["category"],
            places=frozenset(str(doc.get("places", "")).split()),
            words=frozenset(str(doc.get("words", "")).split()),
            at=doc["at"],
            ref=doc.get("ref"),
        )


def fingerprint(case: Case, stopwords: frozenset[str]) -> Fingerprint:
    return Fingerprint(
        case_id=case.id,
        tipster=case.tipster,
        ward=case.ward,
        category=str(case.category),
        places=frozenset(case.places),
        words=frozenset(content_words(case.text, stopwords)),
        at=case.last_message_at,
        ref=case.ref,
    )


def content_words(text: str, stopwords: frozenset[str]) -> set[str]:
    return {w for w in words(text) if w not in stopwords and len(w) > 1}


def jaccard(left: frozenset[str], right: frozenset[str]) -> float:
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def duplicate_score(new: Fingerprint, other: Fingerprint) -> float:
    """0..1: word overlap of the two narratives plus bonuses for the same place and category."""
    score = jaccard(new.words, other.words)
    if new.places & other.places:
        score += PLACE_BONUS
    if new.category == other.category and new.category != "other":
        score += CATEGORY_BONUS
    return min(score, 1.0)


def ranked_duplicates(
    new: Fingerprint, candidates: Iterable[Fingerprint], *, threshold: float, window: timedelta
) -> list[tuple[Fingerprint, float]]:
    """Cases of other tipsters within the window that look like the same incident, best first."""
    found = []
    for other in candidates:
        if other.case_id == new.case_id or other.tipster == new.tipster:
            continue
        if abs(new.at - other.at) > window:
            continue
        if new.ward != other.ward and UNKNOWN_WARD not in (new.ward, other.ward):
            continue
        score = duplicate_score(new, other)
        if score >= threshold:
            found.append((other, score))
    return sorted(found, key=lambda pair: pair[1], reverse=True)
