r"""Adapt the passage reader to questions over the seeds: the folder shipped as
``src/qa_bot/trained_reader/`` (``reader.json``, ``reader_weights.npz``).

The reader ``train_reader.py`` makes learns from 1987 business wire and Wikipedia; on questions
over the seeds (conflict and diplomacy reporting, typed the way people chat) it did not beat
the learned ranker alone. This script trains it one more, short epoch on the seeds' realistic
question sets, written blind by several writers, and keeps later writers out of training to
fit and to check it. Fixed seed; run from the repository root, after the two scripts before it::

    python training/train_ranker.py                                 # and its question cache
    python training/train_reader.py --out /tmp/qa-train/reader      # the base reader, ~40 min
    python training/tune_reader.py --out /tmp/qa-train/tuned        # ~115 min
    python training/tune_reader.py --base /tmp/qa-train/tuned --out /tmp/qa-train/served \
        --writers p11,p12,p13,p14,p15,p16,p17,p18 --span-fits       # ~35 min
    python training/tune_reader.py --base /tmp/qa-train/served --out /tmp/qa-train/third \
        --writers p69,p70,...,p110 --span-fits                      # ~45 min
    python training/tune_reader.py --base /tmp/qa-train/third --out /tmp/qa-train/fourth \
        --writers h72,...,h94,h111,...,h118,p91,...,p110 --span-fits  # ~50 min
    python training/tune_reader.py --base /tmp/qa-train/fourth --out /tmp/qa-train/fifth \
        --writers h119,...,h128,p111,...,p131 --span-fits           # ~45 min
    python training/tune_reader.py --base /tmp/qa-train/fifth --span-fits \
        --writers da,db,dc,dd,de,df,p146,...,p157                   # what ships, ~80 min

Split, by writer (``writers.py``: the set id that starts a question's id in
``tests/realistic_questions.jsonl``):

* TRAIN_WRITERS (in the second epoch SERVED_WRITERS, in the third LATER_SERVED_WRITERS, in the
  fourth FOURTH_EPOCH_WRITERS, in the fifth FIFTH_EPOCH_WRITERS, in the sixth
  SIXTH_EPOCH_WRITERS) train the reader, with REPLAY
  pairs from the base reader's own training questions, so that it keeps what it learned there;
* FIT_WRITERS (counted SEEDS_FIT_WEIGHT times) with the base reader's combination fold (one
  XQuAD article or Reuters story in five, which neither reader trained on) fit the join: the
  order's weights (held at ORDER; ``--fit-order`` chooses them), the decision and the topic
  model, logistic regressions over what the reader made of the passages read, its span margins
  and the question features (``reader.DECISION_INPUTS``);
* since the twenty-sixth round the decision for the articles the reader was tuned on
  (``ReaderSpec.answer_tuned``, the seeds: ``tuned_articles``), fitted apart since the
  twenty-fifth, is boosted trees fitted on FIT_WRITERS, DECISION_WRITERS and the formal
  questions written for it (FORMAL_QUESTIONS; ``--written`` adds WRITTEN_QUESTIONS);
* REPORT_WRITERS (less those an epoch trained on), the learned ranker's held-out XQuAD and
  Reuters questions and one written off-topic question in five are only reported.

The topic model tells questions about what the articles cover from questions on other subjects
asked of them (the fold's questions asked of the seeds and the other way round, and
OFF_TOPIC_QUESTIONS); serving declines below ``retrieval.reader_topic_threshold`` whatever the
decision says. The join reads what the service reads: the ranker's best READ_DEPTH passages and
the ``retrieval.adapter_reads`` nearest the question moved by the query adapter (``--adapter``),
as the int8 export serving reads them (``--join-on-torch``: as the torch module does).

``--writers`` may also name served formal checks (sets of ``tests/heldout_questions.jsonl``,
such as h72; ``writers.SERVED_FORMAL_SETS``, with P91 to P110 the fourth epoch, and
``writers.FIFTH_EPOCH_WRITERS``, the fifth) and writers of WRITTEN_QUESTIONS (da to df with
P146 to P157 are ``writers.SIXTH_EPOCH_WRITERS``, the sixth); those fitting the decision are
refused like the writers fitting the join.

``--join-only`` fits the join again over the weights already in ``--out`` (``--rows FILE``
keeps the scored rows, so that a further refit takes seconds). ``--written`` fits the decision
for the tuned articles on WRITTEN_QUESTIONS too; ``--writers``, ``--replay``,
``--removed-weight``, ``--masked``, ``--swapped``, ``--news``, ``--xquad`` and ``--reorder``
change what the epoch reads; each was measured in a round of benchmarks/README.md and not
adopted, and training/README.md tells each one's round and what it measured.
"""

