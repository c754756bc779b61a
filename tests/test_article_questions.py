"""Questions about the article itself: the learned reading, and the page's own answer."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qa_bot.article_answer import NO_DATE, NO_OUTLET
from qa_bot.article_asked import ASKED_PARTS, ArticleAskedModel, question_features
from qa_bot.service import QAService
from qa_bot.settings import PACKAGED_ABOUT_MODEL, RetrievalSettings

from .conftest import CountingEmbedder, make_settings, write_article


@pytest.fixture(scope="module")
def packaged() -> ArticleAskedModel:
    return ArticleAskedModel.load(PACKAGED_ABOUT_MODEL)


@pytest.mark.parametrize(
    ("question", "part"),
    [
        ("When was the RT article about the US ultimatum over Syria published?", "date"),
        ("On what date did the piece on Lavrov's interview come out?", "date"),
        ("what day is the tass ryabkov story from", "date"),
        ("Which news agency reported Ryabkov's remarks to reporters?", "outlet"),
        ("which wire service carried the story about the convoy", "outlet"),
        ("What is the headline of the article quoting Samantha Power?", "headline"),
        ("whats the title of the piece on the zone of silence", "headline"),
        ("When was the convoy attacked?", None),
        ("Which organisation's convoy was attacked near Aleppo?", None),
        ("What did Lavrov say about the US ultimatum?", None),
        ("How many civilians died in the attack on the convoy?", None),
    ],
)
def test_the_packaged_reading_tells_questions_about_the_article_from_its_story(
    packaged: ArticleAskedModel, question: str, part: str | None
) -> None:
    assert packaged.asked(question, RetrievalSettings().about_threshold) == part


def test_a_typo_keeps_most_of_a_words_pieces() -> None:
    typed = set(question_features("when was it publishd"))
    right = set(question_features("when was it published"))
    assert "w:publishd" in typed and "w:publishd" not in right
    pieces = {f for f in right if f.startswith("c:") and ("publ" in f or "blis" in f)}
    assert pieces and pieces <= typed


def test_a_model_file_is_read_by_its_parts_and_its_threshold(tmp_path: Path) -> None:
    path = tmp_path / "about.json"
    weights = {"w:headline": [0.0, 0.0, 0.0, 3.0], "w:dated": [0.0, 1.5, 0.0, 0.0]}
    spec = {"parts": list(ASKED_PARTS), "bias": [1.0, 0.0, 0.0, 0.0], "weights": weights}
    path.write_text(json.dumps(spec), encoding="utf-8")
    model = ArticleAskedModel.load(path)
    assert model.asked("what was the headline", 0.5) == "headline"
    assert np.isclose(model.probabilities("what was the headline").sum(), 1.0)
    # "dated" outweighs the bias towards "none", but not to half the probability.
    assert model.probabilities("was it dated")[1] == pytest.approx(0.4871, abs=1e-4)
    assert model.asked("was it dated", 0.5) is None
    assert model.asked("was it dated", 0.4) == "date"
    assert model.asked("who attacked the convoy", 0.0) is None


def _service(tmp_path: Path, **overrides: object) -> QAService:
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "a.txt",
        "US seeks to shield Nusra Front from airstrikes",
        "Lavrov said the United States tried to draw the borders of the zone of silence. "
        "He spoke in an interview with Sputnik.\n\nPress TV’s website can also be accessed at "
        "the following alternate addresses: www.presstv.ir",
    )
    write_article(
        seeds,
        "b.txt",
        "Russia accuses the US of supporting terror groups in Syria",
        "Samantha Power called the Russian strikes on Aleppo barbarism at the Security Council.",
    )
    service = QAService(make_settings(tmp_path, seeds, **overrides), embedder=CountingEmbedder())
    service.index()
    return service


def test_the_page_answers_questions_about_itself(tmp_path: Path) -> None:
    service = _service(tmp_path)
    text = service.snapshot().article_text
    outlet = service.ask("Which broadcaster published the article about the zone of silence?")
    first = outlet.citations[0]
    assert outlet.answered and first.article.id == "a"
    assert first.quote.startswith("Press TV’s website can also be accessed")
    assert text("a")[first.start : first.end] == first.quote
    headline = service.ask("What is the headline of the article quoting Samantha Power?")
    assert (
        headline.citations[0].quote == "Russia accuses the US of supporting terror groups in Syria"
    )
    # A page that names no outlet says so rather than quoting a name from its story.
    unnamed = service.ask("Which outlet published the report on Samantha Power's barbarism remark?")
    assert unnamed.answered and unnamed.text.startswith(NO_OUTLET)
    assert NO_OUTLET in unnamed.notes  # what the fronts show beside the quotes
    assert unnamed.citations[0].article.id == "b"
    # Without the reading, the same question is one about the story.
    off = _service(tmp_path / "off", retrieval={"about_model": "none"})
    plain = off.ask("Which outlet published the report on Samantha Power's barbarism remark?")
    assert NO_OUTLET not in plain.text


def test_an_outlet_alone_names_the_article_a_date_is_asked_of(tmp_path: Path) -> None:
    service = _service(tmp_path)
    answer = service.ask("When was the Press TV article published?")
    assert answer.answered and answer.text.startswith(NO_DATE) and NO_DATE in answer.notes
    assert answer.citations[0].quote == "US seeks to shield Nusra Front from airstrikes"
    # Typed as people type it: "whats" is "what", no word of a story to search for.
    typed = service.ask("whats the date of the press tv article")
    assert typed.answered and typed.text.startswith(NO_DATE)
    # No outlet, no story: which article is meant cannot be told.
    assert not service.ask("When was the article published?").answered


@pytest.mark.model
def test_a_question_about_an_article_the_seeds_hold_is_decided_by_the_fitted_rule(
    seeds_service: QAService,
) -> None:
    # Few of its words are in any passage and its cosine is low: the hand-set rule (1.35, 2)
    # declined it; the rule fitted on questions about articles answers with the dateline.
    question = "What is the dateline of the TASS report on Ryabkov's remarks?"
    answer, found = seeds_service.explain(question)
    assert found.query is not None and found.query.about == "date"
    assert answer.answered and "MOSCOW, September 22" in answer.citations[0].quote
    hand = seeds_service.settings.retrieval.model_copy(
        update={"about_min_evidence": 1.35, "about_evidence_dense_weight": 2.0}
    )
    strict = QAService(
        seeds_service.settings.model_copy(update={"retrieval": hand}),
        embedder=seeds_service.embedder,
    )
    declined, why = strict.explain(question)
    assert not declined.answered and why.reason.endswith("(needs 1.35)")
