"""The reading stage: which of the ranked passages the passage reader reads, and how its
logits join the learned ranker's order (:func:`qa_bot.retrieval.rerank_and_decide` calls it).

Kept apart from the ranking stages so that ``training/train_reader.py`` reads the same
positions the service reads, from one definition.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

from qa_bot.decision import answer_threshold, logit
from qa_bot.models import Hit
from qa_bot.query import Query
from qa_bot.query_adapter import QueryAdapter
from qa_bot.reader import PassageReader, Reading
from qa_bot.settings import RetrievalSettings
from qa_bot.store_api import IndexView


def rescored(hit: Hit, logit: float) -> Hit:
    """The hit with the ranker's probability as its score (further quotes are kept when they
    score close to the first)."""
    return replace(hit, score=float(1.0 / (1.0 + np.exp(-logit))))


def to_read(
    snapshot: IndexView,
    qv: np.ndarray,
    head: list[Hit],
    settings: RetrievalSettings,
    adapter: QueryAdapter | None,
) -> tuple[list[int], list[int], np.ndarray]:
    """Which of the ranked passages the reader reads first, which in all, and the cosines of
    all with the adapted question (zeros without adapter): the best ``reader_depth``, then the
    ``adapter_reads`` nearest the adapted question among the others (a paraphrased question's
    answer is often ranked low by its words and the raw cosine, and found by the adapter);
    first, the same with ``reader_first_depth`` and ``reader_first_adapter_reads``, which picks
    a part of them (a passage nearest among more passages is nearest among fewer)."""
    extra = settings.adapter_reads if adapter is not None else 0
    first_extra = min(settings.reader_first_adapter_reads, extra)
    if adapter is None:
        cosines = np.zeros(len(head))
    else:
        vectors = snapshot.vectors_of([h.chunk_id for h in head])
        cosines = (vectors @ adapter.apply(qv[None, :])[0]).astype(np.float64)
    picked = reading_positions(cosines, settings.reader_depth, extra)
    first_depth = min(settings.reader_first_depth, settings.reader_depth)
    first = reading_positions(cosines, first_depth, first_extra)
    return first, picked, cosines


def reading_positions(cosines: np.ndarray, depth: int, extra: int) -> list[int]:
    """Positions in a ranked list that the reader reads: the first ``depth``, then the
    ``extra`` of the others with the highest ``cosines`` (one per position, ties in rank order).
    ``training/train_reader.py`` reads the same, to fit the join."""
    first = list(range(min(depth, len(cosines))))
    rest = np.arange(len(first), len(cosines))
    nearest = rest[np.argsort(-cosines[len(first) :], kind="stable")]
    return first + [int(i) for i in nearest[:extra]]


@dataclass(frozen=True)
class Ranked:
    """The ranked passages the reader reads among, with the learned ranker's logits in that
    order, its answer logit and the question's features (``qa_bot.features``)."""

    head: list[Hit]
    logits: np.ndarray
    answer: float
    asked: np.ndarray


@dataclass(frozen=True)
class Read:
    """What the reading stage hands the decision: the passages in the joined order (those
    read first), what the reader made of them, and the reader's decision over them."""

    hits: list[Hit]
    reading: Reading
    #: The topic model's logit (None without one) and the decision's, and whether the
    #: decision for the articles the reader was tuned on weighed them.
    topic: float | None
    answer: float
    tuned: bool


def read_in_steps(
    reader: PassageReader,
    query: Query,
    ranked: Ranked,
    positions: tuple[list[int], list[int], np.ndarray],
    settings: RetrievalSettings,
) -> Read:
    """The reader reads the first positions (``to_read``), and the rest of them only when the
    decision over the first is not ``settled``: most questions are settled by fewer passages,
    and each passage read costs as much as the rest of the question."""
    first, picked, cosines = positions
    texts = [ranked.head[i].chunk.text for i in picked]
    rows = [picked.index(i) for i in first]
    reading = reader.read(query.text, [texts[r] for r in rows])
    done = judged(reader, ranked, first, cosines, reading, settings)
    if len(first) == len(picked) or settled(done, settings):
        return done
    rest = [r for r in range(len(picked)) if r not in rows]
    more = reader.read(query.text, [texts[r] for r in rest])
    return judged(reader, ranked, picked, cosines, merged(reading, rows, more, rest), settings)


