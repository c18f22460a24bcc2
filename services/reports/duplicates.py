"""Is a new report the same incident as an open case? Text, place and time together."""

from collections.abc import Iterable
from datetime import timedelta

from services.reports.cases import Case
from shared.places.text import words

PLACE_BONUS = 0.2
CATEGORY_BONUS = 0.15


def content_words(text: str, stopwords: frozenset[str]) -> set[str]:
    return {w for w in words(text) if w not in stopwords and len(w) > 1}


def jaccard(left: set[str], right: set[str]) -> float:
    if not left or not right:
        return 0.0
    return len(left & right) / len(left | right)


def duplicate_score(new: Case, other: Case, stopwords: frozenset[str]) -> float:
    """0..1: word overlap of the two narratives plus bonuses for the same place and category."""
    score = jaccard(content_words(new.text, stopwords), content_words(other.text, stopwords))
    if set(new.places) & set(other.places):
        score += PLACE_BONUS
    if new.category == other.category and new.category != "other":
        score += CATEGORY_BONUS
    return min(score, 1.0)


def best_duplicate(
    new: Case,
    candidates: Iterable[Case],
    *,
    threshold: float,
    window: timedelta,
    stopwords: frozenset[str],
) -> tuple[Case, float] | None:
    """The most similar open case of another tipster within the window, if it is similar enough."""
    best: tuple[Case, float] | None = None
    for other in candidates:
        if other.id == new.id or other.tipster == new.tipster or not other.is_open:
            continue
        if abs(new.created_at - other.last_message_at) > window:
            continue
        if new.ward != other.ward and "unknown" not in (new.ward, other.ward):
            continue
        score = duplicate_score(new, other, stopwords)
        if score >= threshold and (best is None or score > best[1]):
            best = (other, score)
    return best
