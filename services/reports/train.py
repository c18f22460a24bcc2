"""`python -m services.reports.train`: train the triage model on the corpus's training authors
(plus, in a deployment, staff corrections), choose its thresholds by author-grouped
cross-validation, score old and new on the test authors side by side, and install the new
model only if it is not worse.

`make triage-model` runs it without corrections, so the model in the repository comes from the
corpus alone and never holds a citizen's words.
"""

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sklearn

from services.reports.corpus import CORPUS_DIR, Corpus, Example, data_sha256, load_corpus
from services.reports.corrections import examples_from
from services.reports.evaluation import HEADLINE, Outcome, is_not_worse, score, summary
from services.reports.learn import CrossValidation, Params, cross_validate, fit, model_of, tune
from services.reports.lexicon import tokenize
from services.reports.model import ModelError, TriageModel, save
from services.reports.normalize import Normalizer
from services.reports.safety import SafetyRules
from services.reports.settings import ReportsSettings
from services.reports.store import ReportsStore
from services.reports.triage import QuestionCues, Triager, TriageRules
from shared.mongo import connect_mongo

ROWS = (*HEADLINE, "tips_lost", "priority_accuracy", "review_rate")


def outcomes(triager: Triager, examples: Sequence[Example]) -> list[Outcome]:
    results = []
    for example in examples:
        triage = triager.classify(example.text)
        results.append(Outcome(triage.kind, triage.category, triage.priority, triage.review))
    return results


def side_by_side(old: dict[str, Any] | None, new: dict[str, Any]) -> str:
    lines = [f"{'test authors':<20} {'installed':>10} {'new':>10}"]
    for name in (*ROWS, "summary"):
        value = summary(new) if name == "summary" else new[name]
        before = "—" if old is None else f"{summary(old) if name == 'summary' else old[name]:.1%}"
        lines.append(f"{name:<20} {before:>10} {value:>10.1%}")
    return "\n".join(lines)


def read_corrections(url: str, database: str) -> list[Example]:
    """Staff corrections from this deployment's MongoDB."""

    async def read() -> list[dict[str, Any]]:
        client = connect_mongo(url)
        try:
            return await ReportsStore(client[database]).all_corrections()
        finally:
            await client.close()

    return examples_from(asyncio.run(read()))


def train(
    corpus: Corpus,
    corrections: list[Example],
    rules: TriageRules,
    safety: SafetyRules,
    params: Params,
) -> tuple[Triager, CrossValidation, dict[str, Any]]:
    """The new model's triager, its cross-validation and its manifest (not yet saved)."""
    normalizer = Normalizer(rules.abbreviations, rules.dialect)
    examples = [*corpus.train, *corrections]
    tokens = [tokenize(e.text, rules.abbreviations) for e in examples]
    danger = [bool(safety.check(t)) for t in tokens]
    cues = QuestionCues(rules.question_cues)
    cv = cross_validate(examples, normalizer, params, danger)
    cv.asks = [cues.asks(e.text, t) for e, t in zip(examples, tokens, strict=True)]
    thresholds = tune(cv)
    fitted = fit(examples, normalizer, params)
    manifest = {
        "format": 1,
        "trained_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "sklearn": sklearn.__version__,
        "data_sha256": corpus.sha256,
        "corrections_sha256": data_sha256(corrections),
        "examples": {"corpus": len(corpus.train), "corrections": len(corrections)},
        "params": {"c": params.c, "min_df": params.min_df, "balanced": params.balanced},
        "thresholds": thresholds.model_dump(),
        "cross_validation": _headline(cv.scores(), folds=cv.folds),
        "abbreviations": normalizer.abbreviations,
        "dialect": normalizer.dialect,
    }
    model = model_of(fitted, normalizer, thresholds)
    return Triager(rules, model, safety), cv, manifest


def _headline(scores: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {name: round(float(scores[name]), 4) for name in ROWS} | extra


def installed(model_file: Path, rules: TriageRules, safety: SafetyRules) -> Triager | None:
    try:
        return Triager(rules, TriageModel.load(model_file), safety)
    except (FileNotFoundError, ModelError, KeyError) as exc:
        print(
            f"no usable installed model ({type(exc).__name__}): the new one is compared to nothing"
        )
        return None


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rules = TriageRules.load(args.rules)
    safety = SafetyRules.from_file(args.safety)
    corpus = load_corpus(args.corpus)
    corrections = (
        [] if args.no_corrections else read_corrections(args.mongodb_url, args.mongodb_database)
    )
    print(f"training authors: {len(corpus.train)} messages, corrections: {len(corrections)}")
    params = Params(c=args.c, min_df=args.min_df, balanced=not args.unbalanced)
    new, cv, manifest = train(corpus, corrections, rules, safety, params)
    print(
        f"cross-validation ({cv.folds} author folds): " + json.dumps(manifest["cross_validation"])
    )
    old = installed(args.model, rules, safety)
    new_scores = score(corpus.test, outcomes(new, corpus.test))
    old_scores = score(corpus.test, outcomes(old, corpus.test)) if old else None
    print(side_by_side(old_scores, new_scores))
    if old_scores is not None and not is_not_worse(new_scores, old_scores) and not args.force:
        print("new model is worse on the test authors: kept the installed one")
        return 1
    manifest["test"] = _headline(new_scores, messages=len(corpus.test))
    save(args.model, list(new.model.extractor.channels), new.model.heads, manifest)
    print(f"installed {args.model}")
    return 0


def _parser() -> argparse.ArgumentParser:
    settings = ReportsSettings()
    parser = argparse.ArgumentParser(prog="python -m services.reports.train", description=__doc__)
    parser.add_argument("--corpus", type=Path, default=CORPUS_DIR)
    parser.add_argument("--model", type=Path, default=settings.triage_model_file)
    parser.add_argument("--rules", type=Path, default=settings.triage_rules_file)
    parser.add_argument("--safety", type=Path, default=settings.safety_rules_file)
    parser.add_argument("--mongodb-url", default=settings.mongodb_url)
    parser.add_argument("--mongodb-database", default=settings.mongodb_database)
    parser.add_argument("--no-corrections", action="store_true", help="the corpus alone")
    parser.add_argument("--force", action="store_true", help="install even if worse")
    parser.add_argument("--c", type=float, default=Params.c)
    parser.add_argument("--min-df", type=int, default=Params.min_df)
    parser.add_argument("--unbalanced", action="store_true")
    return parser


if __name__ == "__main__":
    sys.exit(main())
