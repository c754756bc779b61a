"""Word statistics for a store whose engine searches sparse vectors we compute (Milvus).

Why not the engine's own BM25: its analyser is not :func:`qa_bot.text.terms` (no folding of
curly quotes, other splitting of hyphens and numbers), milvus-lite keeps IDF per segment
rather than per collection, and the answer decision needs document frequencies the engine
does not expose. So passages are stored with sparse vectors of BM25 term-frequency weights
under our word ids, questions are sent as IDF weights, and the engine's inner product is then
the BM25 score; the candidates it finds are rescored here exactly (:meth:`TermStats.scores`),
as ``bm25s`` scores them for the embedded index.

One caveat, measured in benchmarks/README.md: a passage's length normalisation uses the mean
passage length of the build that wrote it, so after many incremental builds the engine's
ranking of BM25 candidates can drift slightly from the exact one (their scores do not).
"""

from __future__ import annotations

import base64
import json
import zlib
from collections import Counter
from collections.abc import Iterable, Sequence

import numpy as np

from qa_bot.chunking import lexical_text
from qa_bot.lexical import Vocabulary, bm25_tf
from qa_bot.text import terms as split_terms

#: Characters per stored part of the serialised statistics (engines cap text fields at 64 KiB).
PART_CHARS = 60_000


def passage_terms(title: str, text: str) -> list[str]:
    """A passage's words as the word index counts them (an empty passage counts as one)."""
    return split_terms(lexical_text(title, text)) or [""]


class TermStats(Vocabulary):
    """Document frequencies, word ids and passage lengths of one generation.

    A build copies the previous generation's statistics, removes the passages it retires and
    adds the ones it writes; readers load the statistics of the generation they open.
    """

    def __init__(
        self,
        doc_freq: dict[str, int] | None = None,
        n_docs: int = 0,
        *,
        ids: dict[str, int] | None = None,
        next_id: int = 0,
        total_length: int = 0,
    ):
        super().__init__(dict(doc_freq or {}), n_docs)
        self.ids = dict(ids or {})
        self.next_id = next_id
        self.total_length = total_length

    @property
    def mean_length(self) -> float:
        return self.total_length / self.n_docs if self.n_docs else 0.0

    # -- changes (a build) --------------------------------------------------------------------

    def add(self, tokens: Sequence[str]) -> None:
        self.n_docs += 1
        self.total_length += len(tokens)
        for term in set(tokens):
            if term:
                self._doc_freq[term] = self._doc_freq.get(term, 0) + 1
                if term not in self.ids:
                    self.ids[term] = self.next_id
                    self.next_id += 1
        self._lookup = None
        self._near.clear()

    def remove(self, tokens: Sequence[str]) -> None:
        self.n_docs -= 1
        self.total_length -= len(tokens)
        for term in set(tokens):
            if not term or term not in self._doc_freq:
                continue
            self._doc_freq[term] -= 1
            if self._doc_freq[term] <= 0:
                del self._doc_freq[term]
                del self.ids[term]
        self._lookup = None
        self._near.clear()

    def copy(self) -> TermStats:
        return TermStats(
            self._doc_freq,
            self.n_docs,
            ids=self.ids,
            next_id=self.next_id,
            total_length=self.total_length,
        )

    # -- vectors ------------------------------------------------------------------------------

    def passage_vector(self, tokens: Sequence[str]) -> dict[int, float]:
        """A passage's sparse vector: BM25's term-frequency part of each of its words."""
        counts = Counter(t for t in tokens if t in self.ids)
        mean = self.mean_length
        return {self.ids[t]: bm25_tf(n, len(tokens), mean) for t, n in counts.items()}

    def query_weights(
        self, terms: Sequence[str], extra: Sequence[str] = (), extra_weight: float = 0.5
    ) -> dict[str, float]:
        """Each indexed query word with its weight: one per occurrence (as ``bm25s`` counts
        a repeated word), ``extra_weight`` per occurrence of an ``extra`` word."""
        weights: dict[str, float] = {}
        for term in terms:
            if term in self.ids:
                weights[term] = weights.get(term, 0.0) + 1.0
        for term in extra:
            if term in self.ids:
                weights[term] = weights.get(term, 0.0) + extra_weight
        return weights

    def query_vector(self, weights: dict[str, float]) -> dict[int, float]:
        """The sparse query whose inner product with a passage vector is its BM25 score."""
        return {self.ids[t]: w * self.idf(t) for t, w in weights.items() if t in self.ids}

    def scores(self, passages: Iterable[Sequence[str]], weights: dict[str, float]) -> np.ndarray:
        """Exact BM25 scores of these passages (their words) for the weighted query words."""
        mean = self.mean_length
        idf = {t: self.idf(t) for t in weights}
        out = []
        for tokens in passages:
            counts = Counter(tokens)
            out.append(
                sum(
                    w * idf[t] * bm25_tf(counts[t], len(tokens), mean)
                    for t, w in weights.items()
                    if counts.get(t)
                )
            )
        return np.asarray(out, dtype=np.float32)

    # -- storage ------------------------------------------------------------------------------

    def to_parts(self) -> list[str]:
        """The statistics as compressed text parts of at most ``PART_CHARS`` characters."""
        data = {
            "n_docs": self.n_docs,
            "total_length": self.total_length,
            "next_id": self.next_id,
            "terms": {t: [self.ids[t], df] for t, df in self._doc_freq.items()},
        }
        packed = base64.b64encode(zlib.compress(json.dumps(data).encode(), 6)).decode("ascii")
        return [packed[i : i + PART_CHARS] for i in range(0, len(packed), PART_CHARS)] or [""]

    @classmethod
    def from_parts(cls, parts: Sequence[str]) -> TermStats:
        """Read what :meth:`to_parts` wrote. Raises ValueError when it is damaged."""
        try:
            data = json.loads(zlib.decompress(base64.b64decode("".join(parts))))
            terms = data["terms"]
            return cls(
                {t: int(df) for t, (_, df) in terms.items()},
                int(data["n_docs"]),
                ids={t: int(i) for t, (i, _) in terms.items()},
                next_id=int(data["next_id"]),
                total_length=int(data["total_length"]),
            )
        except (ValueError, KeyError, TypeError, zlib.error) as exc:
            raise ValueError(f"the word statistics are damaged ({exc})") from exc
