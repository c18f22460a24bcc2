"""The model's features, heads and file: equal to scikit-learn, refused when altered, fast."""

import json
import time
import unicodedata
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from services.reports.corpus import read_examples
from services.reports.features import DEFAULT_CHANNELS, Channel, FeatureExtractor
from services.reports.learn import fitted_channel, head_of, vectorizer
from services.reports.model import (
    DEFAULT_MODEL_FILE,
    Head,
    ModelError,
    Thresholds,
    TriageModel,
    save,
)
from services.reports.normalize import Normalizer
from services.reports.triage import TriageRules

OWN_SET = Path(__file__).resolve().parents[1] / "data" / "triage-labeled.jsonl"
RULES = TriageRules.load()


@pytest.fixture(scope="module")
def normalizer() -> Normalizer:
    return Normalizer(RULES.abbreviations, RULES.dialect)


class TestNormalizer:
    def test_teencode_and_dialect_fold_to_standard_words(self, normalizer: Normalizer) -> None:
        assert normalizer.folded("ck e chừ đang đánh vk, ko ai can dc") == (
            "chong e gio dang danh vo khong ai can duoc"
        )

    def test_unmarked_dialect_look_alikes_stay(self, normalizer: Normalizer) -> None:
        assert normalizer.folded("mổ cá ở mô") == "mo ca o dau"

    def test_raw_ignores_composition_and_tone_placement(self, normalizer: Normalizer) -> None:
        forms = [
            "Gọi cứu hoả 114",
            "gọi cứu hỏa 115",
            unicodedata.normalize("NFD", "GỌI CỨU HOẢ 9"),
        ]
        assert len({normalizer.raw(f) for f in forms}) == 1


@dataclass(frozen=True)
class Fitted:
    """A category head fitted with scikit-learn directly on the own set's tips."""

    extractor: FeatureExtractor
    head: Head
    vectorizers: list[TfidfVectorizer]
    calibrated: CalibratedClassifierCV
    probe: list[str]


@pytest.fixture(scope="module")
def fitted(normalizer: Normalizer) -> Fitted:
    rows = [e for e in read_examples(OWN_SET.read_text("utf-8"), "own") if e.kind == "tip"]
    texts = [e.text for e in rows]
    vectorizers = [vectorizer(c, normalizer) for c in DEFAULT_CHANNELS]
    matrix = sparse.hstack([v.fit_transform(texts) for v in vectorizers]).tocsr()
    calibrated = CalibratedClassifierCV(
        LogisticRegression(C=10, max_iter=3000), method="sigmoid", ensemble=False, cv=3
    ).fit(matrix, [e.category.value for e in rows])
    channels = [fitted_channel(c, v) for c, v in zip(DEFAULT_CHANNELS, vectorizers, strict=True)]
    probe = [*texts, "chay nha o mo rua, cuu voi!!! 🔥", "ck e đánh vk", ""]
    extractor = FeatureExtractor(channels, normalizer)
    return Fitted(extractor, head_of(calibrated), vectorizers, calibrated, probe)


class TestEqualsScikitLearn:
    @pytest.mark.parametrize("channel", DEFAULT_CHANNELS, ids=lambda c: c.name)
    def test_ngrams_equal_scikit_learns_analyzers(
        self, fitted: Fitted, normalizer: Normalizer, channel: Channel
    ) -> None:
        prepare = normalizer.raw if channel.form == "raw" else normalizer.folded
        theirs = TfidfVectorizer(
            analyzer=channel.analyzer,
            ngram_range=channel.ngram_range,
            preprocessor=prepare,
            lowercase=False,
        )
        if channel.analyzer == "word":
            theirs.set_params(token_pattern=r"(?u)\b\w+\b")  # one-letter words count
        mine, analyze = channel.analyze(normalizer), theirs.build_analyzer()
        for text in [*fitted.probe, "a", "ờ", "k k", "  hai   từ  "]:
            assert mine(text) == analyze(text)

    def test_vectors_equal_the_feature_union(self, fitted: Fitted) -> None:
        for text in fitted.probe:
            indices, values = fitted.extractor.vector(text)
            mine = np.zeros(fitted.extractor.size, np.float32)
            mine[indices] = values
            theirs = sparse.hstack([v.transform([text]) for v in fitted.vectorizers]).toarray()
            np.testing.assert_allclose(mine, theirs[0], atol=1e-6)

    def test_probabilities_equal_predict_proba(self, fitted: Fitted) -> None:
        size = fitted.extractor.size
        for text in fitted.probe:
            indices, values = fitted.extractor.vector(text)
            row = sparse.csr_matrix((values, (np.zeros_like(indices), indices)), (1, size))
            np.testing.assert_allclose(
                fitted.head.proba(indices, values),
                fitted.calibrated.predict_proba(row)[0],
                atol=1e-5,
            )


class TestFile:
    def test_saved_model_predicts_the_same(self, fitted: Fitted, tmp_path: Path) -> None:
        extractor, head, probe = fitted.extractor, fitted.head, fitted.probe
        heads = {"kind": head, "category": head, "priority": head}
        manifest = {"abbreviations": RULES.abbreviations, "dialect": RULES.dialect}
        manifest["thresholds"] = Thresholds().model_dump()
        save(tmp_path / "m.json", list(extractor.channels), heads, manifest)
        loaded = TriageModel.load(tmp_path / "m.json")
        for text in probe:
            indices, values = extractor.vector(text)
            got = loaded.predict(text).category
            np.testing.assert_allclose(list(got.values()), head.proba(indices, values), atol=1e-6)

    def test_altered_arrays_are_refused_before_loading(self, tmp_path: Path) -> None:
        manifest = json.loads(DEFAULT_MODEL_FILE.read_text("utf-8"))
        arrays = DEFAULT_MODEL_FILE.with_name(manifest["arrays"]).read_bytes()
        (tmp_path / "m.json").write_text(json.dumps(manifest), "utf-8")
        (tmp_path / manifest["arrays"]).write_bytes(arrays[:-1] + bytes([arrays[-1] ^ 1]))
        with pytest.raises(ModelError, match="sha256"):
            TriageModel.load(tmp_path / "m.json")

    def test_shipped_model_names_its_data_and_loads_fast(self) -> None:
        start = time.perf_counter()
        model = TriageModel.load()
        assert time.perf_counter() - start < 2.0
        assert len(model.manifest["data_sha256"]) == 64
        assert set(model.heads) == {"kind", "category", "priority"}
