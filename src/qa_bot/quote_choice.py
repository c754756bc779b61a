"""Which sentences the first quote is made of: the sentence that answers, and the
neighbours it grows into.

The best window is a few sentences; the quote is one to three of them and the sentences
next to them. Which ones is learned (``training/train_quote.py``): a logistic regression
scores each sentence by how likely it holds the answer, from what it shares with the
question, where the reader found the answer, the kind of answer asked for, and whether it
names someone a question asking for someone ("who", "which official") does not name. The
quote starts from the best-scored sentence of the window and grows, one neighbour at a time,
towards the better-scored side. News
often names a speaker a sentence before (or after) the words quoted ("..., she said"), and
the order of growth decides whether that name makes it into the quote.

Without a model, the hand-made order is used: the sentence the reader found the answer in
(else the one sharing most of the question), then the one after, the one before, the second
one after.
"""

from __future__ import annotations

import itertools
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from qa_bot.answer_types import AnswerType, asks_person, names_new
from qa_bot.errors import ModelError
from qa_bot.models import Chunk
from qa_bot.ranker import LinearModel, read_model_json
from qa_bot.speakers import UNNAMED
from qa_bot.text import apart, reads_as_prose, sentence_spans, terms

#: The model shipped with the package (``training/train_quote.py`` writes it).
PACKAGED = "quote_model.json"

#: What the model reads of each sentence (:func:`sentence_rows`).
INPUTS = (
    "read",
    "read_near",
    "read_second",
    "read_far",
    "after_read",
    "coverage",
    "best_coverage",
    "coverage_share",
    "expected",
    "expected_elsewhere",
    "in_window",
    "in_region",
    "names_new",
    "who_names_new",
    "who_pronoun_said",
    "attributed",
    "quoted",
    "chars",
)

_ATTRIBUTED = re.compile(r"\b(?:said|says|told|added|according to|stated)\b", re.IGNORECASE)
_QUOTE_MARKS = re.compile(r"[\"“”«»]")


@dataclass(frozen=True)
class Sentences:
    """The sentences a first quote may be made of, in article order.

    ``spans`` are article offsets of the best window's sentences and of the first sentences
    of the windows around it (its neighbours); ``region`` indexes those inside the best
    window and the top windows overlapping it (where the quote starts); ``read`` indexes the
    one where the reader's best answer span starts, if any; ``window`` is the best window.
    """

    text: str
    spans: tuple[tuple[int, int], ...]
    region: tuple[int, ...]
    read: int | None
    window: tuple[int, int]

    def sentence(self, i: int) -> str:
        return self.text[self.spans[i][0] : self.spans[i][1]]


def quote_sentences(
    window: Chunk,
    merged: tuple[int, int],
    chunks: Sequence[Chunk],
    text: str,
    answer_at: int | None,
) -> Sentences | None:
    """The sentences around ``window`` (the best hit's chunk) that a quote may use: its own,
    and the first sentence of each of ``chunks`` of the same article. Only sentences of the
    article's body are kept (never page furniture) when there are any. None when no
    sentence lies within ``merged`` (the window and the top windows overlapping it)."""
    own = list(sentence_spans(text, window.start, window.end))
    firsts = {_first_sentence(c) for c in chunks if c.article_id == window.article_id}
    spans = sorted(firsts | set(own))
    spans = [s for s in spans if reads_as_prose(text[s[0] : s[1]])] or spans
    region = tuple(i for i, s in enumerate(spans) if merged[0] <= s[0] and s[1] <= merged[1])
    if not region:
        return None
    read_span = (
        None if answer_at is None else next((s for s in own if s[0] <= answer_at < s[1]), None)
    )
    read = next((i for i in region if spans[i] == read_span), None)
    return Sentences(text, tuple(spans), region, read, (window.start, window.end))


def _first_sentence(chunk: Chunk) -> tuple[int, int]:
    span = next(sentence_spans(chunk.text), (0, len(chunk.text)))
    return chunk.start + span[0], chunk.start + span[1]


def coverage(sentence: str, weights: Mapping[str, float]) -> float:
    """The question's weight (IDF) of the terms ``sentence`` holds."""
    found = set(terms(sentence))
    return sum(w for t, w in weights.items() if t in found)


