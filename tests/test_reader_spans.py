"""What the decision reads of the reader's span: whether it is what the question asks for."""

from __future__ import annotations

import numpy as np
import pytest

from qa_bot.answer_types import asks_person
from qa_bot.reader import Reading, decision_row
from qa_bot.reader_spans import SPAN_FIT_INPUTS, span_fits, span_text


def _column(rows: np.ndarray, name: str) -> list[float]:
    return rows[:, SPAN_FIT_INPUTS.index(name)].tolist()


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("who said the talks had failed?", True),
        ("Whose plan did the envoy reject", True),
        ("which pentagon official confirmed the strike", True),
        ("What Russian military spokesman described the raid?", True),
        ("which city was shelled", False),
        ("what did the russian minister say about the truce", False),  # what was said
        ("how many people died in the whole region", False),
    ],
)
def test_a_question_asking_for_someone_is_told_from_others(question: str, asks: bool) -> None:
    assert asks_person(question) is asks


def test_a_span_naming_someone_new_fits_a_question_asking_for_someone() -> None:
    question = "which official announced the strikes on the convoy?"
    rows = span_fits(question, ["Defence Minister Sergei Shoigu", "the strikes", "Convoy", ""])
    assert _column(rows, "asks_person") == [1.0, 1.0, 1.0, 1.0]
    # A name the question does not hold; the question's own word capitalised is not one.
    assert _column(rows, "span_names_new") == [1.0, 0.0, 0.0, 0.0]
    other = span_fits("where did the convoy stop?", ["Sergei Shoigu"])
    assert _column(other, "span_names_new") == [0.0]


def test_a_span_holding_the_kind_asked_for_and_new_words() -> None:
    question = "when did the convoy reach aleppo"
    rows = span_fits(question, ["on Tuesday morning", "the convoy reached Aleppo", ""])
    assert _column(rows, "span_kind") == [1.0, 0.0, 0.0]
    new = _column(rows, "span_new_words")
    assert new[0] > 0.5 and new[1] == pytest.approx(0.0) and new[2] == 0.0
    assert span_fits(question, []).shape == (0, len(SPAN_FIT_INPUTS))


def test_a_span_is_cut_from_its_tokens_offsets() -> None:
    passage = "Talks ended on Tuesday in Geneva."
    offsets = [(0, 0), (0, 5), (6, 11), (12, 14), (15, 22), (23, 25), (26, 32)]
    assert span_text(passage, offsets, 3, 4) == "on Tuesday"
    assert span_text(passage, offsets, -1, -1) == ""


def test_the_decision_reads_the_span_of_the_passage_the_order_puts_first() -> None:
    fits = np.array([[1.0, 0.0, 0.0, 0.2], [1.0, 1.0, 0.0, 0.9]])
    reading = Reading(
        np.array([0.5, 2.0]), np.array([1.0, 3.0]), ranker=np.array([0.0, 0.0]), fits=fits
    )
    names = ("span_names_new", "span_new_words", "reader_first")
    assert decision_row(0.0, reading, np.zeros(15), names, (1.0, 0.0)) == [1.0, 0.9, 2.0]
    # The ranker puts the other passage first: its span is read.
    first = Reading(reading.logits, reading.spans, ranker=np.array([9.0, 0.0]), fits=fits)
    assert decision_row(0.0, first, np.zeros(15), names, (1.0, 0.0)) == [0.0, 0.2, 0.5]
    # A reading without span texts reads as holding nothing.
    bare = Reading(reading.logits, reading.spans, ranker=reading.ranker)
    assert decision_row(0.0, bare, np.zeros(15), names, (1.0, 0.0))[:2] == [0.0, 0.0]
