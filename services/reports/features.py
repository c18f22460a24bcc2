"""The classifier's features: tf-idf n-grams over the raw and the folded text.

Training fits scikit-learn's `TfidfVectorizer`s; serving rebuilds the same analyzers from the
stored vocabularies and idf weights and computes one message's vector without scikit-learn's
per-call validation, which costs milliseconds on a single message (docs/benchmarks.md).
"""

from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer

from services.reports.normalize import Normalizer

WORD_PATTERN = r"(?u)\b\w+\b"  # one-letter words count: "k", "j" and "z" are teencode


@dataclass(frozen=True)
class Channel:
    name: str
    analyzer: str  # "char_wb" or "word"
    ngram_range: tuple[int, int]
    form: str  # "raw" or "folded"

    def vectorizer(self, normalizer: Normalizer, min_df: int = 1) -> TfidfVectorizer:
        """An unfitted vectorizer for this channel."""
        vectorizer = TfidfVectorizer(
            analyzer=self.analyzer,
            ngram_range=self.ngram_range,
            preprocessor=_preprocessor(normalizer, self.form),
            lowercase=False,
            sublinear_tf=True,
            min_df=min_df,
            dtype=np.float32,
        )
        if self.analyzer == "word":
            vectorizer.set_params(token_pattern=WORD_PATTERN)
        return vectorizer


DEFAULT_CHANNELS = (
    Channel("raw_char", "char_wb", (2, 5), "raw"),
    Channel("folded_char", "char_wb", (2, 5), "folded"),
    Channel("folded_word", "word", (1, 2), "folded"),
)


def _preprocessor(normalizer: Normalizer, form: str) -> Callable[[str], str]:
    return normalizer.raw if form == "raw" else normalizer.folded


@dataclass(frozen=True)
class FittedChannel:
    """One channel's vocabulary (index order) and idf weights, as stored in the model file."""

    channel: Channel
    vocabulary: tuple[str, ...]
    idf: np.ndarray

    @classmethod
    def from_vectorizer(cls, channel: Channel, vectorizer: TfidfVectorizer) -> "FittedChannel":
        names = vectorizer.get_feature_names_out()
        return cls(channel, tuple(str(n) for n in names), np.asarray(vectorizer.idf_, np.float32))


class FeatureExtractor:
    """Sparse tf-idf vector of one text: (feature indices, values), l2-normed per channel,
    equal to scikit-learn's FeatureUnion of the channels' vectorizers."""

    def __init__(self, channels: Sequence[FittedChannel], normalizer: Normalizer) -> None:
        self.channels = tuple(channels)
        self._analyzers = [c.channel.vectorizer(normalizer).build_analyzer() for c in self.channels]
        self._index: list[dict[str, int]] = []
        self._idf = [c.idf for c in self.channels]
        offset = 0
        for fitted in self.channels:
            self._index.append({term: offset + i for i, term in enumerate(fitted.vocabulary)})
            offset += len(fitted.vocabulary)
        self.size = offset
        self.names = tuple(term for c in self.channels for term in c.vocabulary)
        self._offsets = np.cumsum([0, *(len(c.vocabulary) for c in self.channels)])

    def vector(self, text: str) -> tuple[np.ndarray, np.ndarray]:
        indices: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for analyzer, index, idf, offset in zip(
            self._analyzers, self._index, self._idf, self._offsets, strict=False
        ):
            counts = Counter(i for gram in analyzer(text) if (i := index.get(gram)) is not None)
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), np.int64, len(counts))
            tf = np.fromiter(counts.values(), np.float32, len(counts))
            weights = (np.log(tf) + 1.0) * idf[idx - offset]
            indices.append(idx)
            values.append(weights / np.linalg.norm(weights))
        if not indices:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(indices), np.concatenate(values)
