"""Scores of triage against labelled messages: what the benchmark prints and what training
compares (old model against new) before it installs anything."""

from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from services.reports.corpus import Example
from shared.events.tips import TipCategory, TipKind, TipPriority

NOT_TIP = "(not a tip)"
HEADLINE = ("kind_accuracy", "category_accuracy", "urgent_recall", "urgent_precision")


@dataclass(frozen=True)
class Outcome:
    """What triage made of one message."""

    kind: TipKind
    category: TipCategory
    priority: TipPriority
    review: bool = False
    ward: str | None = None


def score(examples: Sequence[Example], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    pairs = list(zip(examples, outcomes, strict=True))
    tips = [(e, o) for e, o in pairs if e.kind == TipKind.TIP]
    urgent = [o for e, o in pairs if e.priority == TipPriority.URGENT]
    called = [e for e, o in pairs if o.priority == TipPriority.URGENT]
    warded = [(e, o) for e, o in tips if e.ward is not None and o.ward is not None]
    return {
        "n": len(pairs),
        "kind_accuracy": _share(e.kind == o.kind for e, o in pairs),
        "tips": len(tips),
        "tips_lost": _share(o.kind != TipKind.TIP for _, o in tips),
        "category_accuracy": _share(
            o.kind == TipKind.TIP and o.category == e.category for e, o in tips
        ),
        "urgent": len(urgent),
        "urgent_recall": _share(o.priority == TipPriority.URGENT for o in urgent),
        "urgent_precision": _share(e.priority == TipPriority.URGENT for e in called),
        "priority_accuracy": _share(e.priority == o.priority for e, o in pairs),
        "ward_accuracy": _share(e.ward == o.ward for e, o in warded) if warded else None,
        "review_rate": _share(o.review for _, o in pairs),
        "per_category": per_category(tips),
        "confusion": confusion(tips),
    }


def summary(scores: dict[str, Any]) -> float:
    """One number to compare two models: the mean of the headline figures and of the share of
    tips kept."""
    figures = [float(scores[name]) for name in HEADLINE] + [1.0 - float(scores["tips_lost"])]
    return sum(figures) / len(figures)


def is_not_worse(new: dict[str, Any], old: dict[str, Any], tolerance: float = 0.01) -> bool:
    """New replaces old only if it is not worse overall and keeps urgent recall and tips."""
    return (
        summary(new) >= summary(old)
        and new["urgent_recall"] >= old["urgent_recall"] - tolerance
        and new["tips_lost"] <= old["tips_lost"] + tolerance
    )


def by_style(examples: Sequence[Example], outcomes: Sequence[Outcome]) -> dict[str, Any]:
    groups: dict[str, list[int]] = defaultdict(list)
    for i, example in enumerate(examples):
        groups[example.style].append(i)
    return {
        style: score([examples[i] for i in rows], [outcomes[i] for i in rows])
        for style, rows in sorted(groups.items())
    }


def per_category(
    tips: Sequence[tuple[Example, Outcome]],
) -> dict[str, tuple[float, float, float, int]]:
    """Precision, recall, F1 and support per category, over the messages labelled as tips (a
    tip triaged as another kind counts as a miss of its category)."""
    result: dict[str, tuple[float, float, float, int]] = {}
    for category in TipCategory:
        support = sum(e.category == category for e, _ in tips)
        predicted = [e for e, o in tips if o.kind == TipKind.TIP and o.category == category]
        hits = sum(e.category == category for e in predicted)
        precision = hits / len(predicted) if predicted else 0.0
        recall = hits / support if support else 0.0
        f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
        result[category.value] = (precision, recall, f1, support)
    return result


def confusion(tips: Sequence[tuple[Example, Outcome]]) -> dict[str, dict[str, int]]:
    """Labelled category -> triaged category (or `(not a tip)`) -> count."""
    table: dict[str, Counter[str]] = defaultdict(Counter)
    for example, outcome in tips:
        got = outcome.category.value if outcome.kind == TipKind.TIP else NOT_TIP
        table[example.category.value][got] += 1
    return {label: dict(row) for label, row in sorted(table.items())}


def _share(flags: Any) -> float:
    values = list(flags)
    return sum(values) / len(values) if values else 1.0
