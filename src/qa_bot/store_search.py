"""Hybrid candidates over one FAISS generation: the dense and BM25 sides of a question's search.

Dense candidates come from the vector index, BM25 ones from the in-process word index, both
restricted to the passages a filter admits; the cosine and the max-normalised BM25 score of
every candidate are computed exactly, so ranking sees the same numbers whichever side found it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from qa_bot.filters import SearchFilters
from qa_bot.lexical import LexicalIndex
from qa_bot.store_api import Candidates
from qa_bot.vector_index import VectorIndex

#: A filtered search scores up to this many allowed passages exactly; a larger allowed set is
#: searched through the vector index with the other rows masked out, when that is exact (a
#: flat index) or the allowed share is large enough for the approximate index to still find
#: the neighbours: HNSW loses neighbours when most rows are masked (benchmarks/README.md,
#: "Filtered search").
EXACT_FILTER_LIMIT = 20_000
MASKED_MIN_SHARE = 0.3


class Searched(Protocol):
    """What the search reads of a generation (:class:`qa_bot.store_snapshot.Snapshot`)."""

    dense: VectorIndex
    vectors: np.ndarray

    @property
    def n_chunks(self) -> int: ...

    @property
    def lexical(self) -> LexicalIndex: ...

    def chunk_ids_where(
        self,
        outlets: Sequence[str] = (),
        since: dt.date | None = None,
        until: dt.date | None = None,
    ) -> np.ndarray: ...


def faiss_candidates(
    snapshot: Searched,
    query_vector: np.ndarray,
    terms: Sequence[str],
    k: int,
    *,
    filters: SearchFilters | None = None,
    extra_terms: Sequence[str] = (),
    extra_weight: float = 0.5,
) -> Candidates:
    """See :meth:`qa_bot.store_api.IndexView.candidates`."""
    n = snapshot.n_chunks
    allowed = _allowed_ids(snapshot, filters)
    if n == 0 or (allowed is not None and allowed.size == 0):
        return Candidates.none()
    qv = np.asarray(query_vector, dtype=np.float32).reshape(1, -1)
    k = min(k, n)
    dense_ids = _dense_candidates(snapshot, qv, k, allowed)

    lex = snapshot.lexical.scores(terms)
    if extra_terms:
        lex = lex + extra_weight * snapshot.lexical.scores(extra_terms)
    if allowed is not None:
        mask = np.zeros(n, dtype=bool)
        mask[allowed] = True
        lex = np.where(mask, lex, 0.0)
    lex_max = float(lex.max()) if lex.size else 0.0
    lex_ids: list[int] = []
    if lex_max > 0:
        top = np.argpartition(-lex, min(k, n - 1))[:k]
        lex_ids = [int(i) for i in top if lex[i] > 0]

    ids = np.array(sorted(set(dense_ids) | set(lex_ids)), dtype=np.int64)
    dense = np.asarray(snapshot.vectors[ids], dtype=np.float32) @ qv[0]
    lexical = lex[ids] / lex_max if lex_max > 0 else np.zeros(len(ids), dtype=np.float32)
    return Candidates(ids, dense, lexical)


def _allowed_ids(snapshot: Searched, filters: SearchFilters | None) -> np.ndarray | None:
    if filters is None or not filters.active:
        return None
    return snapshot.chunk_ids_where(filters.outlets, filters.since, filters.until)


def _dense_candidates(
    snapshot: Searched, qv: np.ndarray, k: int, allowed: np.ndarray | None
) -> list[int]:
    """Ids of the ``k`` passages nearest the question, among ``allowed`` ones when filtered.

    A small allowed set is scored exactly (a few thousand dot products). A large one is
    searched by the index itself with the other rows masked out, which copies no vectors,
    unless the index is approximate and the allowed share small: its graph or lists would
    then lead mostly to masked rows and miss allowed neighbours.
    """
    if allowed is None:
        _, ids = snapshot.dense.search(qv, k)
        return [int(i) for i in ids[0] if i >= 0]
    masked_is_safe = snapshot.dense.kind == "flat" or allowed.size >= MASKED_MIN_SHARE * max(
        1, snapshot.n_chunks
    )
    if allowed.size <= EXACT_FILTER_LIMIT or not masked_is_safe:
        sims = np.asarray(snapshot.vectors[allowed], dtype=np.float32) @ qv[0]
        return [int(allowed[i]) for i in np.argsort(-sims)[:k]]
    _, ids = snapshot.dense.search(qv, k, allowed=allowed)
    return [int(i) for i in ids[0] if i >= 0]
