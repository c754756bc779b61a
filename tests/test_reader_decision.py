"""The reader's decision inputs: what serving and the training scripts both read of a reading,
taken from one definition (``reader.decision_row``) for each named input; and the topic model
that reads the same inputs."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa_bot.features import QUESTION_FEATURES
from qa_bot.ranker import LinearModel
from qa_bot.reader import DECISION_INPUTS, PASSAGE_INPUTS, ReaderSpec, Reading, decision_row

from .test_reader import SteeredReader, _learned_service, _steer


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


def _model(names: tuple[str, ...], coef: list[float], bias: float = 0.0) -> LinearModel:
    size = len(names)
    return LinearModel(names, np.zeros(size), np.ones(size), np.array(coef), bias)


def test_a_topic_model_round_trips_and_reads_only_the_decision_inputs() -> None:
    answer = _model(("reader_best",), [1.0])
    topic = _model(("best_dense", "reader_best"), [3.0, 0.5], -1.0)
    spec = ReaderSpec("m", 6, 128, 1.0, answer, topic=topic)
    again = ReaderSpec.from_json(spec.to_json())
    assert again.topic is not None and again.topic.names == topic.names
    np.testing.assert_array_equal(again.topic.coef, topic.coef)
    assert "topic" not in replace(spec, topic=None).to_json()  # older readers: no topic model
    assert ReaderSpec.from_json(replace(spec, topic=None).to_json()).topic is None
    with pytest.raises(ValueError, match="reads"):
        replace(spec, topic=_model(("cosine",), [1.0]))
    with pytest.raises(ValueError, match="reads"):  # no span head to read it from
        replace(spec, topic=_model(("span_first",), [1.0]))
    reading = Reading(np.array([2.0]), np.zeros(1))
    asked = np.zeros(len(QUESTION_FEATURES))
    asked[QUESTION_FEATURES.index("best_dense")] = 0.5
    assert spec.topic_logit(0.0, reading, asked) == pytest.approx(3.0 * 0.5 + 0.5 * 2.0 - 1.0)
    assert replace(spec, topic=None).topic_logit(0.0, reading, asked) is None


def test_the_topic_model_declines_whatever_the_decision_says(tmp_path: Path) -> None:
    """A reader whose topic model finds the question off the articles' subject declines it,
    and says why; at ``reader_topic_threshold`` 0 the decision alone answers."""
    service = _learned_service(tmp_path)
    answer = LinearModel(("reader_best",), np.zeros(1), np.ones(1), np.array([1.0]), 0.0)

    def topic(weight: float) -> LinearModel:
        return LinearModel(("reader_best",), np.zeros(1), np.ones(1), np.array([weight]), 0.0)

    question = "what was near the convoy"
    for weight, answerable in ((1.0, True), (-1.0, False)):
        spec = ReaderSpec("m", 6, 128, 1.0, answer, topic=topic(weight))
        _steer(service, SteeredReader("Incirlik", spec))
        got = service.search(question)
        assert got is not None and got.answerable is answerable
        assert ("topic model" in got.reason) is (not answerable)
    retrieval = service.settings.retrieval.model_copy(update={"reader_topic_threshold": 0.0})
    service.__dict__["settings"] = service.settings.model_copy(update={"retrieval": retrieval})
    off = service.search(question)
    assert off is not None and off.answerable
