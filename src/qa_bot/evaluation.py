"""Measure answers against a question set: ranking, quotes, abstention, faithfulness, latency.

Three question formats are read, one line of JSON per question:

* our dev set: ``{"id", "question", "answers": [...], "docs": ["000", ...], "unanswerable"?}``
  where a doc is a file-name prefix ("000" matches ``000_cb0a....txt``);
* XQuAD: ``{"id", "question", "answers": [...], "doc": "000_Super_Bowl_50.txt",
  "context_start", "context_end", ...}`` where the context span is the gold paragraph;
* readers' feedback (``qa-bot feedback export``): our format with ``"class": "feedback"``, a
  ``"vote"``, and the quotes a reader ``"rejected"`` (the first quote must not be one) or
  approved (``"kept"``: it must still be first); ``answers`` may then be empty.

The judging is pure (:func:`judge`, :func:`summarize`); :func:`evaluate` runs a question set
through a :class:`~qa_bot.service.QAService` with the same code path as ``ask`` and times it. The
service knows nothing of this module: the evaluation sits above it, beside the fronts. A gold
answer counts as found when it is a substring of the quote after :func:`qa_bot.text.fold` on both
sides, nothing looser.
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import TYPE_CHECKING, Any

from qa_bot.errors import QABotError
from qa_bot.files import read_jsonl
from qa_bot.text import fold

if TYPE_CHECKING:
    from qa_bot.service import QAService

#: How many of the nearest passages count when ranking documents (MRR@10).
MRR_DEPTH = 10


class EvalDataError(QABotError):
    """The question file cannot be read or a line is not a question."""

    exit_code = 2


@dataclass(frozen=True)
class EvalQuestion:
    id: str
    question: str
    answers: tuple[str, ...] = ()
    #: Gold documents: file names or file-name prefixes.
    docs: tuple[str, ...] = ()
    unanswerable: bool = False
    #: The gold paragraph as a character span of the gold document, when the set gives one.
    gold_span: tuple[int, int] | None = None
    #: The kind ("lowercase", "typo"...), from the set's "class" or "style": scored apart.
    kind: str | None = None
    #: A reader's vote ("good" / "bad"), for questions exported by ``qa-bot feedback export``.
    vote: str | None = None
    #: Quotes a reader rejected: the first quote must not be one of them.
    rejected: tuple[str, ...] = ()
    #: Quotes a reader approved: the first quote must still be one of them.
    kept: tuple[str, ...] = ()

    @property
    def set_id(self) -> str:
        """Its set, read from its id: "7" for "7-12", "p1" for "p1-03", "c" for "c01"."""
        return self.id.split("-")[0] if "-" in self.id else self.id[:1]


@dataclass(frozen=True)
class Quote:
    """One citation of an answer, as the evaluation sees it."""

    path: str
    quote: str
    start: int
    end: int
    verbatim: bool


@dataclass(frozen=True)
class Outcome:
    """What the system did with one question."""

    question: EvalQuestion
    answered: bool
    #: Article paths in the order retrieval ranked them (each once).
    ranked_paths: tuple[str, ...]
    quotes: tuple[Quote, ...]
    seconds: float
    #: Cost of embedding the question plus the vector search alone, measured in the same run.
    baseline_seconds: float | None = None
    error: str | None = None


@dataclass(frozen=True)
class Judgement:
    outcome: Outcome
    #: 1-based rank of the first gold document, None when not in the ranking.
    gold_rank: int | None
    first_quote_hit: bool
    any_quote_hit: bool
    #: Whether the first quote overlaps the gold paragraph (None when the set gives no span).
    first_in_gold_span: bool | None
    quoted_chars: int
    failure: str | None


@dataclass
class Report:
    questions: int
    answerable: int
    unanswerable: int
    hit_at_1: float | None
    hit_at_3: float | None
    hit_at_5: float | None
    mrr_at_10: float | None
    answered_rate: float | None
    first_quote_answer_rate: float | None
    #: The same among answered questions only: separates quoting the wrong passage from declining.
    answered_first_quote_rate: float | None
    answered_quote_answer_rate: float | None
    first_quote_in_gold_paragraph: float | None
    abstention_precision: float | None
    abstention_recall: float | None
    faithfulness: float | None
    quotes: int
    median_quoted_chars: float | None
    mean_quoted_chars: float | None
    latency_mean_ms: float | None
    #: The median: what the latency goal is stated in (a few slow questions move the mean).
    latency_p50_ms: float | None
    latency_p95_ms: float | None
    baseline_mean_ms: float | None
    latency_ratio: float | None
    failures: list[dict[str, Any]] = field(default_factory=list)
    #: The main scores for each kind of question, when the set names kinds.
    by_class: dict[str, dict[str, Any]] = field(default_factory=dict)
    #: Readers' complaints (exported feedback) and the share fixed; approvals and the share kept.
    complaints: int = 0
    complaints_resolved: float | None = None
    approvals: int = 0
    approvals_kept: float | None = None

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in data.items()}


# --- reading question sets -------------------------------------------------------------------


def load_questions(path: Path) -> list[EvalQuestion]:
    """Read a JSON-lines question file in any supported format."""
    questions: list[EvalQuestion] = []
    for number, data in read_jsonl(path, EvalDataError, "a question"):
        try:
            questions.append(parse_question(data, default_id=f"{path.stem}:{number}"))
        except (ValueError, TypeError, KeyError) as exc:
            raise EvalDataError(f"{path}:{number}: not a question ({exc})") from exc
    if not questions:
        raise EvalDataError(f"{path} holds no questions")
    return questions


def parse_question(data: dict[str, Any], *, default_id: str = "") -> EvalQuestion:
    question = str(data["question"]).strip()
    if not question:
        raise ValueError("empty question")
    docs = data.get("docs")
    if docs is None:
        docs = [data["doc"]] if data.get("doc") else []
    span = None
    if data.get("context_start") is not None and data.get("context_end") is not None:
        span = (int(data["context_start"]), int(data["context_end"]))
    answers = tuple(str(a) for a in data.get("answers") or ())
    unanswerable = bool(data.get("unanswerable", False))
    vote = str(data["vote"]) if data.get("vote") else None
    if vote not in (None, "good", "bad"):
        raise ValueError(f"a vote is good or bad, not {vote!r}")
    if not unanswerable and not answers and vote is None:
        raise ValueError("an answerable question needs at least one answer")
    return EvalQuestion(
        id=str(data.get("id") or default_id),
        question=question,
        answers=answers,
        docs=tuple(str(d) for d in docs),
        unanswerable=unanswerable,
        gold_span=span,
        kind=str(data.get("class") or data.get("style") or "") or None,
        vote=vote,
        rejected=tuple(str(q) for q in data.get("rejected") or ()),
        kept=tuple(str(q) for q in data.get("kept") or ()),
    )


# --- judging ---------------------------------------------------------------------------------


def doc_matches(gold: str, path: str) -> bool:
    """A gold doc names a file ("000_Super_Bowl_50.txt") or a file-name prefix ("000")."""
    name = PurePosixPath(path).name
    stem = PurePosixPath(path).stem
    return gold in (name, stem) or stem.startswith(gold + "_")


def contains_answer(quote: str, answers: Iterable[str]) -> bool:
    folded = fold(quote)
    return any(fold(a) in folded for a in answers if a.strip())


def judge(outcome: Outcome) -> Judgement:
    q = outcome.question
    gold_rank = None
    for rank, path in enumerate(outcome.ranked_paths[:MRR_DEPTH], 1):
        if any(doc_matches(d, path) for d in q.docs):
            gold_rank = rank
            break
    quotes = outcome.quotes
    first_hit = bool(quotes) and contains_answer(quotes[0].quote, q.answers)
    any_hit = any(contains_answer(c.quote, q.answers) for c in quotes)
    in_span = None
    if q.gold_span is not None:
        first = quotes[0] if quotes else None
        in_span = (
            first is not None
            and any(doc_matches(d, first.path) for d in q.docs)
            and first.start < q.gold_span[1]
            and q.gold_span[0] < first.end
        )
    failure = _failure(outcome, gold_rank, first_hit, any_hit)
    return Judgement(
        outcome=outcome,
        gold_rank=gold_rank,
        first_quote_hit=first_hit,
        any_quote_hit=any_hit,
        first_in_gold_span=in_span,
        quoted_chars=sum(len(c.quote) for c in quotes),
        failure=failure,
    )


def same_quote(a: str, b: str) -> bool:
    """Two quotes of the same place: one holds the other (a first quote grows or shrinks a
    little around its sentence as the ranking changes)."""
    fa, fb = fold(a).strip(), fold(b).strip()
    return bool(fa and fb) and (fa in fb or fb in fa)


def _failure(outcome: Outcome, gold_rank: int | None, first_hit: bool, any_hit: bool) -> str | None:
    q = outcome.question
    if outcome.error:
        return f"error: {outcome.error}"
    if not all(c.verbatim for c in outcome.quotes):
        return "quote not verbatim"
    if q.unanswerable:
        return "answered an unanswerable question" if outcome.answered else None
    if not outcome.answered:
        return "declined an answerable question"
    first = outcome.quotes[0].quote if outcome.quotes else ""
    if any(same_quote(first, r) for r in q.rejected):
        return "first quote is the one a reader rejected"
    if q.kept and not any(same_quote(first, k) for k in q.kept):
        return "first quote is no longer the one a reader approved"
    if not q.answers and (q.rejected or q.kept or q.vote):
        return None  # a complaint without a right answer: anything but the rejected quote
    if first_hit:
        return None
    if any_hit:
        return "answer in a later quote"
    if gold_rank is None and q.docs:
        return "gold article not retrieved"
    return "no quote holds the answer"


def summarize(judgements: Sequence[Judgement]) -> Report:
    answerable = [j for j in judgements if not j.outcome.question.unanswerable]
    # A reader's complaint may carry no right answer: it counts in the complaints line only.
    gold = [j for j in answerable if j.outcome.question.answers]
    complaints = [j for j in judgements if j.outcome.question.vote == "bad"]
    approvals = [j for j in judgements if j.outcome.question.vote == "good"]
    unanswerable = [j for j in judgements if j.outcome.question.unanswerable]
    ranked = [j for j in answerable if j.outcome.question.docs]
    answered = [j for j in gold if j.outcome.answered]
    declined = [j for j in judgements if not j.outcome.answered and not j.outcome.error]
    spans = [j for j in answerable if j.first_in_gold_span is not None]
    quotes = [c for j in judgements for c in j.outcome.quotes]
    chars = [j.quoted_chars for j in judgements if j.outcome.answered]
    seconds = [j.outcome.seconds for j in judgements if not j.outcome.error]
    baseline = [s for j in judgements if (s := j.outcome.baseline_seconds) is not None]
    reciprocal = [1.0 / j.gold_rank if j.gold_rank else 0.0 for j in ranked]
    latency_mean = statistics.fmean(seconds) if seconds else None
    baseline_mean = statistics.fmean(baseline) if baseline else None
    return Report(
        questions=len(judgements),
        answerable=len(answerable),
        unanswerable=len(unanswerable),
        hit_at_1=_share(ranked, lambda j: j.gold_rank is not None and j.gold_rank <= 1),
        hit_at_3=_share(ranked, lambda j: j.gold_rank is not None and j.gold_rank <= 3),
        hit_at_5=_share(ranked, lambda j: j.gold_rank is not None and j.gold_rank <= 5),
        mrr_at_10=statistics.fmean(reciprocal) if reciprocal else None,
        answered_rate=_share(answerable, lambda j: j.outcome.answered),
        first_quote_answer_rate=_share(gold, lambda j: j.first_quote_hit),
        answered_first_quote_rate=_share(answered, lambda j: j.first_quote_hit),
        answered_quote_answer_rate=_share(answered, lambda j: j.any_quote_hit),
        first_quote_in_gold_paragraph=_share(spans, lambda j: bool(j.first_in_gold_span)),
        abstention_precision=_share(declined, lambda j: j.outcome.question.unanswerable),
        abstention_recall=_share(unanswerable, lambda j: not j.outcome.answered),
        faithfulness=(sum(c.verbatim for c in quotes) / len(quotes)) if quotes else None,
        quotes=len(quotes),
        median_quoted_chars=statistics.median(chars) if chars else None,
        mean_quoted_chars=statistics.fmean(chars) if chars else None,
        latency_mean_ms=latency_mean * 1000 if latency_mean is not None else None,
        latency_p50_ms=_percentile(seconds, 50) * 1000 if seconds else None,
        latency_p95_ms=_percentile(seconds, 95) * 1000 if seconds else None,
        baseline_mean_ms=baseline_mean * 1000 if baseline_mean is not None else None,
        latency_ratio=(
            latency_mean / baseline_mean if latency_mean is not None and baseline_mean else None
        ),
        failures=[_failure_row(j) for j in judgements if j.failure],
        by_class=_by_class(judgements),
        complaints=len(complaints),
        complaints_resolved=_share(complaints, lambda j: j.failure is None),
        approvals=len(approvals),
        approvals_kept=_share(approvals, lambda j: j.failure is None),
    )


def _by_class(judgements: Sequence[Judgement]) -> dict[str, dict[str, Any]]:
    """First quote, answered and declined rates per kind of question (failure class)."""
    kinds = sorted({j.outcome.question.kind for j in judgements} - {None})
    out: dict[str, dict[str, Any]] = {}
    for kind in kinds:
        group = [j for j in judgements if j.outcome.question.kind == kind]
        answerable = [j for j in group if not j.outcome.question.unanswerable]
        gold = [j for j in answerable if j.outcome.question.answers]
        unanswerable = [j for j in group if j.outcome.question.unanswerable]
        rates = {
            "first_quote_answer_rate": _share(gold, lambda j: j.first_quote_hit),
            "answered_rate": _share(answerable, lambda j: j.outcome.answered),
            "abstention_recall": _share(unanswerable, lambda j: not j.outcome.answered),
            "passed_rate": _share(group, lambda j: j.failure is None),
        }
        out[str(kind)] = {"questions": len(group)} | {
            k: round(v, 4) if v is not None else None for k, v in rates.items()
        }
    return out


def _share(items: Sequence[Judgement], test: Callable[[Judgement], bool]) -> float | None:
    return sum(1 for j in items if test(j)) / len(items) if items else None


def _percentile(values: Sequence[float], pct: float) -> float:
    ordered = sorted(values)
    index = min(len(ordered) - 1, max(0, round(pct / 100 * len(ordered) + 0.5) - 1))
    return ordered[index]


def _failure_row(j: Judgement) -> dict[str, Any]:
    q = j.outcome.question
    first = j.outcome.quotes[0] if j.outcome.quotes else None
    return {
        "id": q.id,
        "question": q.question,
        "failure": j.failure,
        "gold": list(q.answers) or [f"not: {r}" for r in q.rejected],
        "gold_docs": list(q.docs),
        "gold_rank": j.gold_rank,
        "top_doc": j.outcome.ranked_paths[0] if j.outcome.ranked_paths else None,
        "first_quote": first.quote if first else None,
    }


# --- running against the service ------------------------------------------------------------


def evaluate(
    service: QAService,
    questions: Sequence[EvalQuestion],
    *,
    progress: Callable[[int], None] | None = None,
    warmup: bool = True,
    timed: bool = True,
) -> Report:
    """Ask every question the way ``ask`` does, judge the answers and summarize them.

    Latency is measured warm (one question asked first, untimed, loads the model and index),
    beside a baseline timed per question in the same run (embedding it and one vector search),
    so the ratio holds on a busy machine too; not ``timed``, the baseline is skipped.
    """
    if warmup and questions:
        _run_one(service, questions[0], {}, timed=False)  # discarded: no baseline to time
    file_texts: dict[str, str | None] = {}
    judgements = []
    for q in questions:
        judgements.append(judge(_run_one(service, q, file_texts, timed)))
        if progress is not None:
            progress(1)
    return summarize(judgements)


def _run_one(
    service: QAService, q: EvalQuestion, file_texts: dict[str, str | None], timed: bool
) -> Outcome:
    started = time.perf_counter()
    try:
        snapshot = service.snapshot()
        answer, retrieval = service.explain(q.question)
    except QABotError as exc:
        return Outcome(q, False, (), (), time.perf_counter() - started, None, str(exc))
    seconds = time.perf_counter() - started
    baseline = _baseline_seconds(service, q.question) if timed else None
    ranked = tuple(dict.fromkeys(h.article.path for h in retrieval.hits))
    quotes = []
    for c in answer.citations:
        stored = snapshot.article_text(c.article.id) or ""
        if c.article.path not in file_texts:
            file_texts[c.article.path] = _read_source(service, c.article.path)
        on_disk = file_texts[c.article.path]
        verbatim = stored[c.start : c.end] == c.quote and (on_disk is None or c.quote in on_disk)
        quotes.append(Quote(c.article.path, c.quote, c.start, c.end, verbatim))
    return Outcome(q, answer.answered, ranked, tuple(quotes), seconds, baseline)


def _baseline_seconds(service: QAService, question: str) -> float:
    import numpy as np

    snapshot = service.snapshot()
    started = time.perf_counter()
    vector = service.query_embedder.embed([question])
    k = min(service.settings.retrieval.candidates, snapshot.n_chunks)
    if k:
        snapshot.candidates(np.asarray(vector[0], dtype=np.float32), (), k)
    return time.perf_counter() - started


def _read_source(service: QAService, rel: str) -> str | None:
    """The article file as it is on disk now (None if it is gone): quotes must be in it."""
    from qa_bot.decoding import decode
    from qa_bot.seed_files import read_regular

    try:  # by the seeds folder's rules: a FIFO swapped in since the build is not opened
        path = service.settings.seeds_dir / rel
        return decode(read_regular(path, service.settings.max_file_bytes))
    except OSError:
        return None
