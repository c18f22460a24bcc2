"""The classifier's features: tf-idf n-grams over the raw and the folded text.

The n-grams are scikit-learn's `char_wb` and word n-grams, written here so that serving needs
no scikit-learn (importing it costs seconds at start-up); training hands these same functions
to `TfidfVectorizer(analyzer=...)`, so both sides cut a text identically. Serving computes one
message's vector from the stored vocabularies and idf weights without scikit-learn's per-call
validation, which costs milliseconds on a single message (docs/benchmarks.md).
"""

import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from services.reports.normalize import Normalizer

Analyzer = Callable[[str], list[str]]
WORD_CACHE_SIZE = 50_000  # distinct words remembered per channel
_WORD = re.compile(r"(?u)\b\w+\b")  # one-letter words count: "k", "j" and "z" are teencode


@dataclass(frozen=True)
class Channel:
    name: str
    analyzer: str  # "char_wb" or "word"
    ngram_range: tuple[int, int]
    form: str  # "raw" or "folded"

    def analyze(self, normalizer: Normalizer) -> Analyzer:
        """The function that cuts a text into this channel's n-grams (what training uses)."""
        return lambda text: self.ngrams(prepared(normalizer, self.form, text))

    def ngrams(self, prepared_text: str) -> list[str]:
        low, high = self.ngram_range
        if self.analyzer == "word":
            return word_ngrams(_WORD.findall(prepared_text), low, high)
        return char_wb_ngrams(prepared_text, low, high)


def prepared(normalizer: Normalizer, form: str, text: str) -> str:
    return normalizer.raw(text) if form == "raw" else normalizer.folded(text)


DEFAULT_CHANNELS = (
    Channel("raw_char", "char_wb", (2, 5), "raw"),
    Channel("folded_char", "char_wb", (2, 5), "folded"),
    Channel("folded_word", "word", (1, 2), "folded"),
)


def char_wb_ngrams(text: str, low: int, high: int) -> list[str]:
    """scikit-learn's `char_wb`: n-grams inside words padded with one space each side."""
    grams: list[str] = []
    for word in text.split():
        padded = f" {word} "
        size = len(padded)
        for n in range(low, high + 1):
            grams.extend(padded[i : i + n] for i in range(max(1, size - n + 1)))
            if size <= n:
                break  # a word shorter than n counts once, as a whole
    return grams


def word_ngrams(tokens: list[str], low: int, high: int) -> list[str]:
    grams = list(tokens) if low == 1 else []
    for n in range(max(low, 2), min(high, len(tokens)) + 1):
        grams.extend(" ".join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    return grams


@dataclass(frozen=True)
class FittedChannel:
    """One channel's vocabulary (index order) and idf weights, as stored in the model file."""

    channel: Channel
    vocabulary: tuple[str, ...]
    idf: np.ndarray


class FeatureExtractor:
    """Sparse tf-idf vector of one text: (feature indices, values), l2-normed per channel,
    equal to scikit-learn's FeatureUnion of the channels' vectorizers."""

    def __init__(self, channels: Sequence[FittedChannel], normalizer: Normalizer) -> None:
        self.channels = tuple(channels)
        self._normalizer = normalizer
        self._word_cache: list[dict[str, tuple[int, ...]]] = [{} for _ in self.channels]
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
        forms: dict[str, str] = {}  # each spelling once, however many channels read it
        indices: list[np.ndarray] = []
        values: list[np.ndarray] = []
        for number, fitted in enumerate(self.channels):
            form = fitted.channel.form
            if form not in forms:
                forms[form] = prepared(self._normalizer, form, text)
            counts = Counter(self._features(number, forms[form]))
            if not counts:
                continue
            idx = np.fromiter(counts.keys(), np.int64, len(counts))
            tf = np.fromiter(counts.values(), np.float32, len(counts))
            weights = (np.log(tf) + 1.0) * self._idf[number][idx - self._offsets[number]]
            indices.append(idx)
            values.append(weights / np.linalg.norm(weights))
        if not indices:
            return np.zeros(0, np.int64), np.zeros(0, np.float32)
        return np.concatenate(indices), np.concatenate(values)

    def _features(self, number: int, text: str) -> list[int]:
        """Feature indices of one channel's n-grams. `char_wb` n-grams never cross a word, and
        Vietnamese words (syllables) repeat, so each word's indices are computed once."""
        channel, index = self.channels[number].channel, self._index[number]
        if channel.analyzer != "char_wb":
            return [i for gram in channel.ngrams(text) if (i := index.get(gram)) is not None]
        cache = self._word_cache[number]
        found: list[int] = []
        for word in text.split():
            known = cache.get(word)
            if known is None:
                known = tuple(
                    i for gram in channel.ngrams(word) if (i := index.get(gram)) is not None
                )
                if len(cache) >= WORD_CACHE_SIZE:
                    cache.clear()  # a flood of new words must not grow memory without bound
                cache[word] = known
            found.extend(known)
        return found