from __future__ import annotations

import argparse
import json
import pickle
import random
import re
import sys
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import fit_join
import keyed_cache
import swapped
import train_reader
from asked_examples import (
    FORMAL_QUESTIONS,
    OFF_TOPIC_QUESTIONS,
    VAGUE_QUESTIONS,
    WRITTEN_QUESTIONS,
    adapted_cosines,
    formal_examples,
    news_examples,
    off_topic_examples,
    realistic_examples,
    served_formal_examples,
    written_examples,
)
from reader_record import EPOCH_RECORD, epoch_chain, trained_writers, write_spec
from train_ranker import SEED, Example
from writers import (
    DECISION_FORMAL_SETS,
    DECISION_WRITERS,
    FIT_WRITERS,
    TRAIN_WRITERS,
    as_written,
    reported_writers,
    tuned_articles,
    writer,
)

from qa_bot.query_adapter import QueryAdapter
from qa_bot.ranker import LearnedRanker
from qa_bot.reader import WEIGHTS_FILE, PassageReader, ReaderSpec, load_spec
from qa_bot.reader_export import assemble, export_reader
from qa_bot.runtime import prepare_process
from qa_bot.settings import PACKAGED_ADAPTER, RetrievalSettings

ROOT = Path(__file__).resolve().parents[1]
#: Pairs from the base reader's training questions mixed in with the seeds' pairs.
REPLAY = 8000
#: Pairs the epoch reads from the fourth Reuters batch's training stories (``--news``), beside
#: the seeds' and the replay.
NEWS_PAIRS = 8000
#: At most how many more pairs the epoch reads from XQuAD's training articles (``--xquad``),
#: beyond those the replay drew: Wikipedia paragraphs, which the seeds' and the news' pairs
#: crowd out of the epoch.
XQUAD_PAIRS = 8000
#: How much an answer-removed passage's loss counts in the epoch, beside 1 for every other
#: pair: the on-topic passage that does not answer, what the decision must decline.
REMOVED_WEIGHT = 1.0
#: Learning rates of the body and the head: lower than the base reader's first epoch.
RATES = (3e-5, 9e-5)
#: Held-out questions of the ranker's split read for the report, per set (reading is slow).
REPORT_LIMIT = 500
#: Passages the reader reads in a question (``retrieval.reader_depth``): fitted and reported so.
READ_DEPTH = 3
#: How many times each fitting question over the seeds counts beside the combination fold.
SEEDS_FIT_WEIGHT = 2
#: The span head's loss beside the logit's (0: no span head, the sixth round's reader).
SPAN_WEIGHT = 1.0
#: The order's weights of the reader's logit and of the adapted cosine, held where the tenth
#: round's join put them; ``--fit-order`` chooses them by best top-1 on the join's rows instead.
ORDER = (2.0, 10.0)
#: How a set of ``tests/heldout_questions.jsonl`` is named in ``--writers`` (h72): the formal
#: blind checks an epoch may read (``writers.SERVED_FORMAL_SETS`` in the thirty-ninth round).
FORMAL_SET = re.compile(r"h\d+")


def scored_rows(
    path: Path | None,
    inputs: list[Path],
    reading: str,
    groups: dict[str, list[Example]],
    scored: Callable[[list[Example]], list[dict]],
) -> dict[str, list[dict]]:
    """Each group's scored rows (``train_reader.scored``): read from ``path`` when it holds
    that group's rows of the same ``inputs`` (weights, adapter), ``reading`` (what read the
    passages: the int8 export or the torch module) and questions, else scored (and written to
    ``path`` when given). Reading every passage takes minutes; a refit of the join over the
    same reading takes seconds, and questions added to one group re-read that group only. The
    code that reads passages is not in the key: delete the file when it changes."""
    keys = {
        name: keyed_cache.digest(inputs, [reading, name, *(repr(e.question) for e in items)])
        for name, items in groups.items()
    }
    return keyed_cache.keyed_groups(path, keys, lambda name: scored(groups[name]))


