"""Fitting the triage model with scikit-learn, and choosing its thresholds by cross-validation
grouped by author (a message's author never sits on both sides of a fold)."""

import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import ConvergenceWarning
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import GroupKFold, StratifiedKFold

from services.reports.corpus import Example
from services.reports.decision import decide
from services.reports.evaluation import Outcome, score
from services.reports.features import DEFAULT_CHANNELS, Channel, FeatureExtractor, FittedChannel
from services.reports.model import Head, Prediction, Thresholds, TriageModel
from services.reports.normalize import Normalizer
from shared.events.tips import TipKind
from shared.places.text import fold

MIN_FOLD_AUTHORS = 3  # fewer authors than this: stratified folds instead of author folds
URGENT_STEPS = tuple(round(0.9 - 0.025 * i, 3) for i in range(35))  # 0.9 down to 0.05
# Urgent precision the threshold may spend down to: the floor (60%) plus a margin, so the
# rest of the precision budget buys recall (a missed urgent tip costs more than a false alarm).
URGENT_PRECISION = 0.65


@dataclass(frozen=True)
class Params:
    c: float = 30.0  # author-grouped CV over a1–a4 (docs/benchmarks.md): 30 > 100 > 10 > 3
    min_df: int = 2
    balanced: bool = True
    channels: tuple[Channel, ...] = DEFAULT_CHANNELS
    max_iter: int = 3000
    # Also learn every message as typed without marks: written with marks, a message trains
    # mostly the raw channel's features, which unmarked text never has.
    unmarked_copies: bool = True


@dataclass(frozen=True)
class Fitted:
    channels: list[FittedChannel]
    heads: dict[str, Head]


@dataclass
class CrossValidation:
    """Out-of-fold predictions over the training authors, and the rule flags of each text."""

    examples: list[Example]
    predictions: list[Prediction]
    danger: list[bool]
    folds: int
    asks: list[bool] = field(default_factory=list)
    thresholds: Thresholds = field(default_factory=Thresholds)

    def outcomes(self, thresholds: Thresholds | None = None) -> list[Outcome]:
        chosen = thresholds or self.thresholds
        asks = self.asks or [True] * len(self.predictions)  # no flags: every text may ask
        rows = zip(self.predictions, self.danger, asks, strict=True)
        return [_outcome(p, d, a, chosen) for p, d, a in rows]

    def scores(self) -> dict[str, object]:
        return score(self.examples, self.outcomes())


def vectorizer(channel: Channel, normalizer: Normalizer, min_df: int = 1) -> TfidfVectorizer:
    """An unfitted tf-idf vectorizer that cuts texts with the channel's own analyzer."""
    return TfidfVectorizer(
        analyzer=channel.analyze(normalizer),
        lowercase=False,
        sublinear_tf=True,
        min_df=min_df,
        dtype=np.float32,
    )


def fitted_channel(channel: Channel, fitted: TfidfVectorizer) -> FittedChannel:
    names = tuple(str(name) for name in fitted.get_feature_names_out())
    return FittedChannel(channel, names, np.asarray(fitted.idf_, np.float32))


def with_unmarked_copies(examples: Sequence[Example]) -> list[Example]:
    """The examples, plus a copy without diacritics of each one typed with them (same author,
    so the copy never sits on the other side of a fold)."""
    copies = [replace(e, id=f"{e.id}~", text=fold(e.text)) for e in examples]
    return [
        *examples,
        *(c for c, e in zip(copies, examples, strict=True) if c.text != e.text.lower()),
    ]


def fit(examples: Sequence[Example], normalizer: Normalizer, params: Params) -> Fitted:
    if params.unmarked_copies:
        examples = with_unmarked_copies(examples)
    vectorizers = [vectorizer(c, normalizer, params.min_df) for c in params.channels]
    texts = [e.text for e in examples]
    matrix = sparse.hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
    groups = np.array([e.author for e in examples])
    tips = np.array([e.kind == TipKind.TIP for e in examples])
    # Priority only varies for tips and help (docs/triage-labelling.md §6): learn it there.
    graded = np.array([e.kind in (TipKind.TIP, TipKind.HELP) for e in examples])
    labels = {
        "kind": np.array([e.kind.value for e in examples]),
        "category": np.array([e.category.value for e in examples]),
        "priority": np.array([e.priority.value for e in examples]),
    }
    heads = {
        "kind": _head(matrix, labels["kind"], groups, params),
        # Categories are learned from tips only: a question's "other" says nothing about theft.
        "category": _head(matrix[tips], labels["category"][tips], groups[tips], params),
        "priority": _head(matrix[graded], labels["priority"][graded], groups[graded], params),
    }
    channels = [fitted_channel(c, v) for c, v in zip(params.channels, vectorizers, strict=True)]
    return Fitted(channels, heads)


