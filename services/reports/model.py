"""The learned part of triage: three calibrated linear heads (kind, category, priority) over
one feature vector, stored as plain arrays (`.npz`, no pickle) plus a JSON manifest that
carries the file's sha256, the sha256 of the data it was trained on, and its thresholds.
"""

import hashlib
import json
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ConfigDict

from services.reports.features import Channel, FeatureExtractor, FittedChannel
from services.reports.normalize import Normalizer

MODEL_DIR = Path(__file__).resolve().parent / "model"
DEFAULT_MODEL_FILE = MODEL_DIR / "triage-model.json"
HEADS = ("kind", "category", "priority")


class ModelError(Exception):
    """The model file is missing, altered or of another format."""


class Thresholds(BaseModel):
    """Decision thresholds, chosen by author-grouped cross-validation on the training authors."""

    model_config = ConfigDict(frozen=True)

    other_confident: float = 0.8  # "other" (no case) only at least this sure
    tip_floor: float = 0.3  # a tip this likely is a tip, whatever else is likelier
    urgent: float = 0.35  # the model alone calls a message urgent from this probability
    review_below: float = 0.6  # a kind decided with less than this is marked for review


@dataclass(frozen=True)
class Head:
    """A linear classifier with one sigmoid calibrator per class (scikit-learn's
    `CalibratedClassifierCV(method="sigmoid", ensemble=False)` over a logistic regression)."""

    classes: tuple[str, ...]
    weights: np.ndarray  # (features, classes)
    intercept: np.ndarray  # (classes,)
    cal_a: np.ndarray
    cal_b: np.ndarray

    def scores(self, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
        return np.asarray(values @ self.weights[indices] + self.intercept, np.float64)

    def proba(self, indices: np.ndarray, values: np.ndarray) -> np.ndarray:
        return self.calibrated(self.scores(indices, values))

    def calibrated(self, scores: np.ndarray) -> np.ndarray:
        """Each class's sigmoid calibration, normalized to sum to one (as scikit-learn)."""
        calibrated = 1.0 / (1.0 + np.exp(self.cal_a * scores.astype(np.float64) + self.cal_b))
        total = calibrated.sum()
        if total == 0:
            return np.full(len(self.classes), 1.0 / len(self.classes))
        return np.asarray(calibrated / total)


@dataclass(frozen=True)
class Prediction:
    kind: dict[str, float]
    category: dict[str, float]
    priority: dict[str, float]
    indices: np.ndarray
    contributions: np.ndarray  # (features of the text, every head's classes): value x weight


class TriageModel:
    """Features and heads, loaded from a manifest and its array file."""

    def __init__(
        self,
        extractor: FeatureExtractor,
        heads: dict[str, Head],
        thresholds: Thresholds,
        manifest: dict[str, Any],
    ) -> None:
        self.extractor = extractor
        self.heads = heads
        self.thresholds = thresholds
        self.manifest = manifest
        self._weights = np.hstack([h.weights for h in heads.values()])
        self._intercepts = np.concatenate([h.intercept for h in heads.values()])
        ends = np.cumsum([len(h.classes) for h in heads.values()]).tolist()
        self._columns = list(zip([0, *ends[:-1]], ends, strict=True))

    def predict(self, text: str) -> Prediction:
        indices, values = self.extractor.vector(text)
        # One gather for the three heads, kept: the reasons read the same contributions.
        contributions = self._weights[indices] * values[:, np.newaxis]
        scores = contributions.sum(axis=0) + self._intercepts
        probs = {}
        for (name, head), (start, end) in zip(self.heads.items(), self._columns, strict=True):
            probs[name] = dict(
                zip(head.classes, head.calibrated(scores[start:end]).tolist(), strict=True)
            )
        return Prediction(
            probs["kind"], probs["category"], probs["priority"], indices, contributions
        )

    def evidence(self, prediction: Prediction, head: str, label: str, count: int = 2) -> list[str]:
        """The n-grams behind a decision, as a dispatcher can read them."""
        start = self._columns[list(self.heads).index(head)][0]
        column = prediction.contributions[:, start + self.heads[head].classes.index(label)]
        order = np.argsort(-column)[:count]
        chosen = [int(prediction.indices[i]) for i in order if column[i] > 0]
        return [self.extractor.names[i].strip() for i in chosen]

    @classmethod
    def load(cls, manifest_file: Path = DEFAULT_MODEL_FILE) -> "TriageModel":
        manifest = json.loads(manifest_file.read_text(encoding="utf-8"))
        arrays_file = manifest_file.with_name(manifest["arrays"])
        if sha256_file(arrays_file) != manifest["arrays_sha256"]:
            raise ModelError(f"{arrays_file.name} does not match its manifest's sha256")
        with np.load(arrays_file, allow_pickle=False) as arrays:
            return cls.from_arrays(dict(arrays), manifest)

    @classmethod
    def from_arrays(cls, arrays: dict[str, np.ndarray], manifest: dict[str, Any]) -> "TriageModel":
        normalizer = Normalizer(manifest["abbreviations"], manifest["dialect"])
        channels = [
            FittedChannel(
                Channel(c["name"], c["analyzer"], tuple(c["ngram_range"]), c["form"]),
                tuple(arrays[f"vocab.{c['name']}"].tolist()),
                arrays[f"idf.{c['name']}"],
            )
            for c in manifest["channels"]
        ]
        heads = {
            name: Head(
                tuple(arrays[f"{name}.classes"].tolist()),
                arrays[f"{name}.weights"],
                arrays[f"{name}.intercept"],
                arrays[f"{name}.cal_a"],
                arrays[f"{name}.cal_b"],
            )
            for name in HEADS
        }
        thresholds = Thresholds.model_validate(manifest["thresholds"])
        return cls(FeatureExtractor(channels, normalizer), heads, thresholds, manifest)


def _write_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """`np.savez_compressed` with fixed entry dates, so the same model gives the same bytes
    (and the same sha256) whenever it is trained."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, array in sorted(arrays.items()):
            entry = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            entry.compress_type = zipfile.ZIP_DEFLATED
            with archive.open(entry, "w", force_zip64=True) as out:
                np.lib.format.write_array(out, array, allow_pickle=False)


def sha256_file(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def save(
    manifest_file: Path,
    channels: list[FittedChannel],
    heads: dict[str, Head],
    manifest: dict[str, Any],
) -> None:
    """Write the arrays, then the manifest with their sha256 (the manifest goes last, so a
    reader never sees a manifest that points at arrays not yet written)."""
    arrays: dict[str, np.ndarray] = {}
    for fitted in channels:
        arrays[f"vocab.{fitted.channel.name}"] = np.array(fitted.vocabulary, dtype=str)
        arrays[f"idf.{fitted.channel.name}"] = fitted.idf.astype(np.float32)
    for name, head in heads.items():
        arrays[f"{name}.classes"] = np.array(head.classes, dtype=str)
        arrays[f"{name}.weights"] = head.weights.astype(np.float32)
        arrays[f"{name}.intercept"] = head.intercept.astype(np.float32)
        arrays[f"{name}.cal_a"] = head.cal_a.astype(np.float32)
        arrays[f"{name}.cal_b"] = head.cal_b.astype(np.float32)
    arrays_file = manifest_file.with_suffix(".npz")
    _write_npz(arrays_file, arrays)
    manifest = manifest | {
        "arrays": arrays_file.name,
        "arrays_sha256": sha256_file(arrays_file),
        "channels": [
            {
                "name": f.channel.name,
                "analyzer": f.channel.analyzer,
                "ngram_range": list(f.channel.ngram_range),
                "form": f.channel.form,
            }
            for f in channels
        ],
    }
    manifest_file.write_text(json.dumps(manifest, ensure_ascii=False, indent=2) + "\n", "utf-8")
