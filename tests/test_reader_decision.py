"""The reader's decision inputs: what serving and the training scripts both read of a reading,
taken from one definition (``reader.decision_row``) for each named input."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from qa_bot.features import QUESTION_FEATURES
from qa_bot.ranker import LinearModel
from qa_bot.reader import DECISION_INPUTS, PASSAGE_INPUTS, ReaderSpec, Reading, decision_row


def test_a_decision_row_takes_each_named_input_from_its_source() -> None:
    reading = Reading(np.array([0.5, 2.0]), np.array([-1.0, 3.0]))
    asked = np.arange(len(QUESTION_FEATURES), dtype=np.float32)
    row = decision_row(7.0, reading, asked, ("span_best", QUESTION_FEATURES[4], "answer_logit"))
    assert row == [3.0, 4.0, 7.0]
    joined = replace(reading, ranker=np.zeros(2), near=np.zeros(2))
    assert decision_row(7.0, joined, asked, DECISION_INPUTS)[:3] == [7.0, 2.0, 3.0]
    with pytest.raises(ValueError):
        decision_row(7.0, reading, asked[:-1], ("reader_best",))  # features out of step
    with pytest.raises(ValueError, match="reads"):
        ReaderSpec("m", 6, 128, 1.0, LinearModel(("cosine",), *np.ones((3, 1)), 0.0))


def test_the_passage_inputs_read_the_passage_the_joined_order_puts_first() -> None:
    reading = Reading(
        np.array([0.5, 2.0, -1.0]),
        np.array([-1.0, 3.0, 0.5]),
        ranker=np.array([3.0, 0.0, 1.0]),
        near=np.array([0.1, 0.2, 0.9]),
    )
    asked = np.zeros(len(QUESTION_FEATURES))

    def inputs(order: tuple[float, float]) -> dict[str, float]:
        row = decision_row(0.0, reading, asked, PASSAGE_INPUTS, order)
        return dict(zip(PASSAGE_INPUTS, row, strict=True))

    ranker_first = inputs((1.0, 0.0))  # joined 3.5, 2.0, 0.0
    assert ranker_first == {
        "reader_first": 0.5,
        "span_first": -1.0,
        "reader_second": 0.5,
        "reader_mean": 0.5,
        "reader_positive": 2.0,
        "ranker_best": 3.0,
        "near_best": 0.9,
    }
    reader_first = inputs((3.0, 0.0))  # joined 4.5, 6.0, -2.0
    assert (reader_first["reader_first"], reader_first["span_first"]) == (2.0, 3.0)
    near_first = inputs((0.0, 10.0))  # joined 4.0, 2.0, 10.0
    assert (near_first["reader_first"], near_first["span_first"]) == (-1.0, 0.5)
    single = Reading(np.array([-2.0]), np.array([1.0]), ranker=np.array([0.3]))
    row = decision_row(0.0, single, asked, PASSAGE_INPUTS, (1.0, 1.0))
    assert row == [-2.0, 1.0, -2.0, -2.0, 0.0, 0.3, 0.0]  # no adapter: cosines read 0
    with pytest.raises(ValueError, match="ranker"):  # a reading the reading stage never joined
        decision_row(0.0, replace(reading, ranker=None), asked, ("reader_first",))
    span_first = LinearModel(("span_first",), *np.ones((3, 1)), 0.0)
    with pytest.raises(ValueError, match="reads"):
        ReaderSpec("m", 6, 128, 1.0, span_first)  # no span head to read it from
