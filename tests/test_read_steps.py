"""Reading in two steps: the reader reads a few passages first, and the rest only when the
decision over those is not settled (``qa_bot.read_stage``, ``training/fit_settled.py``)."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

import fit_settled

from qa_bot.decision import logit
from qa_bot.read_stage import Read, merged, settled
from qa_bot.reader import ReaderSpec, Reading
from qa_bot.retrieval import Rankers
from qa_bot.service import QAService
from qa_bot.settings import RetrievalSettings

from .test_query_adapter import QUESTION
from .test_query_adapter import _service as adapter_service
from .test_reader import SteeredReader, _answer


def _reading(*reader: float) -> Reading:
    n = len(reader)
    return Reading(np.array(reader), np.zeros(n), ranker=np.zeros(n), near=np.zeros(n))


def _read(topic: float | None, answer: float, *, tuned: bool = False) -> Read:
    return Read([], _reading(6.0, 0.0), topic, answer, tuned)


def test_only_a_decision_far_from_both_thresholds_is_settled() -> None:
    s = RetrievalSettings(reader_settled_margin=1.0)
    topic, answer = logit(s.reader_topic_threshold), logit(s.reader_answer_threshold)
    assert settled(_read(topic - 1.5, answer + 0.0), s)  # the topic model declines
    assert not settled(_read(topic - 0.5, answer + 5.0), s)
    assert not settled(_read(topic + 0.5, answer + 5.0), s)
    assert settled(_read(topic + 5.0, answer + 1.5), s)
    assert not settled(_read(topic + 5.0, answer + 0.5), s)
    assert not settled(_read(topic + 5.0, answer - 0.5), s)
    assert settled(_read(topic + 5.0, answer - 1.5), s)  # declined
    assert settled(_read(None, answer + 1.5), s)  # a reader without topic model
    assert not settled(_read(None, answer - 0.5), s)
    # The tuned articles' decision answers at its own threshold (0.15 below 0.2).
    tuned = logit(s.reader_tuned_threshold) + 1.1
    assert settled(_read(None, tuned, tuned=True), s)
    assert not settled(_read(None, tuned, tuned=False), s)
    # Thresholds at 0 or 1 always or never hold: any decision is as far from them as can be.
    edge = RetrievalSettings(reader_topic_threshold=0.0, reader_answer_threshold=1.0)
    assert settled(_read(-30.0, 30.0, tuned=False), edge)


def test_two_readings_of_parts_merge_with_each_passage_at_its_row() -> None:
    first = Reading(np.array([1.0, 3.0]), np.array([0.1, 0.3]), np.array([5, 7]), np.ones((2, 4)))
    more = Reading(np.array([2.0]), np.array([0.2]), np.array([6]), np.zeros((1, 4)))
    whole = merged(first, [0, 2], more, [1])
    assert whole.logits.tolist() == [1.0, 2.0, 3.0]
    assert whole.spans.tolist() == [0.1, 0.2, 0.3]
    assert whole.starts is not None and whole.starts.tolist() == [5, 6, 7]
    assert whole.fits is not None and whole.fits.sum(axis=1).tolist() == [4.0, 0.0, 4.0]
    plain = merged(Reading(np.ones(1), np.zeros(1)), [1], Reading(np.zeros(1), np.zeros(1)), [0])
    assert plain.logits.tolist() == [0.0, 1.0] and plain.starts is None and plain.fits is None


def _service(tmp_path: Path, **retrieval: object) -> QAService:
    """The learned stages over four passages, in the ranker's order until a reader is put in;
    it reads three, the first of them first unless ``retrieval`` says otherwise."""
    steps = {"reader": None, "reader_first_depth": 1, **retrieval}
    return adapter_service(tmp_path, 3, 0, **steps)


def _steered(service: QAService, word: str, bias: float) -> SteeredReader:
    learned = service.rankers.learned
    assert learned is not None
    reader = SteeredReader(word, ReaderSpec("m", 6, 128, 1.0, _answer(1.0, bias)))
    service.__dict__["rankers"] = Rankers(learned, None, reader)  # type: ignore[arg-type]
    return reader


@pytest.mark.parametrize(("word", "bias"), [("drone", 20.0), ("nothing", -20.0)])
def test_a_settled_question_reads_only_the_first_passages(
    tmp_path: Path, word: str, bias: float
) -> None:
    service = _service(tmp_path)
    top = service.search(QUESTION)
    assert top is not None and len(top.hits) >= 3
    reader = _steered(service, word if word in top.hits[0].chunk.text else "nothing", bias)
    got = service.search(QUESTION)
    assert got is not None and got.answerable is (bias > 0)
    assert reader.passages == [top.hits[0].chunk.text]


def test_an_unsettled_question_reads_the_rest_once_and_ends_as_reading_all_at_once(
    tmp_path: Path,
) -> None:
    """Never settled (a margin no logit clears), the reader reads the first passage, then the
    two others, none twice; the order and the decision are those of reading the three at once."""
    service = _service(tmp_path, reader_settled_margin=50.0)
    reader = _steered(service, "Incirlik", 0.0)
    steps = service.search(QUESTION)
    once = _service(tmp_path / "once", reader_first_depth=3)
    all_at_once = _steered(once, "Incirlik", 0.0)
    whole = once.search(QUESTION)
    assert steps is not None and whole is not None
    assert len(reader.passages) == 3 and sorted(reader.passages) == sorted(all_at_once.passages)
    assert [h.chunk.text for h in steps.hits] == [h.chunk.text for h in whole.hits]
    assert "Incirlik" in steps.hits[0].chunk.text
    assert steps.answerable is whole.answerable
    assert steps.reason == whole.reason  # the decision's probability, as said
    assert [h.score for h in steps.hits] == pytest.approx([h.score for h in whole.hits])


def _outcome(answer: float, *, answered: bool, right: bool) -> fit_settled.Outcome:
    return fit_settled.Outcome(Read([], _reading(6.0, 0.0), None, answer, False), answered, right)


def test_the_script_settles_the_most_questions_that_keep_the_answers_of_reading_all() -> None:
    """Settling a question whose answer logit is 0.8 from the threshold loses its first quote,
    so the margin chosen must leave it unsettled; those further out settle, and a question the
    reader did not read (None) counts as settled, having read nothing."""
    s = RetrievalSettings()
    at = logit(s.reader_answer_threshold)
    sure = _outcome(at + 9.0, answered=True, right=True)
    near = (
        True,
        _outcome(at + 0.8, answered=True, right=False),
        _outcome(at + 3.0, answered=True, right=True),
    )
    declined = _outcome(at - 9.0, answered=False, right=False)
    unread = fit_settled.Outcome(None, answered=True, right=True)
    pairs = [(True, sure, sure)] * 5 + [near] * 2 + [(False, declined, declined)] * 4
    pairs += [(True, unread, unread)]
    result = fit_settled.choose(pairs, 0.0, 5)
    assert result["all"]["first_quote"] == 1.0
    assert result["first_only"]["first_quote"] == 0.75
    chosen = result["chosen"]
    assert chosen["first_quote"] == 1.0 and chosen["declined"] == 1.0
    assert chosen["settled"] == pytest.approx(10 / 12, abs=1e-4)
    assert chosen["margin"] >= 0.8
    # two passages read first (``_reading``), five when not settled, none when unread
    assert chosen["reads"] == pytest.approx((9 * 2 + 2 * 5 + 0) / 12, abs=1e-3)
    assert result["all"]["reads"] == pytest.approx(11 * 5 / 12, abs=1e-3)


def test_the_script_keeps_the_split_of_first_reads_that_reads_fewest() -> None:
    """Reading fewer passages is what the split buys; a tie goes to more first quotes."""
    assert fit_settled.split_of("2+1") == (2, 1) and fit_settled.split_of("3") == (3, 0)

    def tried(name: str, reads: float, first: float) -> dict:
        return {"first_reads": name, "chosen": {"reads": reads, "first_quote": first}}

    results = [tried("2+1", 3.5, 0.92), tried("1+1", 2.9, 0.91), tried("1+2", 2.9, 0.93)]
    assert fit_settled.fewest_reads(results)["first_reads"] == "1+2"


def test_writers_are_named_one_by_one_or_by_range() -> None:
    assert fit_settled.writers("p158-p160,h7") == {"p158", "p159", "p160", "h7"}
