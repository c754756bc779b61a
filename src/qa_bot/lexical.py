"""Lexical (BM25) side of the hybrid search, on top of ``bm25s``.

Texts are tokenized with :func:`qa_bot.text.terms`, the same folding as ingestion, so a curly
apostrophe in the article and a straight one in the question meet. The document frequencies it
keeps also feed the abstention decision (how much of the question the best passages cover).
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from rapidfuzz import process
from rapidfuzz.distance import OSA

from qa_bot.errors import IndexCorruptError
from qa_bot.files import reading_arrays
from qa_bot.text import terms

#: Shortest word a misspelling is looked up for: shorter ones ("apple" / "apply") are too often
#: a different word one letter away.
MIN_TYPO_LENGTH = 6


#: Shortest word read with a doubled letter fixed ("Kery" -> "Kerry").
MIN_SLIP_LENGTH = 4

#: Unknown words whose readings an index keeps at hand (questions repeat their words).
NEAR_REMEMBERED = 4096

#: Shortest part when a word is read as two indexed words run together ("superbowl").
MIN_PART_LENGTH = 3

#: BM25 (Lucene's variant, as ``bm25s`` computes it): term frequency saturation and length
#: normalisation. Both stores score with these.
BM25_K1 = 1.5
BM25_B = 0.75


def bm25_tf(tf: float, length: int, mean_length: float) -> float:
    """The term-frequency part of a passage's BM25 score for one word (times its IDF)."""
    norm = 1.0 - BM25_B + BM25_B * length / mean_length if mean_length > 0 else 1.0
    return tf / (tf + BM25_K1 * norm)


def typo_budget(word: str) -> int:
    """Edits allowed between a word and its correction: one up to 8 letters, two beyond."""
    if len(word) < MIN_TYPO_LENGTH:
        return 0
    return 1 if len(word) <= 8 else 2


@dataclass(frozen=True)
class _Views:
    shapes: dict[tuple[str, int], list[str]]
    dehyphenated: dict[str, str]


class Vocabulary:
    """The indexed words and how many passages hold each: what the decisions made from words
    need (which question words the index holds, how rare each is), whoever scores BM25."""

    def __init__(self, doc_freq: dict[str, int], n_docs: int):
        self._doc_freq = doc_freq
        self.n_docs = n_docs
        self._lookup: _Views | None = None
        self._near: dict[str, tuple[str, ...]] = {}
        self._near_lock = threading.Lock()

    def holds(self, term: str) -> bool:
        return term in self._doc_freq

    def near_terms(self, term: str) -> tuple[str, ...]:
        """The indexed terms a term the index does not hold stands for, if any: its
        hyphenated spelling ("ezzor" -> "ez-zor"), the indexed terms one typo away ("lavrow" ->
        "lavrov", "septicemia" -> "septicemic"; the closest ones only, none for short words),
        or two indexed words written as one ("superbowl" -> "super", "bowl"). Nothing for
        numbers or for a term that is indexed itself.

        Typo candidates share the first or the second letter (a slip rarely hits both) and
        differ in length by at most the budget, so a question costs a few thousand comparisons
        at most, not a scan of the vocabulary.
        """
        if not term.isalpha() or term in self._doc_freq:
            return ()
        # Retrieval asks once to correct the question, and again to tell unknown names.
        found = self._near.get(term)
        if found is None:
            found = self._look_up(term)
            with self._near_lock:  # the bot answers from several threads
                while len(self._near) >= NEAR_REMEMBERED:
                    self._near.pop(next(iter(self._near)))
                self._near[term] = found
        return found

    def _look_up(self, term: str) -> tuple[str, ...]:
        views = self._views()
        hyphenated = views.dehyphenated.get(term)
        if hyphenated:
            return (hyphenated,)
        return (
            _closest(term, typo_budget(term), views.shapes)
            or self._doubling_slip(term)
            or self._two_words(term)
        )

    def _doubling_slip(self, term: str) -> tuple[str, ...]:
        """For words too short for the typo budget, the one slip that rarely makes another
        word: a doubled letter typed once or a single one typed twice ("Kery" -> "kerry",
        "Asad" -> "assad")."""
        if len(term) < MIN_SLIP_LENGTH or typo_budget(term):
            return ()
        found = {term[: i + 1] + term[i:] for i in range(len(term))}
        found |= {term[:i] + term[i + 1 :] for i in range(1, len(term)) if term[i] == term[i - 1]}
        return tuple(sorted(t for t in found if t in self._doc_freq))

    def slip_readings(self, term: str) -> tuple[str, ...]:
        """The indexed terms one slip (an edit, a swap of neighbours counting as one) from a
        word too short for :meth:`near_terms`' typo budget ("powr": "power"). Short words are
        too often another word one letter away to be read so in general; the caller reads an
        unknown *name* so when the reading is the only one (:mod:`qa_bot.query`)."""
        if len(term) < MIN_SLIP_LENGTH or typo_budget(term) or not term.isalpha():
            return ()
        return () if term in self._doc_freq else _closest(term, 1, self._views().shapes)

    def _two_words(self, term: str) -> tuple[str, ...]:
        if len(term) < MIN_TYPO_LENGTH:
            return ()
        for cut in range(MIN_PART_LENGTH, len(term) - MIN_PART_LENGTH + 1):
            head, tail = term[:cut], term[cut:]
            if head in self._doc_freq and tail in self._doc_freq:
                return (head, tail)
        return ()

    def _views(self) -> _Views:
        """The vocabulary arranged for look-ups (built on first use: most questions have no
        unknown word): alphabetic terms by first letter and length and by second letter and
        length, and hyphenated terms by their spelling without the hyphens."""
        if self._lookup is None:
            shapes: dict[tuple[str, int], list[str]] = {}
            dehyphenated: dict[str, str] = {}
            for word in self._doc_freq:
                if len(word) >= MIN_TYPO_LENGTH - 2 and word.isalpha():
                    for letter in {word[0], word[1]}:
                        shapes.setdefault((letter, len(word)), []).append(word)
                elif "-" in word and word.replace("-", "").isalpha():
                    dehyphenated.setdefault(word.replace("-", ""), word)
            self._lookup = _Views(shapes, dehyphenated)
        return self._lookup

    def idf(self, term: str) -> float:
        """Smoothed inverse document frequency; unseen terms weigh the most."""
        df = self._doc_freq.get(term, 0)
        return math.log(1.0 + (self.n_docs - df + 0.5) / (df + 0.5))


