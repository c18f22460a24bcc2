"""`python -m services.reports.train`: trains, compares old and new on the test authors, and
installs only a model that is not worse."""

import json
import random
from pathlib import Path

import pytest

from services.reports.corpus import load_corpus
from services.reports.evaluation import is_not_worse
from services.reports.model import TriageModel, sha256_file
from services.reports.train import main

OWN_SET = Path(__file__).resolve().parents[1] / "data" / "triage-labeled.jsonl"
GOOD = {
    "kind_accuracy": 0.95,
    "category_accuracy": 0.92,
    "urgent_recall": 0.97,
    "urgent_precision": 0.7,
    "tips_lost": 0.01,
}


def write_corpus(directory: Path, shuffle_training_labels: bool = False) -> Path:
    """The own set dealt to six pseudo-authors: a1–a4 train, a5–a6 test."""
    directory.mkdir(parents=True, exist_ok=True)
    rows = [json.loads(line) for line in OWN_SET.read_text("utf-8").splitlines() if line]
    shuffled = random.Random(7).sample(rows, len(rows)) if shuffle_training_labels else rows
    for number in range(1, 7):
        author = f"a{number}"
        mine = [
            row | {"author": author, "style": "diacritics"}
            for i, row in enumerate(rows)
            if i % 6 == number - 1
        ]
        if shuffle_training_labels and number <= 4:
            labels = [s for i, s in enumerate(shuffled) if i % 6 == number - 1]
            mine = [
                row | {k: label[k] for k in ("kind", "category", "priority")}
                for row, label in zip(mine, labels, strict=True)
            ]
        lines = [json.dumps(row, ensure_ascii=False) for row in mine]
        (directory / f"{author}.jsonl").write_text("\n".join(lines) + "\n", "utf-8")
    split = {"train": ["a1", "a2", "a3", "a4"], "test": ["a5", "a6"]}
    (directory / "split.json").write_text(json.dumps(split), "utf-8")
    return directory


class TestIsNotWorse:
    def test_equal_is_not_worse(self) -> None:
        assert is_not_worse(GOOD, GOOD)

    def test_better_overall_is_installed(self) -> None:
        assert is_not_worse(GOOD | {"category_accuracy": 0.95}, GOOD)

    def test_worse_overall_is_refused(self) -> None:
        assert not is_not_worse(GOOD | {"kind_accuracy": 0.90}, GOOD)

    def test_losing_urgent_recall_is_refused_even_if_better_overall(self) -> None:
        new = GOOD | {"urgent_recall": 0.94, "category_accuracy": 0.99, "kind_accuracy": 0.99}
        assert not is_not_worse(new, GOOD)

    def test_losing_tips_is_refused_even_if_better_overall(self) -> None:
        new = GOOD | {"tips_lost": 0.03, "category_accuracy": 0.99, "kind_accuracy": 0.99}
        assert not is_not_worse(new, GOOD)


@pytest.mark.slow
class TestTrain:
    def test_installs_a_model_that_names_its_data(
        self, tmp_path: Path, capsys: pytest.CaptureFixture[str]
    ) -> None:
        corpus = write_corpus(tmp_path / "corpus")
        model = tmp_path / "model" / "triage-model.json"
        model.parent.mkdir()
        args = ["--corpus", str(corpus), "--model", str(model), "--no-corrections"]
        assert main(args) == 0
        manifest = TriageModel.load(model).manifest
        assert manifest["data_sha256"] == load_corpus(corpus).sha256
        assert manifest["examples"] == {"corpus": 118, "corrections": 0}
        assert set(manifest["cross_validation"]) >= {"kind_accuracy", "urgent_recall", "folds"}
        out = capsys.readouterr().out
        assert "installed" in out
        assert "kind_accuracy" in out

        # Trained on scrambled labels, the new model is worse on the test authors: kept out.
        before = sha256_file(model.with_suffix(".npz"))
        bad = write_corpus(tmp_path / "bad", shuffle_training_labels=True)
        assert main(["--corpus", str(bad), "--model", str(model), "--no-corrections"]) == 1
        assert sha256_file(model.with_suffix(".npz")) == before
        assert "kept the installed one" in capsys.readouterr().out