def epoch_pairs(
    args: argparse.Namespace, seeds: list[Example], data, news: list[Example]
) -> tuple[list[train_reader.Pair], int]:
    """What the epoch reads, shuffled, and how many of its pairs ``--xquad`` added:
    ``args.writers``' questions, ``args.replay`` pairs from the base reader's training
    questions, with ``args.news`` NEWS_PAIRS from ``news``' training stories (its held-out
    ones never) and with ``args.xquad`` up to XQUAD_PAIRS more from XQuAD's training articles,
    none of them a pair the replay drew."""
    tuning = [e for e in seeds if writer(e) in args.writers]
    base_training = [e for e in data if not e.test and not train_reader.stack_fold(e)]
    rng = random.Random(SEED)
    weight, mask = args.removed_weight, args.masked
    swap = swapper(tuning + base_training) if args.swapped else None
    pairs = train_reader.pairs(tuning, rng, None, weight, mask, swap)
    # Every pair of the base's training questions, in the order the replay draws them.
    drawn = train_reader.pairs(base_training, random.Random(SEED + 1), None, weight, mask, swap)
    pairs += drawn[: args.replay]
    if args.news:
        news_training = [e for e in news if not e.test]
        pairs += train_reader.pairs(
            news_training, random.Random(SEED + 2), NEWS_PAIRS, weight, mask
        )
    wiki = [] if not args.xquad else xquad_pairs(base_training, drawn[args.replay :])
    pairs += wiki
    rng.shuffle(pairs)
    if args.reorder:  # the same pairs, read in another order
        random.Random(SEED * 1000 + args.reorder).shuffle(pairs)
    print(f"tuning on {len(tuning)} questions, {len(pairs)} pairs", file=sys.stderr)
    return pairs, len(wiki)


def swapper(items: list[Example]) -> Callable[[str, str], str | None]:
    """``swapped.swapped`` over the names the passages of ``items`` hold, drawn with a fixed
    seed: the same questions swap the same way on every run."""
    pool = swapped.name_pool(h.chunk.text for e in items for h in e.hits)
    rng = random.Random(SEED + 3)
    return lambda question, passage: swapped.swapped(question, passage, pool, rng)


def xquad_pairs(base_training: list[Example], left: list[train_reader.Pair]) -> list:
    """Up to XQUAD_PAIRS of ``left`` (pairs the replay did not draw) asking XQuAD's questions."""
    asked = {e.query.text for e in base_training if e.set_name == "xquad"}
    return [p for p in left if p.question in asked][:XQUAD_PAIRS]


