r"""Choose which passages the reader reads first and when they settle a question
(``retrieval.reader_first_depth``, ``reader_first_adapter_reads`` and ``reader_settled_margin``,
``qa_bot.read_stage.settled``).

The reader reads the best ``reader_first_depth`` passages and the ``reader_first_adapter_reads``
nearest the adapted question first, and the rest of its ``reader_depth`` and ``adapter_reads``
only when the decision over those is not settled. For each split of the first reads named
(``--splits``; the settings' own without it), this script asks every question of the chosen
writers twice, as ``qa-bot eval`` asks it: once stopping after the first reads, once reading
all, keeping what the first reads decided. It keeps the margin that settles the most questions
while the first quotes that hold an answer and the declines of unanswerable questions each stay
within ``--tolerance`` of reading all, and then the split that, at its margin, reads the fewest
passages on average (each read costs about as much as the rest of the question).

The writers are the realistic sets written blind after the shipped reader and its join were
fitted (``tests/realistic_questions.jsonl``, P158 to P199): questions the reader never trained
on, typed the way people chat, as the served gate sets are. Rows the reader's own scripts
keep would be cheaper, but on them reading three passages lost nothing while on people's
questions it lost two points (benchmarks/README.md, "Forty-ninth round"). Run from the
repository root with the settings ``qa-bot eval`` reads, the seeds indexed (about 20 min a
split; the shipped settings come from the second command)::

    qa-bot index
    python training/fit_settled.py --writers p158-p199 --splits 2+1,1+2,1+1
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import qa_bot.read_stage as read_stage
from qa_bot.evaluation import EvalQuestion, evaluate, load_questions
from qa_bot.read_stage import Read, settled
from qa_bot.runtime import prepare_process
from qa_bot.service import QAService
from qa_bot.settings import RetrievalSettings, Settings, load_settings

ROOT = Path(__file__).resolve().parents[1]
QUESTIONS = ROOT / "tests" / "realistic_questions.jsonl"
#: Margins tried (logits).
MARGINS = (0.5, 1.0, 1.5, 2.0, 2.5, 2.75, 3.0, 3.25, 3.5, 3.75, 4.0, 5.0)
#: How far below reading all the first quotes and the declines may fall.
TOLERANCE = 0.002


@dataclass(frozen=True)
class Outcome:
    """What serving made of one question asked one way: what the first reads decided (None
    when the reader did not read: a question about the article itself, say), whether it
    answered and whether its first quote holds an answer."""

    read: Read | None
    answered: bool
    right: bool


@contextmanager
def stopping(after_first: bool, seen: list[Read | None]) -> Iterator[None]:
    """Serving stops after the first reads (or never), whatever ``settled`` would say, and
    what they decided replaces the last item of ``seen``."""

    def decided(read: Read, settings: RetrievalSettings) -> bool:
        seen[-1] = read
        return after_first

    kept = read_stage.settled
    read_stage.settled = decided
    try:
        yield
    finally:
        read_stage.settled = kept


def asked(service: QAService, questions: list[EvalQuestion], after_first: bool) -> list[Outcome]:
    """Each question asked as ``qa-bot eval`` asks it, stopping after the first reads or not."""
    out = []
    for q in questions:
        seen: list[Read | None] = [None]
        with stopping(after_first, seen):
            report = evaluate(service, [q], warmup=False, timed=False)
        if q.unanswerable:
            out.append(Outcome(seen[-1], report.abstention_recall == 0.0, False))
        else:
            answered, right = report.answered_rate, report.first_quote_answer_rate
            out.append(Outcome(seen[-1], answered == 1.0, right == 1.0))
    return out


Pairs = list[tuple[bool, Outcome, Outcome]]


def scores(pairs: Pairs, stop: Callable[[Read], bool], total: int) -> dict:
    """First quotes that hold an answer, declines, the share settled and the passages read on
    average, stopping by ``stop`` (``total`` read when not stopped, none when nothing is)."""
    right, declined, stopped, reads = [], [], [], []
    for answerable, first, full in pairs:
        done = first.read is None or stop(first.read)
        got = first if done else full
        stopped.append(done)
        reads.append(0 if first.read is None else len(first.read.reading.logits) if done else total)
        if answerable:
            right.append(got.answered and got.right)
        else:
            declined.append(not got.answered)
    return {
        "first_quote": round(float(np.mean(right)), 4),
        "declined": round(float(np.mean(declined)), 4),
        "settled": round(float(np.mean(stopped)), 4),
        "reads": round(float(np.mean(reads)), 3),
    }


def choose(pairs: Pairs, tolerance: float, total: int) -> dict:
    """The margin settling the most questions within ``tolerance`` of reading all (the larger
    margin on a tie)."""
    full = scores(pairs, lambda read: False, total)
    tried = []
    for margin in MARGINS:
        s = RetrievalSettings(reader_settled_margin=margin)
        tried.append({"margin": margin, **scores(pairs, lambda read, s=s: settled(read, s), total)})
    fine = [
        t
        for t in tried
        if t["first_quote"] >= full["first_quote"] - tolerance
        and t["declined"] >= full["declined"] - tolerance
    ]
    best = max(fine, key=lambda t: (t["settled"], t["margin"]))
    first_only = scores(pairs, lambda read: True, total)
    return {"all": full, "first_only": first_only, "chosen": best, "tried": tried}


def writers(spec: str) -> set[str]:
    """``p158-p199,p60``: the set ids named, a range standing for every number in it."""
    out = set()
    for part in spec.split(","):
        first, _, last = part.strip().partition("-")
        prefix = first.rstrip("0123456789")
        low, high = int(first[len(prefix) :]), int((last or first)[len(prefix) :])
        out |= {f"{prefix}{n}" for n in range(low, high + 1)}
    return out


def split_of(spec: str) -> tuple[int, int]:
    """``2+1``: the best two passages and one adapter read first."""
    best, _, near = spec.partition("+")
    return int(best), int(near or 0)


def fitted(settings: Settings, questions: list[EvalQuestion], tolerance: float) -> dict:
    """The margin ``choose`` keeps for the first reads ``settings`` names, each question asked
    both ways."""
    service = QAService(settings)
    if service.rankers.reader is None:
        raise SystemExit("the settings name no reader: there is nothing to read in two steps")
    first = asked(service, questions, after_first=True)
    full = asked(service, questions, after_first=False)
    pairs = [(not q.unanswerable, a, b) for q, a, b in zip(questions, first, full, strict=True)]
    r = settings.retrieval
    return choose(pairs, tolerance, r.reader_depth + r.adapter_reads)


def fewest_reads(results: list[dict]) -> dict:
    """Of the splits tried, the one reading the fewest passages on average at its margin (the
    more first quotes on a tie)."""
    return min(results, key=lambda r: (r["chosen"]["reads"], -r["chosen"]["first_quote"]))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=Path, default=QUESTIONS)
    parser.add_argument("--writers", default="p158-p199")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE)
    parser.add_argument(
        "--splits",
        default="",
        help="first reads to try, best+adapter, comma-separated ('2+1,1+2,1+1'); the one reading"
        " the fewest passages on average at its margin is kept (default: the settings' own)",
    )
    args = parser.parse_args(argv)
    named = writers(args.writers)
    questions = [q for q in load_questions(args.questions) if q.set_id in named]
    settings = load_settings()
    try:
        splits = [split_of(x) for x in args.splits.split(",") if x.strip()]
    except ValueError:
        parser.error(f"--splits {args.splits!r}: give best+adapter reads, such as 2+1,1+1")
    if any(best < 1 or near < 0 for best, near in splits):
        parser.error("--splits: at least the best passage is read first")
    if not splits:
        r = settings.retrieval
        splits = [(r.reader_first_depth, r.reader_first_adapter_reads)]
    results = []
    for best, near in splits:
        update = {"reader_first_depth": best, "reader_first_adapter_reads": near}
        retrieval = settings.retrieval.model_copy(update=update)
        result = fitted(
            settings.model_copy(update={"retrieval": retrieval}), questions, args.tolerance
        )
        results.append({"first_reads": f"{best}+{near}", **result})
        print(
            f"{len(questions)} questions of {len(named)} writers, first reads {best}+{near}",
            file=sys.stderr,
        )
        for t in result["tried"]:
            print(json.dumps(t), file=sys.stderr)
    kept = fewest_reads(results)
    shown = [{k: v for k, v in r.items() if k != "tried"} for r in results]
    print(
        json.dumps(
            {"kept": kept["first_reads"], "margin": kept["chosen"]["margin"], "splits": shown},
            indent=1,
        )
    )
    return 0


if __name__ == "__main__":
    prepare_process()
    raise SystemExit(main())
