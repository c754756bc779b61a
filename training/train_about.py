"""Train the reading of questions about the article itself (`src/qa_bot/about_model.json`).

Each question is labelled by where its gold answer lies in its article, parsed as the index
parses it: the page's date line or dateline ("date"), its outlet ("outlet"), its headline and
no body sentence ("headline"), or the story ("none"). The questions written for this reading
(`data/about_questions.jsonl`: writers ra and rb over Reuters stories, fg over the seeds)
carry their label. Trained on those, on the written and formal seed questions, the Reuters
questions, the off-topic questions and XQuAD's training articles; C is chosen by cross-
validation grouped by writer. Reported on the seeds' test sets (`tests/realistic_questions.jsonl`
and `tests/heldout_questions.jsonl`), which training never reads. Run from the repository root:

    python training/train_about.py [--shared ../shared] [--out src/qa_bot/about_model.json]
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from collections import Counter
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "training"))

from train_ranker import xquad_test  # noqa: E402

from qa_bot.article_asked import ASKED_PARTS, question_features  # noqa: E402
from qa_bot.corpus import parse_article  # noqa: E402
from qa_bot.evaluation import EvalQuestion, load_questions  # noqa: E402
from qa_bot.models import Article  # noqa: E402
from qa_bot.text import fold  # noqa: E402

SEED = 20261202
#: The C values and class weights cross-validation chooses among.
CS = (0.3, 1.0, 3.0, 10.0)
CLASS_WEIGHTS = (None, "balanced")
#: Written classes as the parts the model reads ("dateline" is answered by the date line).
WRITTEN_PART = {"date": "date", "dateline": "date", "outlet": "outlet", "headline": "headline"}
DATA = ROOT / "training" / "data"
TRAIN_FILES = (
    "written_questions.jsonl",
    "formal_questions.jsonl",
    "reuters_questions.jsonl",
    "reuters_questions2.jsonl",
    "reuters_questions3.jsonl",
    "reuters_questions4.jsonl",
    "offtopic_questions.jsonl",
)
REPORT_FILES = ("tests/realistic_questions.jsonl", "tests/heldout_questions.jsonl")


def parsed(path: Path) -> Article:
    """An article as the index parses it."""
    return parse_article(
        path.read_text(encoding="utf-8"), article_id=path.stem, path=path.name, digest=""
    )


def articles(shared: Path) -> dict[str, Article]:
    """The seeds by their number ("002") and the Reuters stories by file name."""
    out = {p.name[:3]: parsed(p) for p in sorted((ROOT / "seeds").glob("*.txt"))}
    stories = shared / "external" / "reuters21578" / "articles"
    out.update({p.name: parsed(p) for p in sorted(stories.glob("*.txt"))})
    return out


def located(answer: str, article: Article) -> str:
    """Which part of ``article`` holds ``answer``: "outlet", "date", "headline" or "none"."""
    meta, wanted = article.meta, fold(answer).strip()
    if not wanted:
        return "none"
    if meta.outlet and wanted == fold(meta.outlet):
        return "outlet"
    stated = fold(article.text[slice(*meta.stated_span)]) if meta.stated_span else ""
    if _holds(stated, wanted) or _holds(fold(meta.date_text or ""), wanted):
        return "date"
    body = " ".join(fold(article.text[a:b]) for a, b in article.body)
    if _holds(fold(meta.title), wanted) and not _holds(body, wanted):
        return "headline"
    return "none"


def _holds(text: str, wanted: str) -> bool:
    """Whether ``text`` holds ``wanted`` as whole words ("20" is not in "2016")."""
    return re.search(rf"(?<!\w){re.escape(wanted)}(?!\w)", text) is not None


def label(q: EvalQuestion, by_doc: dict[str, Article]) -> str | None:
    """The part a question asks for, from where its gold answer lies; None when unknown (an
    on-topic question no article answers may still ask about an article)."""
    if q.unanswerable or not q.answers:
        return "none" if q.kind == "off-topic" else None
    parts = [located(a, by_doc[d]) for d in q.docs if d in by_doc for a in q.answers]
    found = [p for p in parts if p != "none"]
    return Counter(found).most_common(1)[0][0] if found else "none" if parts else None


def written(path: Path) -> list[tuple[str, str, str]]:
    """(writer, question, part) of the questions written for this reading."""
    rows = [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]
    return [
        (r["id"].split("-")[0], r["question"], WRITTEN_PART.get(r["class"], "none")) for r in rows
    ]


def labelled(paths: list[Path], by_doc: dict[str, Article]) -> list[tuple[str, str, str]]:
    """(writer, question, part) of the questions of ``paths`` whose part is known."""
    out = []
    for path in paths:
        for q in load_questions(path):
            part = label(q, by_doc)
            if part is not None:
                writer = q.id.split("-")[0] if "-" in q.id else path.stem
                out.append((writer, q.question, part))
    return out


def fit(rows: list[tuple[str, str, str]], c: float, weighting: str | None):
    from sklearn.feature_extraction.text import CountVectorizer
    from sklearn.linear_model import LogisticRegression

    vectorizer = CountVectorizer(analyzer=question_features, binary=True, min_df=2)
    x = vectorizer.fit_transform([q for _, q, _ in rows])
    y = np.array([ASKED_PARTS.index(p) for _, _, p in rows])
    model = LogisticRegression(C=c, class_weight=weighting, max_iter=3000, random_state=SEED).fit(
        x, y
    )
    return vectorizer, model


def predicted(vectorizer, model, questions: list[str]) -> list[str]:
    return [
        ASKED_PARTS[int(model.classes_[i])]
        for i in model.predict(vectorizer.transform(questions)).tolist()
    ]


def scores(gold: list[str], guess: list[str]) -> dict[str, object]:
    """Per part: precision and recall; and the macro F1 of the three parts asked of articles."""
    out: dict[str, object] = {"questions": len(gold)}
    f1s = []
    for part in ASKED_PARTS[1:]:
        tp = sum(g == part and p == part for g, p in zip(gold, guess, strict=True))
        n_gold, n_guess = gold.count(part), guess.count(part)
        precision = tp / n_guess if n_guess else 1.0
        recall = tp / n_gold if n_gold else 1.0
        f1s.append(2 * precision * recall / (precision + recall) if precision + recall else 0.0)
        out[part] = {"gold": n_gold, "found": n_guess, "right": tp}
    out["macro_f1"] = round(float(np.mean(f1s)), 4)
    return out


def choose(rows: list[tuple[str, str, str]]) -> tuple[tuple[float, str | None], dict[str, float]]:
    """The C and class weighting of best macro F1 over five folds grouped by writer."""
    writers = sorted({w for w, _, _ in rows})
    rng = np.random.default_rng(SEED)
    fold_of = dict(zip(writers, rng.permutation(len(writers)) % 5, strict=True))
    results = {}
    for setting in [(c, w) for w in CLASS_WEIGHTS for c in CS]:
        gold, guess = [], []
        for k in range(5):
            train = [r for r in rows if fold_of[r[0]] != k]
            test = [r for r in rows if fold_of[r[0]] == k]
            vectorizer, model = fit(train, *setting)
            gold += [p for _, _, p in test]
            guess += predicted(vectorizer, model, [q for _, q, _ in test])
        results[setting] = float(scores(gold, guess)["macro_f1"])
        print(
            f"C={setting[0]:g}, class weight {setting[1]}: grouped cross-validation macro F1 "
            f"{results[setting]:.4f}",
            flush=True,
        )
    return max(results, key=lambda s: (results[s], -s[0])), results


def exported(
    vectorizer, model, parts_order: tuple[str, ...]
) -> tuple[list[float], dict[str, list[float]]]:
    """Bias and per-feature weights in ``parts_order``, leaving out the features that move
    no part's logit."""
    order = [list(model.classes_).index(ASKED_PARTS.index(p)) for p in parts_order]
    coef, bias = model.coef_[order], model.intercept_[order]
    weights = {
        feature: [round(float(v), 4) for v in coef[:, j]]
        for feature, j in vectorizer.vocabulary_.items()
        if np.abs(coef[:, j]).max() >= 5e-4
    }
    return [round(float(b), 4) for b in bias], dict(sorted(weights.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=ROOT / "src/qa_bot/about_model.json")
    args = parser.parse_args(argv)
    by_doc = articles(args.shared)
    train = written(DATA / "about_questions.jsonl")
    train += labelled([DATA / f for f in TRAIN_FILES], by_doc)
    xquad = args.shared / "external/xquad_en/questions_dev.jsonl"
    train += [("xquad", q.question, "none") for q in load_questions(xquad) if not xquad_test(q)]
    report = labelled([ROOT / f for f in REPORT_FILES], by_doc)
    print(
        "training:",
        dict(Counter(p for _, _, p in train)),
        "report:",
        dict(Counter(p for _, _, p in report)),
    )
    (c, weighting), cv = choose(train)
    vectorizer, model = fit(train, c, weighting)
    reported = scores(
        [p for _, _, p in report], predicted(vectorizer, model, [q for _, q, _ in report])
    )
    print("report (tests, never trained on):", json.dumps(reported), flush=True)
    bias, weights = exported(vectorizer, model, ASKED_PARTS)
    spec = {
        "parts": list(ASKED_PARTS),
        "bias": bias,
        "provenance": {
            "script": "training/train_about.py",
            "seed": SEED,
            "C": c,
            "class_weight": weighting,
            "cross_validation_macro_f1": {f"C={k[0]:g},{k[1]}": round(v, 4) for k, v in cv.items()},
            "training": dict(Counter(p for _, _, p in train)),
            "report": reported,
        },
        "weights": weights,
    }
    args.out.write_text(json.dumps(spec, separators=(",", ":")) + "\n", encoding="utf-8")
    print(f"wrote {args.out} ({len(weights):,} features)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
