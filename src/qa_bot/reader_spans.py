"""Where the reader's span head finds the answer in each passage, and whether that span is
the kind of thing the question asks for.

The reader marks where in each passage it finds the answer even when no passage holds one,
and then points at the nearest look-alike: asked "which official announced the strikes?" of
passages that never say, it marks a phrase naming no one, or one repeating the question's own
words. What the span holds is read beside the reader's logits by the decision (its weights
are fitted with the others, ``training/tune_reader.py``): whether the question asks for
someone and the span names a person or thing the question does not, whether the span holds
the kind of answer asked for (a date, a number, a speed), and how much of it is new.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from qa_bot.answer_types import asks_person, expected_answer, names_new
from qa_bot.text import terms

#: What the decision may read of the reader's span in the passage the joined order puts
#: first (``reader.DECISION_INPUTS``), in the columns of :func:`span_fits`.
SPAN_FIT_INPUTS = ("asks_person", "span_names_new", "span_kind", "span_new_words")


def span_fits(question: str, answers: Sequence[str]) -> np.ndarray:
    """One row per span text in ``answers`` (empty: no span), the columns of SPAN_FIT_INPUTS:
    the question asks for someone; it does and the span names someone it does not; the span
    holds the kind of answer the question asks for; the share of its words the question lacks."""
    person = asks_person(question)
    asked = set(terms(question))
    kind = expected_answer(question)
    rows = []
    for text in answers:
        words = terms(text)
        new = sum(w not in asked for w in words) / len(words) if words else 0.0
        rows.append(
            [
                float(person),
                float(person and names_new(text, asked, skip=0)),
                float(kind is not None and kind.strict.search(text) is not None),
                new,
            ]
        )
    return np.asarray(rows, dtype=np.float64).reshape(len(answers), len(SPAN_FIT_INPUTS))


def span_text(passage: str, offsets: Sequence[tuple[int, int]], first: int, last: int) -> str:
    """The text of the span from token ``first`` to ``last`` (batch positions, their character
    ``offsets`` in the passage); empty without a span (``first`` -1)."""
    if first < 0 or last < first:
        return ""
    return passage[offsets[first][0] : offsets[last][1]]


def span_margins(span: np.ndarray, batch: dict[str, np.ndarray], max_span: int) -> np.ndarray:
    """Per pair: the best span's start + end logit (within the passage, start before end, at
    most ``max_span`` tokens) minus the first token's, which stands for "not there"."""
    return best_spans(span, batch, max_span)[0]


def best_spans(
    span: np.ndarray, batch: dict[str, np.ndarray], max_span: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per pair: ``span_margins``'s margin, and the batch positions of the best span's first
    and last tokens (-1 when the passage kept no token)."""
    margins, firsts, lasts = np.zeros(len(span)), np.full(len(span), -1), np.full(len(span), -1)
    for row in range(len(span)):
        passage = np.flatnonzero(batch["token_type_ids"][row] * batch["attention_mask"][row])
        start, end = span[row, passage[:-1], 0], span[row, passage[:-1], 1]  # no closing [SEP]
        value, first, width = _best_span(start, end, max_span)
        margins[row] = value - float(span[row, 0, 0] + span[row, 0, 1])
        if first >= 0:
            firsts[row], lasts[row] = passage[first], passage[first + width]
    return margins, firsts, lasts


def _best_span(start: np.ndarray, end: np.ndarray, max_span: int) -> tuple[float, int, int]:
    """The best start + end logit of a span of at most ``max_span`` tokens, its start, and
    how many tokens its end lies past its start."""
    if not len(start):
        return -np.inf, -1, 0
    best, first, wide = -np.inf, -1, 0
    for width in range(min(max_span, len(start))):
        sums = start[: len(start) - width] + end[width:]
        at = int(np.argmax(sums))
        if float(sums[at]) > best:
            best, first, wide = float(sums[at]), at, width
    return best, first, wide


def read_spans(
    question: str,
    passages: Sequence[str],
    span: np.ndarray,
    encoded: tuple[dict[str, np.ndarray], list[Any]],
    max_span: int,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """What a span head's output ``span`` says of the ``encoded`` pairs (the batch and the
    encodings of ``reader.encoded_pairs``): each passage's margin, where its best span starts
    (characters, -1 for none), and what that span holds (:func:`span_fits`). Serving and the
    join's fitting both read it."""
    batch, encodings = encoded
    margins, firsts, lasts = best_spans(span, batch, max_span)
    rows = zip(passages, encodings, firsts, lasts, strict=True)
    texts = [span_text(p, e.offsets, int(f), int(t)) for p, e, f, t in rows]
    starts = [e.offsets[t][0] if t >= 0 else -1 for e, t in zip(encodings, firsts, strict=True)]
    return margins, np.array(starts), span_fits(question, texts)
