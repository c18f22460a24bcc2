"""How the urgent threshold is chosen from out-of-fold predictions: recall first, down to a
precision floor (services/reports/learn.py, docs/benchmarks.md)."""

import numpy as np
import pytest

from services.reports.corpus import Example
from services.reports.learn import CrossValidation, _tune_urgent
from services.reports.model import Prediction, Thresholds
from shared.events.tips import TipCategory, TipKind, TipPriority

# Tips with the model's urgent probability; four are labelled urgent, four normal.
URGENT = (0.85, 0.60, 0.30, 0.12)
NORMAL = (0.55, 0.20, 0.08, 0.06)


def cross_validation() -> CrossValidation:
    labelled = [(p, TipPriority.URGENT) for p in URGENT] + [(p, TipPriority.NORMAL) for p in NORMAL]
    examples = [
        Example(f"x{i}", "a1", "diacritics", "…", TipKind.TIP, TipCategory.THEFT, label)
        for i, (_, label) in enumerate(labelled)
    ]
    predictions = [
        Prediction(
            kind={TipKind.TIP: 1.0},
            category={TipCategory.THEFT: 1.0},
            priority={TipPriority.URGENT: p, TipPriority.NORMAL: 1 - p},
            indices=np.zeros(0, dtype=np.int64),
            contributions=np.zeros((0, 0)),
        )
        for p, _ in labelled
    ]
    return CrossValidation(examples, predictions, [False] * len(examples), folds=1)


@pytest.mark.parametrize(
    ("recall_target", "precision_floor", "expected"),
    [
        # Lowest threshold with precision >= 65%: 0.1 catches all four urgent (4 of 6 flagged).
        # The highest reaching 75% recall would be 0.3 and miss one.
        (0.7, 0.65, 0.1),
        # A floor only reached at 0.575 (recall 50%, below the target): the highest threshold
        # that reaches the recall target instead.
        (0.7, 0.9, 0.3),
        # Recall target 100%: 0.1 reaches it and holds the floor.
        (1.0, 0.65, 0.1),
    ],
)
def test_urgent_threshold_spends_precision_on_recall(
    recall_target: float, precision_floor: float, expected: float
) -> None:
    chosen = _tune_urgent(cross_validation(), Thresholds(), recall_target, precision_floor)
    assert chosen == pytest.approx(expected)
