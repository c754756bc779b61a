"""The word statistics a Milvus index keeps score BM25 exactly as the embedded word index does."""

from __future__ import annotations

import random

import numpy as np
import pytest

from qa_bot.chunking import lexical_text
from qa_bot.lexical import LexicalIndex
from qa_bot.term_stats import TermStats, passage_terms

WORDS = (
    "convoy drone aid truck syria aleppo geneva talks ceasefire rain cocoa price the a of".split()
)


def _passages(seed: int, n: int = 60) -> list[tuple[str, str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(n):
        title = " ".join(rng.choices(WORDS, k=rng.randint(1, 4)))
        text = " ".join(rng.choices(WORDS, k=rng.randint(0, 30)))
        out.append((title, text))
    return out


def _stats(passages: list[tuple[str, str]]) -> TermStats:
    stats = TermStats()
    for title, text in passages:
        stats.add(passage_terms(title, text))
    return stats


@pytest.mark.parametrize("seed", range(5))
def test_scores_match_the_embedded_word_index(seed: int) -> None:
    passages = _passages(seed)
    reference = LexicalIndex.build([lexical_text(t, x) for t, x in passages])
    stats = _stats(passages)
    rng = random.Random(seed + 100)
    for _ in range(10):
        query = rng.choices(WORDS, k=rng.randint(1, 5))  # repeats count twice, as in bm25s
        extra = rng.choices(WORDS, k=2)
        expected = reference.scores(query) + 0.5 * reference.scores(extra)
        got = stats.scores(
            [passage_terms(t, x) for t, x in passages], stats.query_weights(query, extra)
        )
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)
        for term in set(query):
            assert stats.idf(term) == pytest.approx(reference.idf(term))
            assert stats.holds(term) == reference.holds(term)


def test_the_sparse_inner_product_is_the_bm25_score() -> None:
    passages = _passages(7)
    stats = _stats(passages)
    weights = stats.query_weights(["convoy", "drone", "convoy"])
    query = stats.query_vector(weights)
    tokens = [passage_terms(t, x) for t, x in passages]
    inner = [sum(w * stats.passage_vector(p).get(i, 0.0) for i, w in query.items()) for p in tokens]
    np.testing.assert_allclose(inner, stats.scores(tokens, weights), rtol=1e-5, atol=1e-6)


def test_removing_passages_gives_the_statistics_of_the_rest() -> None:
    passages = _passages(3)
    stats = _stats(passages)
    for title, text in passages[:20]:
        stats.remove(passage_terms(title, text))
    rest = _stats(passages[20:])
    assert (stats.n_docs, stats.total_length) == (rest.n_docs, rest.total_length)
    for word in WORDS:
        assert stats.idf(word) == pytest.approx(rest.idf(word))
    assert set(stats.ids) == set(rest.ids)


def test_statistics_survive_storage_in_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    import qa_bot.term_stats as module

    monkeypatch.setattr(module, "PART_CHARS", 50)
    stats = _stats(_passages(1))
    parts = stats.to_parts()
    assert len(parts) > 1 and all(len(p) <= 50 for p in parts)
    again = TermStats.from_parts(parts)
    assert (again.n_docs, again.total_length, again.next_id) == (
        stats.n_docs,
        stats.total_length,
        stats.next_id,
    )
    assert again.ids == stats.ids and again.near_terms("convoi") == ("convoy",)
    with pytest.raises(ValueError, match="damaged"):
        TermStats.from_parts(parts[:-1])
