"""Named features of candidate passages and of a question's best candidates.

The learned ranker and the learned answer decision (:mod:`qa_bot.ranker`) read these, and so
does the script that trains them (``training/train_ranker.py``): one definition of each
signal, computed the same way at training and at question time.

A candidate is described by what the hand-made ranking knew (cosine, BM25, the share of the
question's words it holds, the answer kind the question asks for) and by what it did not use:
its rank on each side, the neighbouring windows' cosines (the answer often spills into the
next sentence), how much of its article ranks, where in the article it stands. Only scalars:
the element-wise product of the question's and the passage's embeddings was tried as well and
gained nothing on held-out questions (benchmarks/README.md), and without it the features mean
the same under any embedding model.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import lru_cache
from typing import TYPE_CHECKING

import numpy as np

from qa_bot.text import sentence_spans, terms

if TYPE_CHECKING:
    from qa_bot.models import Hit
    from qa_bot.query import Query
    from qa_bot.store_api import IndexView

#: Scalar features of one candidate, in the order of the model's weights.
CANDIDATE_FEATURES: tuple[str, ...] = (
    "dense",
    "lexical",
    "fused",
    "fused_rank",
    "dense_rank",
    "coverage",
    "coverage_with_meta",
    "first_sentence_coverage",
    "best_sentence_coverage",
    "rarest_term",
    "title_coverage",
    "answer_kind",
    "asks_kind",
    "definition",
    "previous_topic",
    "previous_window_dense",
    "next_window_dense",
    "article_best_dense",
    "article_share",
    "position",
    "length",
    "unknown_share",
)

#: Features of a question's best candidates after reranking, for the answer decision.
QUESTION_FEATURES: tuple[str, ...] = (
    "top_logit",
    "best_dense",
    "best_coverage",
    "top_coverage",
    "best_sentence_coverage",
    "rarest_term",
    "top_title_coverage",
    "top_lexical",
    "unknown_share",
    "unknown_word_share",
    "unknown_names",
    "asks_kind",
    "top_answer_kind",
    "asks_definition",
    "top_definition",
)


def candidate_features(
    query: Query,
    hits: Sequence[Hit],
    snapshot: IndexView,
    query_vector: np.ndarray,
    hand: dict[str, np.ndarray],
) -> np.ndarray:
    """One row per hit, the features in the order of :data:`CANDIDATE_FEATURES`.

    ``hand`` holds per-hit arrays the hand-made scoring computed anyway ("answer_kind",
    "definition"), so they are not computed twice.
    """
    n = len(hits)
    if n == 0:
        return np.zeros((0, len(CANDIDATE_FEATURES)), dtype=np.float32)
    qv = np.asarray(query_vector, dtype=np.float32).reshape(-1)
    dense = np.array([h.dense for h in hits])
    previous, following = _neighbour_dense(hits, snapshot, qv)
    by_article: dict[str, list[int]] = {}
    for j, h in enumerate(hits):
        by_article.setdefault(h.article.id, []).append(j)
    weights = query.weights
    rarest = max(weights, key=lambda t: weights[t]) if weights else None
    context = set(query.context_articles)
    rows = np.zeros((n, len(CANDIDATE_FEATURES)), dtype=np.float32)
    dense_order = np.argsort(-dense, kind="stable")
    dense_rank = np.empty(n)
    dense_rank[dense_order] = np.arange(n)
    for j, h in enumerate(hits):
        window = text_terms(h.chunk.text)
        title = text_terms(h.article.title)
        same = by_article[h.article.id]
        rows[j] = (
            h.dense,
            h.lexical,
            h.score,
            1.0 / (1.0 + j),
            1.0 / (1.0 + dense_rank[j]),
            share(window, weights),
            passage_coverage(h, weights),
            share(first_sentence_terms(h.chunk.text), weights),
            best_sentence_share(h.chunk.text, weights),
            float(rarest in window) if rarest else 0.0,
            share(title, weights),
            hand["answer_kind"][j],
            float(query.expected is not None),
            hand["definition"][j],
            float(h.article.id in context),
            previous[j],
            following[j],
            max(dense[i] for i in same),
            len(same) / n,
            math.log1p(h.chunk.start),
            math.log1p(len(h.chunk.text)),
            query.unknown_share,
        )
    return rows


def question_features(
    query: Query, hits: Sequence[Hit], logits: np.ndarray, rows: np.ndarray
) -> np.ndarray:
    """The answer decision's inputs: how strongly the reranked best candidates answer.

    ``hits``, ``logits`` and ``rows`` are in reranked order; ``rows`` are the candidates'
    :func:`candidate_features`.
    """
    col = {name: i for i, name in enumerate(CANDIDATE_FEATURES)}
    if not len(rows):
        return np.zeros(len(QUESTION_FEATURES), dtype=np.float32)
    top, head = rows[0], rows[:3]

    def best(name: str) -> float:
        return float(head[:, col[name]].max())

    # Only the best candidate and the best three: how many *other* windows look good
    # depends on how an article is cut (overlapping windows of a long paragraph), not on
    # whether it answers.
    return np.array(
        [
            float(logits[0]),
            float(max(h.dense for h in hits[:5])),
            best("coverage_with_meta"),
            float(top[col["coverage"]]),
            best("best_sentence_coverage"),
            best("rarest_term"),
            float(top[col["title_coverage"]]),
            float(top[col["lexical"]]),
            query.unknown_share,
            query.unknown_word_share,
            float(len(query.unknown_names)),
            float(query.expected is not None),
            float(top[col["answer_kind"]]),
            float(query.subject is not None),
            float(top[col["definition"]]),
        ],
        dtype=np.float32,
    )


@lru_cache(maxsize=65_536)
def text_terms(text: str) -> tuple[str, ...]:
    """:func:`qa_bot.text.terms`, remembered: the same windows, sentences, titles and outlets
    come back question after question, and tokenising them was most of the ranker's time."""
    return tuple(terms(text))


