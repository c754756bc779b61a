"""The reading stage: which of the ranked passages the passage reader reads, and how its
logits join the learned ranker's order (:func:`qa_bot.retrieval.rerank_and_decide` calls it).

Kept apart from the ranking stages so that ``training/train_reader.py`` reads the same
positions the service reads, from one definition.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

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
) -> tuple[list[int], np.ndarray]:
    """Which of the ranked passages the reader reads, and their cosines with the adapted
    question (zeros without adapter): the best ``reader_depth``, then the ``adapter_reads``
    nearest the adapted question among the others (a paraphrased question's answer is often
    ranked low by its words and the raw cosine, and found by the adapter)."""
    if adapter is None:
        picked = reading_positions(np.zeros(len(head)), settings.reader_depth, 0)
        return picked, np.zeros(len(picked))
    vectors = snapshot.vectors_of([h.chunk_id for h in head])
    cosines = vectors @ adapter.apply(qv[None, :])[0]
    picked = reading_positions(cosines, settings.reader_depth, settings.adapter_reads)
    return picked, cosines[picked].astype(np.float64)


def reading_positions(cosines: np.ndarray, depth: int, extra: int) -> list[int]:
    """Positions in a ranked list that the reader reads: the first ``depth``, then the
    ``extra`` of the others with the highest ``cosines`` (one per position, ties in rank order).
    ``training/train_reader.py`` reads the same, to fit the join."""
    first = list(range(min(depth, len(cosines))))
    rest = np.arange(len(first), len(cosines))
    nearest = rest[np.argsort(-cosines[len(first) :], kind="stable")]
    return first + [int(i) for i in nearest[:extra]]


def read_passages(
    reader: PassageReader,
    query: Query,
    head: list[Hit],
    logits: np.ndarray,
    picked: list[int],
    near: np.ndarray,
    settings: RetrievalSettings,
) -> tuple[list[Hit], Reading]:
    """The reader reads the ``picked`` passages: its logits and their cosines with the
    adapted question, weighted as fitted, join the ranker's for their order ahead of the
    passages not read, each marked with where the reader found its answer; what it read is
    returned for the decision to join."""
    reading = reader.read(query.text, [head[i].chunk.text for i in picked])
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