def _closest(term: str, budget: int, shapes: dict[tuple[str, int], list[str]]) -> tuple[str, ...]:
    """The indexed words at the smallest distance from ``term`` within ``budget`` edits, among
    those sharing its first or second letter (a slip rarely hits both) and differing in length
    by at most the budget: a few thousand comparisons at most, not a scan of the vocabulary."""
    if not budget:
        return ()
    candidates = list(
        dict.fromkeys(
            candidate
            for letter in (term[0], term[1])
            for length in range(len(term) - budget, len(term) + budget + 1)
            for candidate in shapes.get((letter, length), ())
        )
    )
    # Optimal string alignment distance: a swap of neighbouring letters is one edit.
    matches = process.extract(
        term, candidates, scorer=OSA.distance, score_cutoff=budget, limit=None
    )
    if not matches:
        return ()
    best = min(distance for _, distance, _ in matches)
    return tuple(sorted(word for word, distance, _ in matches if distance == best))


class LexicalIndex(Vocabulary):
    """The embedded word index: the vocabulary plus ``bm25s``'s postings, scoring every
    passage of a generation at once."""

    def __init__(self, retriever: object, doc_freq: dict[str, int], n_docs: int):
        super().__init__(doc_freq, n_docs)
        self._retriever = retriever

    @classmethod
    def build(cls, texts: Sequence[str]) -> LexicalIndex:
        import bm25s

        tokenized = [terms(t) or [""] for t in texts]
        retriever = bm25s.BM25(k1=BM25_K1, b=BM25_B)
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
            if n_docs:
                with reading_arrays():
                    retriever = bm25s.BM25.load(str(folder), mmap=True, show_progress=False)
            else:
                retriever = bm25s.BM25()
        except (OSError, ValueError, KeyError) as exc:
            raise IndexCorruptError(f"lexical index in {folder} is unreadable: {exc}") from exc
        return cls(retriever, info["doc_freq"], n_docs)

    def scores(self, query_terms: Sequence[str]) -> np.ndarray:
        """BM25 score of every document for the query (zeros when nothing matches)."""
        known = [t for t in query_terms if t in self._doc_freq]
        if not self.n_docs or not known:
            return np.zeros(self.n_docs, dtype=np.float32)
        return np.asarray(self._retriever.get_scores(known), dtype=np.float32)  # type: ignore[attr-defined]
