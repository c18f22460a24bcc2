"""The labelled corpus: one JSONL file per author and `split.json` naming the training and
the test authors. The test authors' messages are only ever scored, never read to build."""

import hashlib
import json
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from shared.events.tips import TipCategory, TipKind, TipPriority

CORPUS_DIR = Path(__file__).resolve().parents[2] / "tests" / "data" / "triage" / "corpus"
SPLIT_FILE = "split.json"


@dataclass(frozen=True)
class Example:
    """One labelled message. `author` groups the cross-validation folds."""

    id: str
    author: str
    style: str
    text: str
    kind: TipKind
    category: TipCategory
    priority: TipPriority
    ward: str | None = None

    @classmethod
    def from_json(cls, raw: dict[str, object], author: str | None = None) -> "Example":
        kind = TipKind(str(raw["kind"]))
        category = TipCategory(str(raw.get("category") or "other"))
        return cls(
            id=str(raw["id"]),
            author=str(raw.get("author") or author or "unknown"),
            style=str(raw.get("style") or "unknown"),
            text=str(raw["text"]),
            kind=kind,
            category=category if kind == TipKind.TIP else TipCategory.OTHER,
            priority=TipPriority(str(raw["priority"])),
            ward=str(raw["ward"]) if raw.get("ward") else None,
        )


@dataclass(frozen=True)
class Corpus:
    train: tuple[Example, ...]
    test: tuple[Example, ...]
    sha256: str  # of the files read, in name order: the data a model came from


def load_corpus(directory: Path = CORPUS_DIR) -> Corpus:
    split = json.loads((directory / SPLIT_FILE).read_text(encoding="utf-8"))
    digest = hashlib.sha256()
    parts: dict[str, list[Example]] = {"train": [], "test": []}
    for part in ("train", "test"):
        for author in split[part]:
            path = directory / f"{author}.jsonl"
            if not path.exists():
                continue  # an author still writing: the split is fixed, the files arrive
            data = path.read_bytes()
            digest.update(path.name.encode() + b"\0" + data)
            parts[part] += read_examples(data.decode("utf-8"), author)
    return Corpus(tuple(parts["train"]), tuple(parts["test"]), digest.hexdigest())


def read_examples(text: str, author: str | None = None) -> list[Example]:
    return [
        Example.from_json(json.loads(line), author) for line in text.splitlines() if line.strip()
    ]


def data_sha256(examples: Iterable[Example]) -> str:
    """A stable hash of labelled examples (corrections have no file of their own)."""
    digest = hashlib.sha256()
    for ex in sorted(examples, key=lambda e: e.id):
        row = [ex.id, ex.text, ex.kind, ex.category, ex.priority, ex.ward or ""]
        digest.update(json.dumps(row, ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


def authors(examples: Sequence[Example]) -> list[str]:
    return [ex.author for ex in examples]
