"""Judging answers against gold: pure code, no model (one run through a service embeds with
the counting fake)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_bot.evaluation import (
    EvalDataError,
    EvalQuestion,
    Outcome,
    Quote,
    contains_answer,
    doc_matches,
    evaluate,
    judge,
    load_questions,
    summarize,
)
from qa_bot.service import QAService

from .conftest import CountingEmbedder, make_settings


def test_reads_both_question_formats(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    rows = [
        {"id": "d01", "question": "Who?", "answers": ["Lavrov"], "docs": ["000", "004"]},
        {
            "id": "du1",
            "question": "Boiling point?",
            "answers": [],
            "docs": [],
            "unanswerable": True,
        },
        {
            "id": "x1",
            "question": "How many?",
            "answers": ["308"],
            "doc": "000_Super_Bowl_50.txt",
            "context_start": 15,
            "context_end": 1181,
            "answer_starts": [49],
        },
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n", encoding="utf-8")
    d01, du1, x1 = load_questions(path)
    assert d01 == EvalQuestion("d01", "Who?", ("Lavrov",), ("000", "004"))
    assert du1.unanswerable and du1.answers == ()
    assert x1.docs == ("000_Super_Bowl_50.txt",) and x1.gold_span == (15, 1181)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("", "holds no questions"),
        ("{not json", "q.jsonl:1: not a question"),
        ('{"id": "a", "question": "Why?", "answers": []}', "needs at least one answer"),
        ('{"id": "a", "question": "  ", "answers": ["x"]}', "empty question"),
    ],
)
def test_bad_question_files_say_where(tmp_path: Path, content: str, message: str) -> None:
    path = tmp_path / "q.jsonl"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(EvalDataError, match=message):
        load_questions(path)


def test_missing_question_file(tmp_path: Path) -> None:
    with pytest.raises(EvalDataError, match="cannot read"):
        load_questions(tmp_path / "nope.jsonl")


@pytest.mark.parametrize(
    ("gold", "path", "expected"),
    [
        ("000", "000_cb0a8d303033b8e8.txt", True),
        ("000", "sub/000_cb0a8d303033b8e8.txt", True),
        ("000", "0001_other.txt", False),
        ("000", "reuters_00001.txt", False),
        ("000_Super_Bowl_50.txt", "xquad/000_Super_Bowl_50.txt", True),
        ("000_Super_Bowl_50.txt", "xquad/002_Normans.txt", False),
    ],
)
def test_gold_documents_by_name_or_prefix(gold: str, path: str, expected: bool) -> None:
    assert doc_matches(gold, path) is expected


@pytest.mark.parametrize(
    ("question_id", "set_id"),
    [("c01", "c"), ("c114", "c"), ("7-12", "7"), ("a-03", "a"), ("p1-03", "p1"), ("p12-80", "p12")],
)
def test_a_question_knows_its_set_from_its_id(question_id: str, set_id: str) -> None:
    # Sets of one letter or digit ran out; a longer set id must not read as its first letter.
    assert EvalQuestion(question_id, "q?").set_id == set_id


def test_answer_check_folds_but_is_not_looser() -> None:
    assert contains_answer("It left “thirty\u00a0minutes” later", ["Thirty minutes"])
    assert contains_answer("Russia’s envoy", ["Russia's"])
    assert not contains_answer("thirty-minute wait", ["thirty minutes"])
    assert not contains_answer("anything", [""])


def _outcome(
    q: EvalQuestion,
    answered: bool,
    ranked: tuple[str, ...],
    *quotes: str,
    seconds: float = 0.01,
    start: int = 0,
) -> Outcome:
    cites = tuple(
        Quote(ranked[0] if ranked else "?", text, start, start + len(text), True) for text in quotes
    )
    return Outcome(q, answered, ranked, cites, seconds, seconds / 2)


def test_judge_and_summarize() -> None:
    a = EvalQuestion("a", "Q a", ("blue",), ("001",), gold_span=(100, 200))
    b = EvalQuestion("b", "Q b", ("red",), ("002",))
    c = EvalQuestion("c", "Q c", ("green",), ("003",))
    u = EvalQuestion("u", "Q u", unanswerable=True)
    v = EvalQuestion("v", "Q v", unanswerable=True)
    judgements = [
        judge(_outcome(a, True, ("001_x.txt", "009_y.txt"), "the sky is blue", start=150)),
        judge(_outcome(b, True, ("009_y.txt", "002_z.txt"), "no colour", "it was red")),
        judge(_outcome(c, False, ("009_y.txt",))),
        judge(_outcome(u, False, ("009_y.txt",))),
        judge(_outcome(v, True, ("009_y.txt",), "weak quote")),
    ]
    assert [j.failure for j in judgements] == [
        None,
        "answer in a later quote",
        "declined an answerable question",
        None,
        "answered an unanswerable question",
    ]
    assert judgements[0].first_in_gold_span is True
    assert judgements[1].gold_rank == 2
    report = summarize(judgements)
    assert (report.answerable, report.unanswerable) == (3, 2)
    assert report.hit_at_1 == pytest.approx(1 / 3)
    assert report.hit_at_3 == pytest.approx(2 / 3)
    assert report.mrr_at_10 == pytest.approx((1 + 0.5 + 0) / 3)
    assert report.first_quote_answer_rate == pytest.approx(1 / 3)
    assert report.answered_first_quote_rate == pytest.approx(1 / 2)
    assert report.answered_quote_answer_rate == pytest.approx(1.0)
    assert report.answered_rate == pytest.approx(2 / 3)
    assert report.abstention_precision == pytest.approx(1 / 2)
    assert report.abstention_recall == pytest.approx(1 / 2)
    assert report.first_quote_in_gold_paragraph == pytest.approx(1.0)
    assert report.faithfulness == 1.0
    assert report.latency_ratio == pytest.approx(2.0)
    assert [f["id"] for f in report.failures] == ["b", "c", "v"]
    assert json.dumps(report.to_json())


def test_latency_is_reported_as_median_as_well_as_mean() -> None:
    """The latency goal is a median: one slow question must not move it as it moves the mean."""
    q = EvalQuestion("a", "Q", ("blue",), ("001",))
    times = (0.010, 0.020, 0.900)
    report = summarize([judge(_outcome(q, True, ("001_x.txt",), "blue", seconds=t)) for t in times])
    assert report.latency_p50_ms == pytest.approx(20.0)
    assert report.latency_mean_ms == pytest.approx(310.0)
    assert report.latency_p95_ms == pytest.approx(900.0)


def test_a_quote_that_is_not_verbatim_is_a_failure() -> None:
    q = EvalQuestion("a", "Q", ("blue",), ("001",))
    bad = Outcome(q, True, ("001_x.txt",), (Quote("001_x.txt", "blue", 0, 4, False),), 0.1)
    judgement = judge(bad)
    assert judgement.failure == "quote not verbatim"
    assert summarize([judgement]).faithfulness == 0.0


def test_first_quote_outside_the_gold_paragraph() -> None:
    q = EvalQuestion("a", "Q", ("blue",), ("001",), gold_span=(100, 200))
    outcome = Outcome(q, True, ("001_x.txt",), (Quote("001_x.txt", "blue", 300, 304, True),), 0.1)
    assert judge(outcome).first_in_gold_span is False


def test_scores_per_kind_of_question(tmp_path: Path) -> None:
    path = tmp_path / "q.jsonl"
    rows = [
        {"id": "1", "question": "q1", "answers": ["blue"], "docs": ["001"], "class": "typo"},
        {"id": "2", "question": "q2", "answers": ["red"], "docs": ["001"], "class": "typo"},
        {"id": "3", "question": "q3", "answers": [], "unanswerable": True, "style": "vague"},
        {"id": "4", "question": "q4", "answers": ["green"], "docs": ["001"]},
    ]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    one, two, three, four = load_questions(path)
    assert (one.kind, three.kind, four.kind) == ("typo", "vague", None)
    report = summarize(
        [
            judge(_outcome(one, True, ("001_x.txt",), "it is blue")),
            judge(_outcome(two, False, ("001_x.txt",))),
            judge(_outcome(three, True, ("001_x.txt",), "something")),
            judge(_outcome(four, True, ("001_x.txt",), "green")),
        ]
    )
    assert report.by_class == {
        "typo": {
            "questions": 2,
            "first_quote_answer_rate": 0.5,
            "answered_rate": 0.5,
            "abstention_recall": None,
            "passed_rate": 0.5,
        },
        "vague": {
            "questions": 1,
            "first_quote_answer_rate": None,
            "answered_rate": None,
            "abstention_recall": 0.0,
            "passed_rate": 0.0,
        },
    }
    assert report.to_json()["by_class"]["typo"]["questions"] == 2


def test_an_untimed_run_embeds_each_question_once(corpus: Path, tmp_path: Path) -> None:
    """The floors check answers only: without ``timed`` no baseline is measured, so each
    question is embedded once (to answer it), not twice, and the report has no baseline."""
    embedder = CountingEmbedder()
    service = QAService(make_settings(tmp_path, corpus), embedder=embedder)
    service.index()
    question = EvalQuestion("1", "Where did the drone take off from?", ("Incirlik",), ("alpha",))
    embedder.calls.clear()
    untimed = evaluate(service, [question], warmup=False, timed=False)
    assert embedder.embedded == [question.question]
    assert untimed.baseline_mean_ms is None and untimed.questions == 1
    embedder.calls.clear()
    timed = evaluate(service, [question], warmup=False)
    assert embedder.embedded == [question.question] * 2
    assert timed.baseline_mean_ms is not None