def _head(
    matrix: sparse.csr_matrix, labels: np.ndarray, groups: np.ndarray, params: Params
) -> Head:
    base = LogisticRegression(
        C=params.c, max_iter=params.max_iter, class_weight="balanced" if params.balanced else None
    )
    calibrated = CalibratedClassifierCV(
        base, method="sigmoid", ensemble=False, cv=_calibration_folds(labels, groups)
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        calibrated.fit(matrix, labels)
    return head_of(calibrated)


def head_of(calibrated: CalibratedClassifierCV) -> Head:
    """The arrays of a fitted `CalibratedClassifierCV(method="sigmoid", ensemble=False)`."""
    inner = calibrated.calibrated_classifiers_[0]
    estimator = inner.estimator
    return Head(
        classes=tuple(str(c) for c in estimator.classes_),
        weights=np.asarray(estimator.coef_.T, np.float32),
        intercept=np.asarray(estimator.intercept_, np.float32),
        cal_a=np.array([c.a_ for c in inner.calibrators], np.float32),
        cal_b=np.array([c.b_ for c in inner.calibrators], np.float32),
    )


def _calibration_folds(
    labels: np.ndarray, groups: np.ndarray
) -> list[tuple[np.ndarray, np.ndarray]]:
    """Author folds when every fold's training part still has every class; else stratified."""
    everything = set(labels.tolist())
    n_groups = len(set(groups.tolist()))
    if n_groups >= MIN_FOLD_AUTHORS:
        folds = list(GroupKFold(n_splits=min(5, n_groups)).split(labels, labels, groups))
        if all(set(labels[train].tolist()) == everything for train, _ in folds):
            return folds
    smallest = min(np.unique(labels, return_counts=True)[1])
    splitter = StratifiedKFold(n_splits=max(2, min(3, int(smallest))), shuffle=True, random_state=0)
    return list(splitter.split(labels, labels))


def model_of(fitted: Fitted, normalizer: Normalizer, thresholds: Thresholds) -> TriageModel:
    manifest = {"abbreviations": normalizer.abbreviations, "dialect": normalizer.dialect}
    return TriageModel(
        FeatureExtractor(fitted.channels, normalizer), fitted.heads, thresholds, manifest
    )


def cross_validate(
    examples: Sequence[Example],
    normalizer: Normalizer,
    params: Params,
    danger: Sequence[bool],
) -> CrossValidation:
    """Leave-one-author-out predictions (or 4 stratified folds when there are too few authors)."""
    groups = np.array([e.author for e in examples])
    labels = np.array([e.kind.value for e in examples])
    if len(set(groups.tolist())) >= MIN_FOLD_AUTHORS:
        folds = list(GroupKFold(n_splits=len(set(groups.tolist()))).split(labels, labels, groups))
    else:
        folds = list(StratifiedKFold(4, shuffle=True, random_state=0).split(labels, labels))
    predictions: list[Prediction | None] = [None] * len(examples)
    for train, test in folds:
        model = model_of(
            fit([examples[i] for i in train], normalizer, params), normalizer, Thresholds()
        )
        for i in test:
            predictions[i] = model.predict(examples[i].text)
    done = [p for p in predictions if p is not None]
    return CrossValidation(list(examples), done, list(danger), len(folds))


def tune(
    cv: CrossValidation, recall_target: float = 0.98, lost_target: float = 0.0075
) -> Thresholds:
    """Thresholds that meet the recall and tips-lost targets on the out-of-fold predictions
    with a margin, then get the most right."""
    base = Thresholds()
    urgent = _tune_urgent(cv, base, recall_target)
    best: tuple[float, float, Thresholds] | None = None
    for floor in (0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5):
        for confident in (0.5, 0.6, 0.7, 0.8, 0.9, 0.95):
            candidate = base.model_copy(
                update={"urgent": urgent, "tip_floor": floor, "other_confident": confident}
            )
            scores = score(cv.examples, cv.outcomes(candidate))
            key = (-max(scores["tips_lost"], lost_target), scores["kind_accuracy"])
            if best is None or key > best[:2]:
                best = (key[0], key[1], candidate)
    assert best is not None
    cv.thresholds = best[2]
    return best[2]


def _tune_urgent(
    cv: CrossValidation, base: Thresholds, target: float, precision_floor: float = URGENT_PRECISION
) -> float:
    """Recall first: the lowest urgent threshold (the most urgent messages caught) whose
    out-of-fold precision still holds the floor, if it reaches the recall target; else the
    highest threshold that reaches the recall target (precision grows with the threshold); the
    lowest tried if none does."""
    scored: list[tuple[float, dict[str, Any]]] = [
        (threshold, score(cv.examples, cv.outcomes(base.model_copy(update={"urgent": threshold}))))
        for threshold in URGENT_STEPS
    ]
    for threshold, scores in reversed(scored):  # from the lowest threshold up
        if scores["urgent_precision"] >= precision_floor:
            if scores["urgent_recall"] >= target:
                return float(threshold)
            break
    for threshold, scores in scored:
        if scores["urgent_recall"] >= target:
            return threshold
    return URGENT_STEPS[-1]


def _outcome(prediction: Prediction, danger: bool, asks: bool, thresholds: Thresholds) -> Outcome:
    d = decide(prediction.kind, prediction.category, prediction.priority, danger, thresholds, asks)
    return Outcome(d.kind, d.category, d.priority, d.review)
