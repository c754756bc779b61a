"""Train the quote model (``src/qa_bot/quote_model.json``): which sentence the first quote
starts from and which side it grows to.

Every question is asked of the served answer path (the packaged ranker and adapter, the
reader ``--reader`` names, the packaged one by default, with the hand order of quoting); for
the best passage, each sentence a first quote may hold becomes a row of
:func:`qa_bot.quote_choice.sentence_rows`, labelled by whether it holds a gold answer. A
logistic regression is fitted on every training question:

* the seeds' realistic questions of :data:`FIT_WRITERS` and of the writers the reader trained
  on (``reader_record.trained_writers``, read from its record);
* XQuAD and Reuters (first and third batch) training questions of the reader's combination
  fold (``train_reader.in_fold``), which it never trained on.

The seeds' questions the reader trained on are fitted too: without them (1,596 questions
instead of 3,091) the held-out sets below fared no better.

Reported, never fitted on: the seeds' realistic questions ``tune_reader`` reports for the
reader (``writers.reported_writers``), ``tests/heldout_questions.jsonl``, XQuAD and
Reuters held-out questions (``train_ranker.xquad_test``, ``reuters_test``) and the whole
second Reuters batch: the share whose first quote holds a gold answer, by the hand order, by
the model and by the packaged model.

The packaged model was fitted for the twelfth round's reader (``--reader`` it, the reader
``tune_reader.py`` makes from ``train_reader.py``'s, training/README "Order"); fitted again for
the reader that ships since the nineteenth round, it did no better on any reported set
(benchmarks/README.md, "Twentieth round").

Run from the repository root after ``train_ranker.py`` (it reads the XQuAD + Reuters corpus
that script copies into ``--work``). About 10 minutes on 2 cores; the rows are cached in
``--work`` (``--reuse``).
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import asked_examples
import keyed_cache
import reader_record
import train_ranker
import train_reader
import writers
from train_ranker import SEED
from writers import FIT_WRITERS

from qa_bot import ranker
from qa_bot.answer import MAX_SENTENCES, hand_choice, pivot_weights, quote_region
from qa_bot.answer_types import AnswerType
from qa_bot.evaluation import EvalQuestion, contains_answer, load_questions
from qa_bot.quote_choice import INPUTS, QuoteModel, Sentences, choose, sentence_rows
from qa_bot.reader import load_spec
from qa_bot.runtime import prepare_process
from qa_bot.service import QAService
from qa_bot.settings import PACKAGED_ADAPTER, PACKAGED_READER, load_settings

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "src" / "qa_bot" / "quote_model.json"
Test = Callable[[EvalQuestion], bool]
#: The Reuters question batches fitted (their fold) and reported (their held-out stories).
REUTERS_BATCHES = ("reuters_questions", "reuters_questions3")
#: The Reuters question batch only reported.
REUTERS_REPORTED = "reuters_questions2"
#: Regularisation of the logistic regression (chosen on the fitted questions' own fold).
C_GRID = (0.01, 0.1, 1.0, 10.0)


@dataclass(frozen=True)
class QuoteRow:
    """One question as the served path saw it: the sentences its first quote may hold."""

    set_name: str
    test: bool
    question: str
    answers: tuple[str, ...]
    sentences: Sentences
    weights: dict[str, float]
    expected: AnswerType | None
    limit: int

    def labels(self) -> np.ndarray:
        return np.asarray(
            [
                contains_answer(self.sentences.sentence(i), self.answers)
                for i in range(len(self.sentences.spans))
            ],
            dtype=bool,
        )

    def rows(self) -> np.ndarray:
        return sentence_rows(self.question, self.sentences, self.weights, self.expected)


def asked(
    service: QAService, set_name: str, questions: Sequence[EvalQuestion], test_of
) -> list[QuoteRow]:
    """``questions`` asked of ``service`` as served; a row for each answerable one whose
    best passage gives a first quote to choose."""
    limit = service.settings.retrieval.max_quote_chars
    snapshot = service.snapshot()
    out = []
    for q in questions:
        if not q.answers:
            continue
        _, retrieval = service.explain(q.question)
        if not retrieval.hits:
            continue
        hit = retrieval.hits[0]
        text = snapshot.article_text(hit.article.id) or ""
        sentences = quote_region(hit, retrieval.hits, retrieval.context, text)
        if sentences is None:
            continue
        discount = service.settings.retrieval.speaker_name_weight
        weights = pivot_weights(q.question, retrieval.weights, discount)
        out.append(
            QuoteRow(
                set_name,
                test_of(q),
                q.question,
                q.answers,
                sentences,
                weights,
                retrieval.expected,
                limit,
            )
        )
    print(f"  {set_name}: {len(out)} questions", file=sys.stderr, flush=True)
    return out


def served(seeds: Path, index: Path, reader: Path) -> QAService:
    """The answer path as it ships (with ``reader``), with the hand order of quoting (the rows
    record the sentences, not a choice among them)."""
    settings = load_settings(seeds_dir=seeds, index_dir=index)
    update = {"quote_model": None, "reader": reader}
    retrieval = settings.retrieval.model_copy(update=update)
    service = QAService(settings.model_copy(update={"retrieval": retrieval}))
    service.ensure_index()
    return service


def collect(args: argparse.Namespace) -> list[QuoteRow]:
    """Every question this script fits on or reports, asked as served; with ``--reuse``, read
    back from ``--work`` when asked of the same served path (packaged ranker and adapter, the
    reader named), question files and writers."""
    realistic_file = asked_examples.REALISTIC
    trained, reported = quoted_writers(args.reader)
    xquad_file = args.shared / "external/xquad_en/questions_dev.jsonl"
    files = [
        *sorted(args.reader.iterdir()),
        PACKAGED_ADAPTER,
        ROOT / "src/qa_bot" / ranker.PACKAGED,
        realistic_file,
        ROOT / "tests/heldout_questions.jsonl",
        xquad_file,
        *(
            ROOT / "training/data" / f"{name}.jsonl"
            for name in (*REUTERS_BATCHES, REUTERS_REPORTED)
        ),
    ]
    if args.written:
        files.append(asked_examples.WRITTEN_QUESTIONS)
    named = [",".join(w) for w in (FIT_WRITERS, reported, trained)]
    key = keyed_cache.digest(files, [*named, f"written={args.written}"])
    cache = args.work / "quote_rows.pkl"
    if not args.reuse:
        cache.unlink(missing_ok=True)
    return keyed_cache.keyed(
        cache, key, lambda: _ask_all(args, (trained, reported), realistic_file, xquad_file)
    )


def quoted_writers(reader: Path) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The seeds' writers the reader trained on (fitted beside FIT_WRITERS) and those
    ``tune_reader`` reports for it (only reported), read from the reader's record."""
    trained = reader_record.trained_writers(load_spec(reader).provenance)
    return trained, writers.reported_writers(trained)