def train_epoch(args: argparse.Namespace, base: ReaderSpec, pairs: list) -> int:
    """Train the epoch from ``base`` on ``pairs``, save its weights in ``args.out``; how many
    pairs it read."""
    start = assemble(base, args.base / WEIGHTS_FILE)
    module = train_reader.train(
        pairs,
        base.layers,
        start=start,
        rates=RATES,
        span_weight=SPAN_WEIGHT,
        seed=SEED + args.reorder,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    train_reader.save_weights(module, args.out / WEIGHTS_FILE)
    return len(pairs)


def formal_sets(writers: tuple[str, ...]) -> tuple[str, ...]:
    """The sets of ``tests/heldout_questions.jsonl`` among ``writers`` (h72): formal blind
    checks, neither the seeds' realistic writers nor WRITTEN_QUESTIONS'."""
    return tuple(w for w in writers if FORMAL_SET.fullmatch(w))


def epoch_formal(args: argparse.Namespace) -> list[Example]:
    """The formal blind checks ``--writers`` names, asked of the seeds for the epoch: none
    when ``--join-only``."""
    sets = formal_sets(args.writers)
    return [] if args.join_only or not sets else served_formal_examples(args.work, sets)


def reads_written(args: argparse.Namespace, seed_writers: set[str]) -> bool:
    """Whether the epoch reads writers of WRITTEN_QUESTIONS (``--writers`` naming sets that
    are not the seeds' realistic ones). Refused (ValueError) with ``--written``, which would
    fit the decision on questions the reader trained on."""
    others = set(args.writers) - set(formal_sets(args.writers))
    reads = not args.join_only and not others <= seed_writers
    if reads and args.written:
        raise ValueError("--written would fit the decision on questions this epoch reads")
    return reads


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--work", type=Path, default=Path("/tmp/qa-train"))
    parser.add_argument("--base", type=Path, default=Path("/tmp/qa-train/reader"))
    parser.add_argument("--out", type=Path, default=ROOT / "src" / "qa_bot" / "trained_reader")
    parser.add_argument("--join-only", action="store_true", help="keep the weights in --out")
    parser.add_argument("--adapter", type=Path, default=PACKAGED_ADAPTER, help="query adapter")
    parser.add_argument("--fit-order", action="store_true", help="choose the order's weights")
    parser.add_argument(
        "--writers",
        type=lambda text: tuple(text.split(",")),
        default=TRAIN_WRITERS,
        help="comma-separated set ids the epoch trains on (default TRAIN_WRITERS), of "
        "tests/realistic_questions.jsonl, WRITTEN_QUESTIONS or tests/heldout_questions.jsonl",
    )
    parser.add_argument("--replay", type=int, default=REPLAY, help="pairs from the base's data")
    parser.add_argument(
        "--removed-weight",
        type=float,
        default=REMOVED_WEIGHT,
        help="how much an answer-removed passage's loss counts in the epoch",
    )
    parser.add_argument(
        "--rows",
        type=Path,
        help="the scored rows: read from this file when it holds those of the same weights and "
        "questions, else scored and written to it (a join refit in seconds)",
    )
    parser.add_argument(
        "--masked",
        action="store_true",
        help="the epoch also reads each answering passage with its answer masked, a negative",
    )
    parser.add_argument(
        "--swapped",
        action="store_true",
        help="the epoch also reads each answering passage asked its question with one of its "
        "names swapped for one the passage lacks, a negative (swapped.py)",
    )
    parser.add_argument(
        "--news",
        action="store_true",
        help="the epoch also reads the fourth Reuters batch's training stories (NEWS)",
    )
    parser.add_argument(
        "--xquad",
        action="store_true",
        help="the epoch also reads up to XQUAD_PAIRS more pairs from XQuAD's training articles",
    )
    parser.add_argument(
        "--reorder",
        type=int,
        default=0,
        help="read the same pairs in another order, torch seeded another way (0: the shipped "
        "epoch's): how far a retrain alone moves the scores",
    )
    parser.add_argument(
        "--written",
        action="store_true",
        help="the decision for the tuned articles is fitted on WRITTEN_QUESTIONS and "
        "VAGUE_QUESTIONS too (twenty-seventh and twenty-eighth rounds, measured, not adopted)",
    )
    parser.add_argument(
        "--span-fits",
        action="store_true",
        help="the decision reads SPAN_FIT_INPUTS too (what ships since the thirty-first round)",
    )
    parser.add_argument(
        "--join-on-torch",
        action="store_true",
        help="fit the join on the torch module's outputs (before the fourteenth round)",
    )
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(2)
    cache = args.work / "examples.pkl"
    if not cache.is_file() or not (args.base / WEIGHTS_FILE).is_file():
        print(f"no {cache} or {args.base}: run the two scripts before this one", file=sys.stderr)
        return 2
    base = load_spec(args.base)
    # With --join-only no epoch runs: the weights' record is the one their base wrote.
    made = base.provenance if args.join_only else {}
    trained = tuple(made.get("writers", {}).get("train", ())) if args.join_only else args.writers
    # Every writer the weights trained on, in this epoch and their bases': none may fit the join.
    lineage = (
        trained_writers(made) if args.join_only else (*trained, *trained_writers(base.provenance))
    )
    try:
        report_writers = reported_writers(lineage)
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    sys.modules["__main__"].Example = Example  # the cache pickles train_ranker's Example
    data = pickle.loads(cache.read_bytes())
    seeds = realistic_examples(args.work)
    news = news_examples(args.work)
    fitting = as_written([e for e in seeds if writer(e) in FIT_WRITERS])
    deciding = as_written([e for e in seeds if writer(e) in DECISION_WRITERS])
    deciding += as_written(formal_examples(args.work))
    deciding += as_written(served_formal_examples(args.work, DECISION_FORMAL_SETS))
    try:
        epoch_written = reads_written(args, {writer(e) for e in seeds})
    except ValueError as error:
        print(error, file=sys.stderr)
        return 2
    written = written_examples(args.work) if args.written or epoch_written else []
    formal_read = epoch_formal(args)
    if args.written:
        deciding += as_written(written)
    reported = as_written([e for e in seeds if writer(e) in report_writers])
    spec = replace(base, span=SPAN_WEIGHT > 0, max_span=train_reader.MAX_SPAN)
    weights = args.out / WEIGHTS_FILE
    epoch = {key: made.get(key, default) for key, default in EPOCH_RECORD.items()}
    if not args.join_only:
        pairs, wiki = epoch_pairs(args, seeds + written + formal_read, data, news)
        epoch = {
            "pairs": train_epoch(args, base, pairs),
            "replay": args.replay,
            "removed_weight": args.removed_weight,
            "masked": args.masked,
            "swapped": args.swapped,
            "news": args.news,
            "xquad": wiki,
            "reorder": args.reorder,
        }
    if args.join_on_torch:
        shipped = assemble(spec, weights)  # what ships: the int8 differences, not the module
    else:  # the int8 export serving reads, whose outputs differ from torch's
        export = args.work / f"export_{args.out.name}"
        export_reader(spec, weights, export)
        shipped = PassageReader(export, threads=2)
    ranker = LearnedRanker.load()
    train_reader.DEPTH = READ_DEPTH
    fold = [e for e in data if not e.test and train_reader.stack_fold(e)]
    near = adapted_cosines(args.work, QueryAdapter.load(args.adapter))
    extra = RetrievalSettings().adapter_reads

    def scored(items: list[Example]) -> list[dict]:
        return train_reader.scored(shipped, spec, items, ranker, near, extra)

    off_topic = off_topic_examples(args.work)
    held = [
        e
        for name in ("xquad", "reuters3", fit_join.OFF_TOPIC)
        for e in [e for e in data if e.test and e.set_name == name][:REPORT_LIMIT]
    ]
    groups = {
        "fitted": fitting,
        "decided": deciding,
        "folded": fold,
        "off_fit": [e for e in off_topic if not e.test],
        "reported": reported
        + held
        + [e for e in off_topic if e.test]
        + [e for e in news if e.test][:REPORT_LIMIT],
    }
    reading = "torch" if args.join_on_torch else "int8 export"
    read = scored_rows(args.rows, [weights, args.adapter], reading, groups, scored)
    fitted, folded = read["fitted"], read["folded"]
    joined = fitted * SEEDS_FIT_WEIGHT + folded
    order = None if args.fit_order else ORDER
    weight, adapter_weight = fit_join.fit_order(joined, order)
    tuned = tuned_articles(seeds, lineage)
    answer, answer_tuned = fit_join.fit_decisions(
        joined, tuned, (weight, adapter_weight), args.span_fits, fitted + read["decided"]
    )
    topic_rows = fitted + folded + read["off_fit"]
    topic = fit_join.fit_topic(topic_rows, answer.names, (weight, adapter_weight))
    spec = replace(
        spec,
        rank_weight=weight,
        adapter_weight=adapter_weight,
        answer=answer,
        topic=topic,
        answer_tuned=answer_tuned,
        tuned_articles=tuned if answer_tuned is not None else frozenset(),
    )
    rows = read["reported"]
    serving = RetrievalSettings()  # what serving answers at
    threshold, topic_threshold = serving.reader_answer_threshold, serving.reader_topic_threshold
    tuned_threshold = serving.reader_tuned_threshold
    report = fit_join.report(rows, spec, threshold, topic_threshold, tuned_threshold)
    print(json.dumps(report, indent=1))
    provenance = {
        "script": "training/tune_reader.py",
        "seed": SEED,
        # The record of what the weights were trained from: with --join-only, the one the
        # weights' own record names (this record replaces that one).
        "base": (epoch_chain(made) or {}).get("base")
        if args.join_only
        else epoch_chain(base.provenance),
        "writers": {
            "train": trained,
            "fit": FIT_WRITERS,
            "decide": DECISION_WRITERS,
            "decide_formal_sets": DECISION_FORMAL_SETS,
            "decide_written": [
                str(path.relative_to(ROOT))
                for path in (
                    FORMAL_QUESTIONS,
                    *([WRITTEN_QUESTIONS, VAGUE_QUESTIONS] if args.written else []),
                )
            ],
            "report": report_writers,
        },
        "join": {
            "seeds_weight": SEEDS_FIT_WEIGHT,
            "fold_questions": len(fold),
            "order": "fitted" if order is None else "held",
            "on": reading,
            "inputs": "passages and span fits" if args.span_fits else "passages",
            "tuned_articles": len(spec.tuned_articles),
            "tuned_decision": None
            if answer_tuned is None
            else {**fit_join.TREES, "rising": sorted(fit_join.RISING)},
        },
        "topic": {
            "off_topic_rows": sum(r["set"].startswith(fit_join.OFF_TOPIC) for r in topic_rows),
            "rows": len(topic_rows),
            "written": str(OFF_TOPIC_QUESTIONS.relative_to(ROOT)),
        },
        "report_threshold": threshold,
        "report_topic_threshold": topic_threshold,
        "report_tuned_threshold": tuned_threshold,
        "depth": READ_DEPTH,
        "adapter_reads": extra,
        **epoch,
        "held_out": report,
    }
    wrote = [write_spec(args.out, spec, provenance)]
    wrote = wrote if args.join_only else [weights, *wrote]
    print("wrote " + " and ".join(map(str, wrote)), file=sys.stderr)
    return 0


if __name__ == "__main__":
    prepare_process()
    raise SystemExit(main())
