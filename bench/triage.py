"""Triage quality on the labeled messages in `tests/data/triage-labeled.jsonl`.

Prints kind accuracy, category accuracy (per category, over messages labeled as tips), priority
accuracy and urgent recall, for the development part, the held-out part and both.
Run: `.venv/bin/python -m bench.triage` (or `make bench`).
"""

import json
import re
import statistics
import sys
import time
import unicodedata
from collections import Counter
from pathlib import Path
from typing import Any

from services.reports.triage import Triager
from shared.places.text import fold

DATA = Path(__file__).resolve().parents[1] / "tests" / "data" / "triage-labeled.jsonl"


def load(path: Path = DATA) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def evaluate(triager: Triager, rows: list[dict[str, Any]]) -> dict[str, Any]:
    kind_ok = cat_ok = prio_ok = 0
    per_cat: Counter[str] = Counter()
    per_cat_ok: Counter[str] = Counter()
    urgent = urgent_found = 0
    misses: list[str] = []
    tips = 0
    for row in rows:
        got = triager.classify(row["text"])
        kind_ok += got.kind == row["kind"]
        prio_ok += got.priority == row["priority"]
        if row["kind"] == "tip":
            tips += 1
            per_cat[row["category"]] += 1
            hit = got.kind == "tip" and got.category == row["category"]
            per_cat_ok[row["category"]] += hit
            cat_ok += hit
        if row["priority"] == "urgent":
            urgent += 1
            urgent_found += got.priority == "urgent"
        if (
            got.kind != row["kind"]
            or (row["kind"] == "tip" and got.category != row["category"])
            or (row["priority"] == "urgent") != (got.priority == "urgent")
        ):
            misses.append(
                f"  {row['id']} want {row['kind']}/{row['category']}/{row['priority']} "
                f"got {got.kind}/{got.category}/{got.priority}: {row['text']}"
            )
    return {
        "n": len(rows),
        "kind_accuracy": kind_ok / len(rows),
        "category_accuracy": cat_ok / tips if tips else 0.0,
        "priority_accuracy": prio_ok / len(rows),
        "urgent_recall": urgent_found / urgent if urgent else 1.0,
        "urgent": urgent,
        "per_category": {c: (per_cat_ok[c], per_cat[c]) for c in sorted(per_cat)},
        "misses": misses,
    }


def report(name: str, result: dict[str, Any], show_misses: bool) -> None:
    print(f"== {name}: {result['n']} messages, {result['urgent']} urgent")
    print(f"kind accuracy      {result['kind_accuracy']:.1%}")
    print(f"category accuracy  {result['category_accuracy']:.1%}  (target >= 90%)")
    print(f"urgent recall      {result['urgent_recall']:.1%}  (target >= 95%)")
    print(f"priority accuracy  {result['priority_accuracy']:.1%}")
    for category, (ok, total) in result["per_category"].items():
        print(f"  {category:<18} {ok:>3}/{total:<3} {ok / total:.0%}")
    if show_misses:
        print("\n".join(result["misses"]))


# How people shorten words in chat; the reverse of the rules' abbreviation table, used to
# check that teencode does not cost accuracy.
TEENCODE = {
    "không": "ko",
    "được": "dc",
    "chồng": "ck",
    "vợ": "vk",
    "người": "ng",
    "với": "vs",
    "anh em": "ae",
    "gì": "j",
    "biết": "bik",
    "điện thoại": "dt",
    "mọi người": "mn",
    "thanh niên": "tn",
    "xe máy": "xm",
    "quá": "wa",
}
_TEENCODE = re.compile(r"\b(" + "|".join(sorted(TEENCODE, key=len, reverse=True)) + r")\b", re.I)


def teencode(text: str) -> str:
    """The message as a hurried chat user would type it: teencode, no diacritics."""
    return fold(_TEENCODE.sub(lambda m: TEENCODE[m.group(0).lower()], text))


def speed(triager: Triager, rows: list[dict[str, Any]], runs: int = 5) -> float:
    """Median over `runs` passes of the mean time to classify one message, in microseconds."""
    per_message = []
    for _ in range(runs):
        start = time.perf_counter()
        for row in rows:
            triager.classify(row["text"])
        per_message.append((time.perf_counter() - start) / len(rows) * 1e6)
    return statistics.median(per_message)


def main() -> None:
    triager = Triager.from_file()
    rows = load()
    verbose = "-v" in sys.argv
    for name, part in (
        ("dev", [r for r in rows if r["split"] == "dev"]),
        ("held-out", [r for r in rows if r["split"] == "heldout"]),
        ("all", rows),
        ("all, diacritics stripped", [r | {"text": fold(r["text"])} for r in rows]),
        ("all, NFD", [r | {"text": unicodedata.normalize("NFD", r["text"])} for r in rows]),
        ("all, teencode + no diacritics", [r | {"text": teencode(r["text"])} for r in rows]),
    ):
        report(name, evaluate(triager, part), verbose and not name.startswith("all"))
    print(f"speed: {speed(triager, rows):.0f} µs per message (median of 5 passes)")


if __name__ == "__main__":
    main()