def _ask_all(
    args: argparse.Namespace,
    writers: tuple[tuple[str, ...], tuple[str, ...]],
    realistic_file: Path,
    xquad_file: Path,
) -> list[QuoteRow]:
    """Each set's questions asked of the served path, fitted or only reported."""
    seeds = served(ROOT / "seeds", args.work / "seeds_served_index", args.reader)
    xr = served(args.work / "xr_seeds", args.work / "xr_index", args.reader)
    realistic = load_questions(realistic_file)
    fitted = [q for q in realistic if q.set_id in FIT_WRITERS]
    reported = [q for q in realistic if q.set_id in writers[1]]
    trained = [q for q in realistic if q.set_id in writers[0]]
    rows = asked(seeds, "realistic", fitted, lambda q: False)
    rows += asked(seeds, "realistic-trained", trained, lambda q: False)
    rows += asked(seeds, "realistic-report", reported, lambda q: True)
    if args.written:
        written = load_questions(asked_examples.WRITTEN_QUESTIONS)
        rows += asked(seeds, "written", written, lambda q: False)
    rows += asked(
        seeds, "heldout", load_questions(ROOT / "tests/heldout_questions.jsonl"), lambda q: True
    )
    xquad = load_questions(xquad_file)
    rows += asked(
        xr, "xquad", _fold_or_test(xquad, train_ranker.xquad_test), train_ranker.xquad_test
    )
    for name in REUTERS_BATCHES:
        batch = load_questions(ROOT / "training/data" / f"{name}.jsonl")
        rows += asked(
            xr, name, _fold_or_test(batch, train_ranker.reuters_test), train_ranker.reuters_test
        )
    second = load_questions(ROOT / "training/data" / f"{REUTERS_REPORTED}.jsonl")
    rows += asked(xr, REUTERS_REPORTED, second, lambda q: True)
    return rows


