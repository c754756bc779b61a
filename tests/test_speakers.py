"""Whose words a quote holds: the speaker named in another sentence, quoted first when the
question asks who said them, or on its own when a chat asks "who said that?" after a quote."""

from __future__ import annotations

import pytest

from qa_bot.answer import compose
from qa_bot.models import Answer, Hit
from qa_bot.passages import NO_SPEAKER, speaker_answer
from qa_bot.retrieval import Retrieval
from qa_bot.settings import RetrievalSettings
from qa_bot.speakers import asks_speaker, asks_who_said_it, named_speaker, speaker_of
from qa_bot.text import sentence_spans, terms

from .conftest import make_meta, windows

TEXT = (
    "Talks on Syria\n\n"
    "Russian Deputy Foreign Minister Sergey Ryabkov told reporters on Thursday that the talks "
    "would go on.\n\n"
    "The convoy was hit near Aleppo on Monday evening.\n\n"
    '"The agreement has too many foes," he said.\n\n'
    "Twenty people were killed in the strike near the city."
)


@pytest.mark.parametrize(
    ("sentence", "name"),
    [
        ("Russian Deputy Foreign Minister Sergey Ryabkov told reporters.", "Sergey Ryabkov"),
        ("Ryabkov pointed out that Russia was not walking out.", "Ryabkov"),
        ("Zakharova, the ministry's spokeswoman, said it was cynical.", "Zakharova"),
        ('"It is cynical," said Maria Zakharova.', "Maria Zakharova"),
        ("According to Lavrov, the deal holds.", "Lavrov"),
        ("The State Department said on Monday.", "State Department"),
        ("It said the convoy was hit.", None),
        ('"We deny it," the top diplomat said.', None),
        ("He said so on Monday.", None),
        ("The convoy was hit near Aleppo.", None),
    ],
)
def test_a_sentence_names_its_speaker_or_does_not(sentence: str, name: str | None) -> None:
    found = named_speaker(sentence)
    assert found == name or (name is not None and found is not None and found.endswith(name))


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("who said the agreement has too many foes", True),
        ("which russian official said the deal has foes", True),
        ("who was it that said we shouldn't rush", True),
        ("who came out with the line about the horse", True),
        ("Who called Russia's actions barbarism?", True),
        ("Who is Syria's president?", False),
        ("who initiated the ceasefire", False),
        ("Through whom did Washington apologise?", False),
        ("what did lavrov say about the convoy", False),
    ],
)
def test_a_question_asks_whose_words_they_are(question: str, asks: bool) -> None:
    assert asks_speaker(question) is asks


def _spans(text: str) -> list[tuple[int, int]]:
    return list(sentence_spans(text))


def _at(text: str, spans: list[tuple[int, int]], fragment: str) -> int:
    return next(i for i, (a, b) in enumerate(spans) if fragment in text[a:b])


def test_the_speaker_is_named_before_the_paragraph_of_he_said() -> None:
    spans = _spans(TEXT)
    found = speaker_of(TEXT, spans, _at(TEXT, spans, "too many foes"), 8, set())
    assert found is not None and "Sergey Ryabkov told" in TEXT[slice(*found)]


def test_the_lookback_bounds_how_far_back_the_speaker_is_looked_for() -> None:
    spans = _spans(TEXT)
    words = _at(TEXT, spans, "too many foes")
    assert speaker_of(TEXT, spans, words, 1, set()) is None  # the convoy sentence only
    assert speaker_of(TEXT, spans, words, 2, set()) is not None


def test_a_speaker_named_later_in_the_same_paragraph_comes_first() -> None:
    text = (
        "Lavrov said the ceasefire held.\n\n"
        '"It is barbarism." She added, "It must stop," Samantha Power said.'
    )
    spans = _spans(text)
    found = speaker_of(text, spans, _at(text, spans, "barbarism"), 8, set())
    assert found is not None and "Samantha Power said" in text[slice(*found)]