def sentence_rows(
    question: str,
    sentences: Sentences,
    weights: Mapping[str, float],
    expected: AnswerType | None,
) -> np.ndarray:
    """One row of :data:`INPUTS` per sentence."""
    total = sum(weights.values()) or 1.0
    texts = [sentences.sentence(i) for i in range(len(sentences.spans))]
    covered = [coverage(t, weights) for t in texts]
    best = max((covered[i] for i in sentences.region), default=0.0)
    kinds = [bool(expected is not None and expected.strict.search(t)) for t in texts]
    asked = set(terms(question))
    who = asks_person(question)
    read = sentences.read
    rows = []
    for i, t in enumerate(texts):
        gap = None if read is None else abs(i - read)
        new = names_new(t, asked)
        said = bool(UNNAMED.search(t))
        values = {
            "read": float(gap == 0),
            "read_near": float(gap == 1),
            "read_second": float(gap == 2),
            "read_far": float(gap is not None and gap > 2),
            "after_read": float(read is not None and i > read),
            "coverage": covered[i] / total,
            "best_coverage": float(best > 0 and covered[i] >= best),
            "coverage_share": covered[i] / best if best > 0 else 0.0,
            "expected": float(kinds[i]),
            "expected_elsewhere": float(expected is not None and not kinds[i] and any(kinds)),
            "in_window": float(sentences.window[0] <= sentences.spans[i][0] < sentences.window[1]),
            "in_region": float(i in sentences.region),
            "names_new": float(new),
            "who_names_new": float(who and new),
            "who_pronoun_said": float(who and said and not new),
            "attributed": float(bool(_ATTRIBUTED.search(t))),
            "quoted": float(bool(_QUOTE_MARKS.search(t))),
            "chars": min(len(t), 600) / 100.0,
        }
        rows.append([values[name] for name in INPUTS])
    return np.asarray(rows, dtype=np.float64)


@dataclass(frozen=True)
class QuoteModel:
    """The learned sentence scorer, and how it was made."""

    model: LinearModel
    provenance: dict[str, Any]

    def scores(self, rows: np.ndarray) -> np.ndarray:
        return self.model.logits(rows)

    def to_json(self) -> str:
        return json.dumps({"quote": self.model.to_json(), "provenance": self.provenance}, indent=1)

    @classmethod
    def load(cls, path: Path | None = None) -> QuoteModel:
        """The model at ``path``, or the packaged one. Raises ModelError when unreadable or
        when it reads inputs this version does not make."""

        def build(data: dict[str, Any]) -> QuoteModel:
            return cls(LinearModel.from_json(data["quote"]), dict(data.get("provenance", {})))

        loaded = read_model_json(path, PACKAGED, build, "the quote model in {} is unreadable")
        model = loaded.model
        if model.names != INPUTS:
            raise ModelError(
                f"the quote model in {path or PACKAGED} reads {list(model.names)}, "
                f"but this version makes {list(INPUTS)}"
            )
        return loaded


def choose(
    sentences: Sentences,
    score: Callable[[int], float] | Sequence[float],
    limit: int,
    max_sentences: int,
) -> tuple[int, int]:
    """The quote's span: the best-scored sentence of the region, grown one neighbour at a
    time towards the better-scored side, while it stays within ``limit`` characters and
    ``max_sentences`` sentences and nothing but blank space separates its sentences."""
    value = score if callable(score) else (lambda i: float(score[i]))
    pivot = max(sentences.region, key=lambda i: (value(i), -i))
    return grow(
        sentences, pivot, lambda chosen: _sides(chosen, sentences, value), limit, max_sentences
    )


def _sides(chosen: Sequence[int], sentences: Sentences, value: Callable[[int], float]) -> list[int]:
    lo, hi = min(chosen), max(chosen)
    sides = [i for i in (lo - 1, hi + 1) if 0 <= i < len(sentences.spans)]
    return sorted(sides, key=lambda i: -value(i))


def grow(
    sentences: Sentences,
    pivot: int,
    next_of: Callable[[list[int]], Sequence[int]],
    limit: int,
    max_sentences: int,
) -> tuple[int, int]:
    """``pivot`` grown by the sentences ``next_of`` names in turn (given those chosen so far),
    each taken when the quote still fits ``limit`` and runs on without a gap."""
    spans, text = sentences.spans, sentences.text
    chosen = [pivot]
    tried: set[int] = set()
    while len(chosen) < max_sentences:
        options = [i for i in next_of(chosen) if i not in tried and i not in chosen]
        if not options:
            break
        i = options[0]
        tried.add(i)
        lo = min(spans[j][0] for j in [*chosen, i])
        hi = max(spans[j][1] for j in [*chosen, i])
        if hi - lo <= limit and contiguous([*chosen, i], spans, text):
            chosen.append(i)
    return min(spans[j][0] for j in chosen), max(spans[j][1] for j in chosen)


def contiguous(picked: Sequence[int], spans: Sequence[tuple[int, int]], text: str) -> bool:
    """Picked sentences follow each other in the article: no body sentence skipped, and
    nothing but blank space between them (no promo line, photo credit or subhead)."""
    ordered = sorted(picked)
    return all(
        b == a + 1 and not apart(text, spans[a][1], spans[b][0])
        for a, b in itertools.pairwise(ordered)
    )
