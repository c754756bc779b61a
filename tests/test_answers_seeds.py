"""End to end with the real model on the real seeds: the development questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa_bot.service import QAService
from qa_bot.text import fold

from .conftest import DEV_QUESTIONS

pytestmark = pytest.mark.skipif(not DEV_QUESTIONS.is_file(), reason="shared/eval not present")


def _questions() -> list[dict]:
    return [json.loads(line) for line in DEV_QUESTIONS.read_text().splitlines() if line.strip()]


def test_dev_questions_are_answered_with_verbatim_dated_quotes(seeds_service: QAService) -> None:
    answerable = [q for q in _questions() if not q.get("unanswerable")]
    first_quote_hits = 0
    for q in answerable:
        answer = seeds_service.ask(q["question"])
        assert answer.answered, q["question"]
        first = answer.citations[0]
        first_quote_hits += any(fold(a) in fold(first.quote) for a in q["answers"])
        for c in answer.citations:
            text = (seeds_service.settings.seeds_dir / c.article.path).read_text(encoding="utf-8")
            assert text[c.start : c.end] == c.quote  # verbatim, at the stated place
        assert sum(len(c.quote) for c in answer.citations) <= 2 * 600
    assert first_quote_hits / len(answerable) >= 0.85


def test_unanswerable_dev_questions_are_declined(seeds_service: QAService) -> None:
    for q in _questions():
        if q.get("unanswerable"):
            answer = seeds_service.ask(q["question"])
            assert not answer.answered, q["question"]
            assert answer.citations == ()
            assert "don't cover" in answer.text


@pytest.mark.parametrize(
    "question",
    [
        "Who won the 2018 World Cup?",
        "What is the capital of Australia?",
        "Как приготовить борщ?",
        "<b>bold</b> [link](http://example.com)",
    ],
)
def test_out_of_corpus_questions_are_declined(seeds_service: QAService, question: str) -> None:
    assert not seeds_service.ask(question).answered


def test_question_naming_an_outlet_is_filtered(seeds_service: QAService) -> None:
    answer = seeds_service.ask("According to TASS, what did Ryabkov say about the agreement?")
    assert answer.answered
    assert {c.article.outlet for c in answer.citations} == {"TASS"}
    assert any("TASS" in note for note in answer.notes)


@pytest.mark.parametrize(
    "question",
    [
        "according to reuters how many people died in the convoy attack",
        "What did AFP say about the airstrike on the Syrian troops?",
    ],
)
def test_an_outlet_no_article_is_from_is_searched_alone_and_declined(
    seeds_service: QAService, question: str
) -> None:
    """The seeds credit photos to Reuters and AFP, so the words are in the index; none of
    the articles is from either, so neither can say what they reported."""
    answer = seeds_service.ask(question)
    assert not answer.answered
    assert any("Searching only articles from" in note for note in answer.notes)
    # The credit itself still answers a question about the picture.
    photo = seeds_service.ask("Where did Kerry and Lavrov lead the meeting in the AFP photo?")
    assert photo.answered and "Munich" in photo.citations[0].quote


#: On-topic questions the seeds do not answer (written for the abstention check, see
#: benchmarks/README.md): the ones naming someone or something no article mentions.
ON_TOPIC_UNANSWERABLE = Path(__file__).with_name("on_topic_unanswerable.jsonl")


def test_questions_about_names_the_articles_never_mention_are_declined(
    seeds_service: QAService,
) -> None:
    questions = [json.loads(line) for line in ON_TOPIC_UNANSWERABLE.read_text().splitlines()]
    declined = {q["question"] for q in questions if not seeds_service.ask(q["question"]).answered}
    for name in ("Putin", "China", "Ukraine", "NATO", "Hezbollah", "North Korea"):
        assert any(name in q for q in declined), name
    assert len(declined) >= 9
