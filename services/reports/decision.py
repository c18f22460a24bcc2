"""From the model's probabilities and the safety rules to kind, category and priority.

Pure and table-tested. The asymmetry is deliberate: losing a tip costs more than a dispatcher
reading a question, so "other" (no case) needs confidence, a plausible tip stays a tip, and a
safety rule makes a message urgent whatever the probabilities say.
"""

from collections.abc import Mapping
from dataclasses import dataclass

from services.reports.model import Thresholds
from shared.events.tips import TipCategory, TipKind, TipPriority

Probabilities = Mapping[str, float]


@dataclass(frozen=True)
class Decision:
    kind: TipKind
    category: TipCategory
    priority: TipPriority
    review: bool  # uncertain: the case is marked for a dispatcher to check the model's choices
    urgent_by_model: bool


def decide(
    kind: Probabilities,
    category: Probabilities,
    priority: Probabilities,
    danger: bool,
    thresholds: Thresholds,
    asks: bool = True,
) -> Decision:
    """`danger`: a safety rule fired; `asks`: the text has a "?" or a question word."""
    chosen_kind, review = _kind(kind, danger, asks, thresholds)
    chosen_category = (
        TipCategory(_best(category)) if chosen_kind == TipKind.TIP else TipCategory.OTHER
    )
    urgent_by_model = priority.get(TipPriority.URGENT, 0.0) >= thresholds.urgent
    chosen_priority = _priority(chosen_kind, priority, danger or urgent_by_model)
    return Decision(chosen_kind, chosen_category, chosen_priority, review, urgent_by_model)


# docs/triage-labelling.md §6: other is always low, a question always normal, help urgent
# when a person is in danger now and normal otherwise; only tips use the whole ladder.
_FIXED_PRIORITY = {TipKind.OTHER: TipPriority.LOW, TipKind.QUESTION: TipPriority.NORMAL}


def _priority(kind: TipKind, priority: Probabilities, urgent: bool) -> TipPriority:
    if kind in _FIXED_PRIORITY:
        return _FIXED_PRIORITY[kind]
    if urgent:
        return TipPriority.URGENT
    if kind == TipKind.HELP:
        return TipPriority.NORMAL
    rest = {p: v for p, v in priority.items() if p != TipPriority.URGENT}
    return TipPriority(_best(rest))


def _kind(
    kind: Probabilities, danger: bool, asks: bool, thresholds: Thresholds
) -> tuple[TipKind, bool]:
    best = TipKind(_best(kind))
    review = kind[best] < thresholds.review_below
    if best != TipKind.TIP and kind.get(TipKind.TIP, 0.0) >= thresholds.tip_floor:
        return TipKind.TIP, True
    if danger and best in (TipKind.QUESTION, TipKind.OTHER):
        return TipKind.TIP, True  # danger named in a question or a chat line: a person checks
    if best == TipKind.QUESTION and not asks:
        return TipKind.TIP, True  # a "question" that asks nothing is a report: a person checks
    if best == TipKind.OTHER and kind[best] < thresholds.other_confident:
        case_kinds = {k: v for k, v in kind.items() if k != TipKind.OTHER}
        return TipKind(_best(case_kinds)), True
    return best, review


def _best(probabilities: Probabilities) -> str:
    return max(probabilities, key=lambda label: probabilities[label])


def top_choices(probabilities: Probabilities, count: int = 3) -> str:
    """`tip 0.48 · question 0.41 · help 0.08`: what a dispatcher sees on a case under review."""
    ranked = sorted(probabilities.items(), key=lambda item: -item[1])[:count]
    return " · ".join(f"{label} {p:.2f}" for label, p in ranked)