def _fold_or_test(questions: Sequence[EvalQuestion], test_of: Test) -> list[EvalQuestion]:
    """The held-out questions and those of the reader's combination fold: the questions of
    this corpus the packaged reader never trained on."""
    return [q for q in questions if test_of(q) or train_reader.in_fold(q)]


def fit(rows: Sequence[QuoteRow], c: float) -> QuoteModel:
    """The sentence scorer over the fitted questions that some sentence answers, each
    question weighing the same however many sentences it has."""
    xs, ys, ws = [], [], []
    for r in rows:
        labels = r.labels()
        if not labels.any():
            continue
        xs.append(r.rows())
        ys.append(labels)
        ws.append(np.full(len(labels), 1.0 / len(labels)))
    x, y, w = np.vstack(xs), np.concatenate(ys), np.concatenate(ws)
    model = train_ranker.fit(x, y.astype(int), c, w * len(w) / w.sum(), bounded=True)
    return QuoteModel(replace(model, names=INPUTS), {})


def first_holds(rows: Sequence[QuoteRow], choice: Callable[[QuoteRow], tuple[int, int]]) -> float:
    """Share of ``rows`` whose first quote, as ``choice`` makes it, holds a gold answer."""
    held = [contains_answer(r.sentences.text[slice(*choice(r))], r.answers) for r in rows]
    return float(np.mean(held)) if held else float("nan")


def hand(r: QuoteRow) -> tuple[int, int]:
    return hand_choice(r.sentences, r.weights, r.expected, r.limit)


def learned(model: QuoteModel) -> Callable[[QuoteRow], tuple[int, int]]:
    return lambda r: choose(r.sentences, model.scores(r.rows()), r.limit, MAX_SENTENCES)


def report(
    rows: Sequence[QuoteRow], model: QuoteModel, packaged: QuoteModel
) -> dict[str, dict[str, float]]:
    """Per set (fitted rows and held-out rows apart): first quote holds an answer, by hand
    order, by the model and by the ``packaged`` one it would replace."""
    groups: dict[str, list[QuoteRow]] = defaultdict(list)
    for r in rows:
        groups[
            f"{r.set_name}{' (held out)' if r.test and r.set_name not in HELD_SETS else ''}"
        ].append(r)
    out = {}
    for name, items in sorted(groups.items()):
        out[name] = {
            "questions": len(items),
            "hand": round(first_holds(items, hand), 4),
            "model": round(first_holds(items, learned(model)), 4),
            "packaged": round(first_holds(items, learned(packaged)), 4),
        }
    return out


#: Sets that are held out whole.
HELD_SETS = ("realistic-report", "heldout", "reuters_questions2")


def choose_c(rows: Sequence[QuoteRow]) -> float:
    """C by first-quote rate on every fifth fitted question, fitted on the others."""
    fold = [i % 5 == 0 for i in range(len(rows))]
    train = [r for r, f in zip(rows, fold, strict=True) if not f]
    check = [r for r, f in zip(rows, fold, strict=True) if f]
    scored = [(first_holds(check, learned(fit(train, c))), -c, c) for c in C_GRID]
    print("  C:", [(c, round(v, 4)) for v, _, c in scored], file=sys.stderr)
    return max(scored)[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-train"))
    parser.add_argument("--shared", type=Path, default=ROOT.parent / "shared")
    parser.add_argument("--out", type=Path, default=OUT)
    parser.add_argument(
        "--reader", type=Path, default=PACKAGED_READER, help="the reader the quotes are for"
    )
    parser.add_argument(
        "--reuse", action="store_true", help="read the rows cached for the same inputs"
    )
    parser.add_argument(
        "--written",
        action="store_true",
        help="fit on the questions written for the decision (WRITTEN_QUESTIONS) too",
    )
    args = parser.parse_args(argv)
    prepare_process()
    packaged = QuoteModel.load(OUT)  # the one in the package, whatever --out is
    rows = collect(args)
    fitted = [r for r in rows if not r.test]
    c = choose_c(fitted)
    model = fit(fitted, c)
    table = report(rows, model, packaged)
    provenance = {
        "script": "training/train_quote.py",
        "seed": SEED,
        "c": c,
        "fitted_questions": len(fitted),
        "report": table,
    }
    model = QuoteModel(model.model, provenance)
    args.out.write_text(model.to_json() + "\n", encoding="utf-8")
    print(json.dumps(table, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
