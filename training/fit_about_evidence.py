"""Fit when a question about the article itself is answered (`retrieval.about_min_evidence`
and `retrieval.about_evidence_dense_weight`).

Such a question ("when was the TASS report on Ryabkov's remarks published?") is answered from
an article's date line, outlet or headline, which the learned answer decision never saw, so
the served path decides it by the evidence rule: coverage (the share of the question's words
in the best passage with its article's title, outlet and date) + weight x best cosine must
reach a threshold. Its hand-set values (those of `ranker = "hand"`, 1.35 and 2) declined
questions whose article the seeds hold. Here both are fitted: a logistic regression over
coverage and cosine, class-balanced, its C chosen by cross-validation grouped by writer.

Positives: the questions of `data/` over the seeds that the served path reads as about the
article (`Query.about`); negatives: the same kind of question about Reuters stories
(`data/about_questions.jsonl`, writers ra and rb) and the off-topic questions, asked of the
seeds. Questions declined for naming someone no article mentions are decided before this rule
and left out, and so are on-topic questions the articles do not answer: what they ask for (an
author, the hour) is a question for the about-model, not for whether the article is there.
The seeds' test sets (`tests/`) are never read. Run from the repository root (about 3 min):

    python training/fit_about_evidence.py [--work /tmp/qa-train/about_evidence]

It prints the two settings; `--check` exits 1 when `config/settings.toml` holds others.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from qa_bot.evaluation import EvalQuestion, load_questions  # noqa: E402
from qa_bot.service import QAService  # noqa: E402
from qa_bot.settings import load_settings  # noqa: E402

DATA = ROOT / "training" / "data"
FILES = (
    "about_questions.jsonl",
    "formal_questions.jsonl",
    "written_questions.jsonl",
    "offtopic_questions.jsonl",
)
#: The C values cross-validation chooses among, and its number of folds.
CS = (0.1, 0.3, 1.0, 3.0, 10.0, 30.0, 100.0)
FOLDS = 5
#: Rounding of the printed settings (the config file's precision).
DIGITS = 2


def label(q: EvalQuestion, seeds: set[str]) -> int | None:
    """1 for an answerable question over the seeds, 0 for one about other stories (or off
    topic), None for an on-topic question the seeds do not answer."""
    over_seeds = bool(q.docs) and all(d in seeds for d in q.docs)
    if q.kind == "off-topic" or (q.docs and not over_seeds):
        return 0
    if q.unanswerable or not over_seeds:
        return None
    return 1


def rows(service: QAService) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Coverage and best cosine of each question read as about the article, its label and
    its writer."""
    seeds = {p.name[:3] for p in (ROOT / "seeds").glob("*.txt")}
    x, y, writers = [], [], []
    for name in FILES:
        for q in load_questions(DATA / name):
            wanted = label(q, seeds)
            if wanted is None:
                continue
            _, found = service.explain(q.question)
            if found.query is None or found.query.about is None or found.unknown_names:
                continue
            cosine = max((h.dense for h in found.hits[:5]), default=0.0)
            x.append((found.coverage, cosine))
            y.append(wanted)
            writers.append(q.set_id)
    return np.asarray(x, dtype=float), np.asarray(y), writers


def chosen_c(x: np.ndarray, y: np.ndarray, writers: list[str]) -> float:
    """The C with the best log-loss over folds grouped by writer."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import log_loss
    from sklearn.model_selection import GroupKFold

    losses = {}
    for c in CS:
        folds = GroupKFold(n_splits=FOLDS).split(x, y, writers)
        loss = 0.0
        for train, test in folds:
            model = LogisticRegression(C=c, class_weight="balanced").fit(x[train], y[train])
            loss += log_loss(y[test], model.predict_proba(x[test])[:, 1], labels=[0, 1])
        losses[c] = loss / FOLDS
        print(f"C {c:g}: log-loss {losses[c]:.4f}")
    return min(CS, key=lambda c: losses[c])


def fitted(x: np.ndarray, y: np.ndarray, c: float) -> tuple[float, float]:
    """The rule the logistic regression draws at probability 0.5, as the settings write it:
    coverage + weight x cosine >= threshold."""
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=c, class_weight="balanced").fit(x, y)
    (w_coverage, w_cosine), bias = model.coef_[0], model.intercept_[0]
    if w_coverage <= 0:
        raise SystemExit("coverage does not say the article is there: no rule to write")
    return round(w_cosine / w_coverage, DIGITS), round(-bias / w_coverage, DIGITS)


def report(x: np.ndarray, y: np.ndarray, weight: float, threshold: float, name: str) -> None:
    answered = x[:, 0] + weight * x[:, 1] >= threshold
    print(
        f"{name}: answers {int(answered[y == 1].sum())} of {int((y == 1).sum())} about the "
        f"seeds, {int(answered[y == 0].sum())} of {int((y == 0).sum())} about other stories"
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-train/about_evidence"))
    parser.add_argument("--check", action="store_true", help="compare with the config")
    args = parser.parse_args(argv)
    settings = load_settings(seeds_dir=ROOT / "seeds", index_dir=args.work / "index")
    service = QAService(settings)
    service.ensure_index()
    x, y, writers = rows(service)
    print(f"{len(y)} questions read as about the article: {int(y.sum())} about the seeds")
    weight, threshold = fitted(x, y, chosen_c(x, y, writers))
    served = settings.retrieval
    report(x, y, served.evidence_dense_weight, served.min_evidence, "the hand rule")
    report(x, y, weight, threshold, "fitted")
    print(f"about_evidence_dense_weight = {weight}\nabout_min_evidence = {threshold}")
    same = (weight, threshold) == (
        served.about_evidence_dense_weight,
        served.about_min_evidence,
    )
    if args.check and not same:
        print("config/settings.toml holds other values")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
