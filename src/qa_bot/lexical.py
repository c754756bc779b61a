"""Lexical (BM25) side of the hybrid search, on top of ``bm25s``.

Texts are tokenized with :func:`qa_bot.text.terms`, the same folding as ingestion, so a curly
apostrophe in the article and a straight one in the question meet. The document frequencies it
keeps also feed the abstention decision (how much of the question the best passages cover).
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from qa_bot.errors import IndexCorruptError
from qa_bot.text import terms


class LexicalIndex:
    def __init__(self, retriever: object, doc_freq: dict[str, int], n_docs: int):
        self._retriever = retriever
        self._doc_freq = doc_freq
        self.n_docs = n_docs

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        import bm25s

        tokenized = [terms(t) or [""] for t in texts]
        retriever = bm25s.BM25()
        if tokenized:
            retriever.index(tokenized, show_progress=False)
        doc_freq: dict[str, int] = {}
        for tokens in tokenized:
            for token in set(tokens):
                if token:
                    doc_freq[token] = doc_freq.get(token, 0) + 1
        return cls(retriever, doc_freq, len(tokenized))

    def save(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        if self.n_docs:
            self._retriever.save(str(folder), show_progress=False)  # type: ignore[attr-defined]
        (folder / "doc_freq.json").write_text(
            json.dumps({"n_docs": self.n_docs, "doc_freq": self._doc_freq}), encoding="utf-8"
        )

    @classmethod
    def load(cls, folder: Path) -> LexicalIndex:
        import bm25s

        try:
            info = json.loads((folder / "doc_freq.json").read_text(encoding="utf-8"))
            n_docs = int(info["n_docs"])
            retriever = (
                bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
                if n_docs
                else bm25s.BM25()
            )
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(f"lexical index in {folder} is unreadable: {exc}") from exc
        return cls(retriever, info["doc_freq"], n_docs)

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency; unseen terms weigh the most."""
        df = self._doc_freq.get(term, 0)
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))

    def scores(self, query_terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for the query (zeros when nothing matches)."""
        known = [t for t in query_terms if t in self._doc_freq]
        if not self.n_docs or not known:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(known), dtype=np.float32)  # type: ignore[attr-defined]