def share(found_terms: Sequence[str], weights: dict[str, float]) -> float:
    """IDF-weighted share of the question's terms among ``found_terms``."""
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    found = set(found_terms)
    return sum(w for t, w in weights.items() if t in found) / total


def best_sentence_share(window_text: str, weights: dict[str, float]) -> float:
    """The most of the question one sentence of the window holds: an answer usually restates
    the question in one sentence, while an on-topic question the text does not answer finds
    its words scattered over several."""
    return max(
        (share(text_terms(window_text[a:b]), weights) for a, b in sentence_spans(window_text)),
        default=0.0,
    )


def first_sentence_terms(window_text: str) -> Sequence[str]:
    """Terms of a window's first sentence (windows start at every sentence: the one that
    starts where the question is matched holds the answer most often)."""
    first = next(sentence_spans(window_text), None)
    return text_terms(window_text[first[0] : first[1]]) if first else ()


def passage_coverage(hit: Hit, weights: dict[str, float]) -> float:
    """The share of the question's words in a window together with its article's title,
    outlet and date: what the answer decisions call coverage."""
    return share(
        [*text_terms(hit.chunk.text), *text_terms(hit.article.title), *meta_terms(hit)], weights
    )


def meta_terms(hit: Hit) -> Sequence[str]:
    """Words a question may use to point at the article rather than its text: the outlet and
    the publication date ("What did RT report on September 24 about ...?")."""
    meta = hit.article
    words = [meta.outlet or "", meta.date_text or ""]
    if meta.date is not None:
        words.append(f"{meta.date:%B} {meta.date.day} {meta.date.year}")
    return text_terms(" ".join(words))


def _neighbour_dense(
    hits: Sequence[Hit], snapshot: IndexView, qv: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Cosine of the question with the window before and after each hit in its article (0
    at an article's edge). Chunk ids of one article are consecutive."""
    wanted = sorted({i for h in hits for i in (h.chunk_id - 1, h.chunk_id + 1) if i >= 0})
    found = snapshot.chunks(wanted) if wanted else {}
    sims: dict[int, float] = {}
    if found:
        present = sorted(found)
        sims = dict(zip(present, (snapshot.vectors_of(present) @ qv).tolist(), strict=True))
    previous = np.zeros(len(hits))
    following = np.zeros(len(hits))
    for j, h in enumerate(hits):
        for offset, out in ((-1, previous), (1, following)):
            chunk = found.get(h.chunk_id + offset)
            if chunk is not None and chunk.article_id == h.chunk.article_id:
                out[j] = sims[h.chunk_id + offset]
    return previous, following