def judged(
    reader: PassageReader,
    ranked: Ranked,
    picked: list[int],
    cosines: np.ndarray,
    reading: Reading,
    settings: RetrievalSettings,
) -> Read:
    """The ``picked`` passages' reading joined with the ranker's order, and the reader's
    decision over it."""
    near = cosines[picked]
    hits, reading = read_passages(reader, ranked, picked, near, reading, settings)
    spec = reader.spec
    return Read(
        hits,
        reading,
        spec.topic_logit(ranked.answer, reading, ranked.asked),
        spec.answer_logit(ranked.answer, reading, ranked.asked),
        spec.tuned_reading(reading),
    )


def settled(read: Read, settings: RetrievalSettings) -> bool:
    """Whether reading more passages would hardly change what ``read`` decided: the topic model
    declines by more than ``reader_settled_margin`` (in logits), or passes by more and the
    decision clears its threshold by more either way. ``training/fit_settled.py`` chooses the
    margin on people's questions, asked both ways."""
    margin = settings.reader_settled_margin
    topic_gap = math.inf
    if read.topic is not None:
        topic_gap = read.topic - logit(settings.reader_topic_threshold)
    if topic_gap < -margin:
        return True
    threshold = answer_threshold(settings, read=True, tuned=read.tuned)
    return topic_gap > margin and abs(read.answer - logit(threshold)) > margin


def merged(first: Reading, rows: list[int], more: Reading, rest: list[int]) -> Reading:
    """Two readings of parts of the passages as one, each passage at its row."""
    size = len(rows) + len(rest)

    def placed(a: np.ndarray | None, b: np.ndarray | None) -> np.ndarray | None:
        if a is None or b is None:
            return None
        out = np.empty((size, *a.shape[1:]), dtype=np.result_type(a, b))
        out[rows], out[rest] = a, b
        return out

    return Reading(
        placed(first.logits, more.logits),
        placed(first.spans, more.spans),
        placed(first.starts, more.starts),
        placed(first.fits, more.fits),
    )


def read_passages(
    reader: PassageReader,
    ranked: Ranked,
    picked: list[int],
    near: np.ndarray,
    reading: Reading,
    settings: RetrievalSettings,
) -> tuple[list[Hit], Reading]:
    """The reader's ``reading`` of the ``picked`` passages: its logits and their cosines with
    the adapted question, weighted as fitted, join the ranker's for their order ahead of the
    passages not read, each marked with where the reader found its answer; what it read is
    returned for the decision to join."""
    head, logits = ranked.head, ranked.logits
    tuned = reader.spec.tuned_articles if settings.reader_tuned_decision else frozenset()
    marks = np.array([head[i].article.content_hash in tuned for i in picked], dtype=bool)
    reading = replace(reading, ranker=logits[picked], near=near, tuned=marks)
    combined = reading.joined(reader.spec.order)
    order = np.argsort(-combined, kind="stable")
    margin = settings.quote_span_margin if settings.quote_from_span else None
    best = [
        replace(
            rescored(head[picked[j]], float(combined[j])),
            answer_at=answer_at(head[picked[j]], reading, int(j), margin),
        )
        for j in order
    ]
    chosen = set(picked)
    rest = [h for i, h in enumerate(head) if i not in chosen]
    return best + rest, reading


def answer_at(hit: Hit, reading: Reading, row: int, margin: float | None) -> int | None:
    """Where in the article the reader's best span in ``hit`` starts, if it beats "not
    there" by ``margin`` (None: never)."""
    start = reading.start_of(row)
    if margin is None or start < 0 or reading.spans[row] < margin:
        return None
    return hit.chunk.start + start
