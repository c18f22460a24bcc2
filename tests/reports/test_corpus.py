"""The triage corpus: large, eight authors, a fixed author-disjoint split recorded in the data."""

import json

from services.reports.corpus import CORPUS_DIR, SPLIT_FILE, load_corpus
from services.reports.model import TriageModel


def test_split_is_author_disjoint_and_recorded() -> None:
    split = json.loads((CORPUS_DIR / SPLIT_FILE).read_text("utf-8"))
    assert split == {"train": ["a1", "a2", "a3", "a4", "a7", "a8"], "test": ["a5", "a6"]}
    corpus = load_corpus()
    assert {e.author for e in corpus.train} == {"a1", "a2", "a3", "a4", "a7", "a8"}
    assert {e.author for e in corpus.test} == {"a5", "a6"}


def test_corpus_is_large_and_covers_every_label() -> None:
    corpus = load_corpus()
    examples = [*corpus.train, *corpus.test]
    assert len(examples) >= 2000
    assert len({e.id for e in examples}) == len(examples)
    assert {e.kind for e in examples} == {"tip", "question", "help", "other"}
    assert len({e.category for e in examples if e.kind == "tip"}) == 12
    assert {"no_diacritics", "dialect"} <= {e.style for e in examples}


def test_shipped_model_came_from_this_corpus() -> None:
    assert TriageModel.load().manifest["data_sha256"] == load_corpus().sha256
