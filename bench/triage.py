"""Triage quality and speed on the author-disjoint test set of the corpus.

The corpus (`tests/data/triage/corpus/`, split in `split.json`) was written by eight independent
authors; the model is trained on the training authors only, so these figures are for people
whose writing it never saw. Prints kind accuracy, tips lost, category accuracy and per-category
precision / recall / F1, the confusion matrix, urgent recall and precision, ward accuracy, the
same per style, latency p50/p99 per message on one core, and the model's load time. Never
prints a test message. Run: `.venv/bin/python -m bench.triage` (or `make bench`).
"""

import os
import statistics
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from services.reports.corpus import CORPUS_DIR, Example, load_corpus
from services.reports.evaluation import NOT_TIP, Outcome, by_style, score
from services.reports.triage import Triager
from services.reports.wards import ward_in_text
from shared.events.tips import TipCategory
from shared.places import (
    DEFAULT_UNITS_FILE,
    DEMO_CROSSWALK_FILE,
    DEMO_PLACES_FILE,
    UNKNOWN_WARD,
    Gazetteer,
)

WATCHED_STYLES = ("no_diacritics", "dialect")
LOAD_SNIPPET = (
    "import time; t = time.perf_counter(); "
    "from services.reports.triage import Triager; Triager.from_files(); "
    "print(time.perf_counter() - t)"
)


def gazetteer() -> Gazetteer:
    """Both unit sets, and the villages and places an operator adds (the labelling guide lists
    the same ones as the demo file). The corpus labels the unit a text names, former or new;
    the crosswalk only decides which current ward's desk gets it, so the bench scores the
    named unit (`PlaceMatch.unit`) and the service routes on `PlaceMatch.ward`."""
    return Gazetteer.load(DEFAULT_UNITS_FILE, DEMO_CROSSWALK_FILE, DEMO_PLACES_FILE)


def outcomes(triager: Triager, places: Gazetteer, examples: Sequence[Example]) -> list[Outcome]:
    results = []
    for example in examples:
        triage = triager.classify(example.text)
        named = ward_in_text(places, example.text)
        ward = named.unit if named is not None else UNKNOWN_WARD
        results.append(Outcome(triage.kind, triage.category, triage.priority, triage.review, ward))
    return results


def headline(name: str, s: dict[str, Any]) -> str:
    ward = "—" if s["ward_accuracy"] is None else f"{s['ward_accuracy']:.1%}"
    return (
        f"{name:<16} {s['n']:>5} {s['kind_accuracy']:>7.1%} {s['tips_lost']:>7.1%} "
        f"{s['category_accuracy']:>7.1%} {s['urgent_recall']:>7.1%} ({s['urgent']:>3}) "
        f"{s['urgent_precision']:>7.1%} {ward:>7} {s['review_rate']:>7.1%}"
    )


HEADER = (
    f"{'part':<16} {'n':>5} {'kind':>7} {'lost':>7} {'categ.':>7} {'urg.rec':>7} {'(n)':>5} "
    f"{'urg.prec':>7} {'ward':>7} {'review':>7}"
)


def report(scores: dict[str, Any], styles: dict[str, Any]) -> None:
    print(HEADER)
    print(headline("test (all)", scores))
    for style, part in styles.items():
        mark = " *" if style in WATCHED_STYLES else ""
        print(headline(style + mark, part))
    print("\nper category (over test tips): precision / recall / F1 (support)")
    for category, (p, r, f1, n) in scores["per_category"].items():
        print(f"  {category:<18} {p:>6.1%} {r:>6.1%} {f1:>6.1%} ({n})")
    print("\nconfusion (rows: labelled category, columns: triaged; '-' = not a tip)")
    columns = [c.value for c in TipCategory] + [NOT_TIP]
    print(" " * 18 + "".join(f"{c[:5]:>6}" if c != NOT_TIP else "     -" for c in columns))
    for label, row in scores["confusion"].items():
        print(f"  {label:<16}" + "".join(f"{row.get(c, 0):>6}" for c in columns))


def latency(triager: Triager, examples: Sequence[Example], passes: int = 3) -> dict[str, float]:
    """p50 and p99 in ms of one `classify` call, pinned to one core: wall clock, and the CPU
    time of this thread (on a shared machine other processes stretch the wall clock; the CPU
    time is what one message costs)."""
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    wall, cpu = [], []
    for _ in range(passes):
        for example in examples:
            start, start_cpu = time.perf_counter(), time.thread_time()
            triager.classify(example.text)
            cpu.append((time.thread_time() - start_cpu) * 1000)
            wall.append((time.perf_counter() - start) * 1000)
    w, c = statistics.quantiles(wall, n=100), statistics.quantiles(cpu, n=100)
    return {"wall_p50": w[49], "wall_p99": w[98], "cpu_p50": c[49], "cpu_p99": c[98]}


def load_seconds(runs: int = 3) -> float:
    """Median time, in a fresh interpreter, to import triage and load the model and rules."""
    results = []
    for _ in range(runs):
        out = subprocess.run(
            [sys.executable, "-c", LOAD_SNIPPET], capture_output=True, text=True, check=True
        )
        results.append(float(out.stdout.strip()))
    return statistics.median(results)


def main() -> None:
    corpus = load_corpus(Path(sys.argv[1]) if len(sys.argv) > 1 else CORPUS_DIR)
    triager = Triager.from_files()
    print(f"model trained on data sha256 {triager.model.manifest.get('data_sha256', '?')[:16]}…")
    print(f"test authors: {len(corpus.test)} messages (training: {len(corpus.train)})\n")
    results = outcomes(triager, gazetteer(), corpus.test)
    report(score(corpus.test, results), by_style(corpus.test, results))
    t = latency(triager, corpus.test)
    print(
        f"\nlatency per message, one core, 3 passes: CPU p50 {t['cpu_p50']:.2f} ms, "
        f"p99 {t['cpu_p99']:.2f} ms; wall clock p50 {t['wall_p50']:.2f} ms, "
        f"p99 {t['wall_p99']:.2f} ms (load average {os.getloadavg()[0]:.1f})"
    )
    print(f"model load (fresh interpreter, import + load, median of 3): {load_seconds():.2f} s")


if __name__ == "__main__":
    main()