def test_a_paragraph_that_reports_no_ones_words_has_no_speaker() -> None:
    spans = _spans(TEXT)
    assert speaker_of(TEXT, spans, _at(TEXT, spans, "convoy was hit"), 8, set()) is None


def test_a_speaker_the_question_names_is_passed_over() -> None:
    spans = _spans(TEXT)
    asked = set(terms("did sergey ryabkov say the agreement has foes"))
    assert speaker_of(TEXT, spans, _at(TEXT, spans, "too many foes"), 8, asked) is None


def _answer(question: str, **settings: object) -> list[str]:
    chunks = windows(TEXT)
    best = next(i for i, c in enumerate(chunks) if "too many foes" in c.text)
    at = TEXT.index("The agreement")
    hit = Hit(best, chunks[best], make_meta(), 1.0, 1.0, 1.0, answer_at=at)
    retrieval = Retrieval(
        hits=[hit],
        coverage=1.0,
        answerable=True,
        context=dict(enumerate(chunks)),
        weights={t: 1.0 for t in terms(question)},
    )
    options = RetrievalSettings(max_quote_chars=60, **settings)  # type: ignore[arg-type]
    answer = compose(question, retrieval, lambda _: TEXT, options)
    for citation in answer.citations:  # verbatim, and where the citation says
        assert TEXT[citation.start : citation.end] == citation.quote
    return [c.quote for c in answer.citations]


def test_who_said_it_quotes_the_sentence_naming_the_speaker_first() -> None:
    quotes = _answer("who said the agreement has too many foes")
    assert "Sergey Ryabkov" in quotes[0]
    assert "too many foes" in quotes[1]


@pytest.mark.parametrize(
    ("question", "settings"),
    [
        ("who said the agreement has too many foes", {"speaker_lookback": 0}),
        ("what did Ryabkov say about the agreement and its foes", {}),
        ("does the agreement have too many foes", {}),
    ],
)
def test_other_questions_keep_the_words_first(question: str, settings: dict) -> None:
    quotes = _answer(question, **settings)
    assert "too many foes" in quotes[0]
    assert not any("Sergey Ryabkov" in q for q in quotes)


@pytest.mark.parametrize(
    ("question", "asks"),
    [
        ("who said that?", True),
        ("and who said so", True),
        ("Who said those words?", True),
        ("whose words are those?", True),
        ("who was it that said that", True),
        ("who said the agreement has too many foes", False),
        ("who said that the convoy was hit?", False),
        ("who is that", False),
        ("who's claiming that", True),
        ("Who made that statement?", True),
        ("Who is quoted as reporting that?", True),
        ("who made it", False),
        ("who made that decision", False),
    ],
)
def test_a_question_asks_only_whose_words_were_just_quoted(question: str, asks: bool) -> None:
    assert asks_who_said_it(question) is asks


def _said(fragment: str, lookback: int = 8) -> Answer:
    start = TEXT.index(fragment)
    quoted = ("a", start, start + len(fragment))
    return speaker_answer("who said that?", make_meta(), TEXT, quoted, lookback)


def test_who_said_that_quotes_the_sentence_naming_the_speaker() -> None:
    answer = _said('"The agreement has too many foes," he said.')
    assert answer.answered and len(answer.citations) == 1
    citation = answer.citations[0]
    assert "Sergey Ryabkov told" in citation.quote
    assert TEXT[citation.start : citation.end] == citation.quote
    assert answer.text == f"“{' '.join(citation.quote.split())}” [1]"


def test_a_quote_that_names_its_speaker_is_answered_by_that_sentence_alone() -> None:
    answer = _said("Russian Deputy Foreign Minister Sergey Ryabkov told reporters")
    assert answer.answered and answer.citations[0].quote.startswith("Russian Deputy")


def test_who_said_that_is_declined_plainly_when_the_article_does_not_say() -> None:
    for answer in (_said("The convoy was hit near Aleppo"), _said("too many foes", lookback=1)):
        assert not answer.answered and not answer.citations
        assert answer.text == NO_SPEAKER
