"""Ranking, fusion, coverage, abstention and quote selection.

Pure functions are checked without any model; the hybrid search runs on tiny corpora with the
counting fake embedder, and the paraphrase test uses the real model loaded once per session.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from qa_bot.answer import compose, first_quote, pivot_weights
from qa_bot.answer_types import definition, expected_answer
from qa_bot.corpus import KNOWN_OUTLETS
from qa_bot.features import first_sentence_terms, share
from qa_bot.filters import (
    SearchFilters,
    date_bound,
    outlet_in_question,
    source_outlet,
    without_outlet,
)
from qa_bot.models import ArticleMeta, Chunk
from qa_bot.query import analyse, speaker
from qa_bot.reading_notes import correction_note
from qa_bot.retrieval import (
    Hit,
    Retrieval,
    _definition_bonus,
    fuse,
    near_duplicate,
    retrieve,
)
from qa_bot.service import QAService
from qa_bot.settings import ChunkingSettings, RetrievalSettings
from qa_bot.text import terms

from .conftest import CountingEmbedder, make_meta, make_settings, windows, write_article

#: The served discount of the speaker's name when choosing the sentence to quote.
SPEAKER_NAME_WEIGHT = RetrievalSettings().speaker_name_weight


# --- fusion ----------------------------------------------------------------------------------


def _brute_rrf(dense: np.ndarray, lexical: np.ndarray, k: int, w: float) -> np.ndarray:
    out = np.zeros(len(dense))
    for i in range(len(dense)):
        d_rank = 1 + sum(
            1 for j in range(len(dense)) if dense[j] > dense[i] or (dense[j] == dense[i] and j < i)
        )
        l_rank = 1 + sum(
            1
            for j in range(len(lexical))
            if lexical[j] > lexical[i] or (lexical[j] == lexical[i] and j < i)
        )
        out[i] = w / (k + d_rank) + ((1 - w) / (k + l_rank) if lexical[i] > 0 else 0.0)
    return out


@pytest.mark.parametrize("seed", range(5))
def test_fusion_matches_a_brute_force_reference(seed: int) -> None:
    rng = np.random.default_rng(seed)
    dense = rng.uniform(-0.2, 0.9, 40).astype(np.float32)
    lexical = np.where(rng.uniform(size=40) < 0.3, 0.0, rng.uniform(size=40)).astype(np.float32)
    linear = RetrievalSettings(fusion="linear", dense_weight=0.7)
    assert np.allclose(fuse(dense, lexical, linear), 0.7 * dense + 0.3 * lexical)
    rrf = RetrievalSettings(fusion="rrf", dense_weight=0.5, rrf_k=10)
    reference = _brute_rrf(dense, lexical, 10, 0.5)
    assert np.allclose(fuse(dense, lexical, rrf), reference / reference.max())


def test_fusion_extremes_are_single_signals() -> None:
    dense = np.array([0.9, 0.1, 0.5])
    lexical = np.array([0.0, 1.0, 0.2])
    assert np.argmax(fuse(dense, lexical, RetrievalSettings(dense_weight=1.0))) == 0
    assert np.argmax(fuse(dense, lexical, RetrievalSettings(dense_weight=0.0))) == 1


# --- coverage --------------------------------------------------------------------------------


def test_coverage_weighs_rare_words() -> None:
    weights = {"incirlik": 5.0, "drone": 1.0}
    assert share(["drone", "base"], weights) == pytest.approx(1 / 6)
    assert share(["incirlik"], weights) == pytest.approx(5 / 6)
    assert share(["x"], {}) == 0.0


def test_anchor_coverage_reads_the_first_sentence_only() -> None:
    weights = {"convoy": 1.0, "fire": 1.0}
    assert share(first_sentence_terms("The convoy caught fire. It left later."), weights) == 1.0
    assert share(first_sentence_terms("It left later. The convoy caught fire."), weights) == 0.0


# --- outlets, filters, duplicates --------------------------------------------------------------


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("According to TASS, what did Ryabkov say?", "TASS"),
        ("What did RT report about the convoy?", "RT"),
        ("what did rt report", "RT"),  # typed without capitals: case says nothing
        ("whats the headline of the tass story", "TASS"),
        ("What did the US say to rt?", None),  # capitals elsewhere: lowercase "rt" is no name
        ("Was the art exhibition cancelled?", None),
        ("What did Press TV say?", "Press TV"),
    ],
)
def test_outlet_named_in_the_question(question: str, expected: str | None) -> None:
    assert outlet_in_question(question, ["RT", "TASS", "Press TV"]) == expected


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("according to reuters how many people died", "Reuters"),
        ("What did AFP say about the airstrike?", "AFP"),
        ("what did the bbc say about aleppo", "BBC"),
        # A part of an article that names an outlet is no outlet as the source.
        ("according to the AFP photo caption, where was the meeting", None),
        ("In which city was the meeting shown in the AFP photograph?", None),
        ("What did Lavrov say about the convoy?", None),
    ],
)
def test_an_outlet_given_as_the_whole_source(question: str, expected: str | None) -> None:
    assert source_outlet(speaker(question), KNOWN_OUTLETS) == expected


def test_an_outlet_spelt_like_a_stop_word_counts_in_capitals_only() -> None:
    assert outlet_in_question("what did it say about the convoy", ["IT"]) is None
    assert outlet_in_question("What did IT say about the convoy?", ["IT"]) == "IT"


def _meta(article_id: str, outlet: str | None = None, date: dt.date | None = None) -> ArticleMeta:
    return make_meta(
        id=article_id,
        path=f"{article_id}.txt",
        title=f"Title {article_id}",
        outlet=outlet,
        date=date,
    )


def test_filters_by_outlet_and_date() -> None:
    f = SearchFilters(outlets=("tass",), since=dt.date(2016, 9, 20), until=dt.date(2016, 9, 30))
    assert f.admits(_meta("a", "TASS", dt.date(2016, 9, 22)))
    assert not f.admits(_meta("b", "RT", dt.date(2016, 9, 22)))
    assert not f.admits(_meta("c", "TASS", dt.date(2016, 10, 1)))
    assert not f.admits(_meta("d", "TASS", None))  # undated: cannot be said to be inside
    assert f.describe() == "from tass, published 2016-09-20 to 2016-09-30"
    assert not SearchFilters().active


@pytest.mark.parametrize(
    ("text", "start", "end"),
    [
        ("2016-09-24", dt.date(2016, 9, 24), dt.date(2016, 9, 24)),
        (" 2016-09 ", dt.date(2016, 9, 1), dt.date(2016, 9, 30)),
        ("2016-2", dt.date(2016, 2, 1), dt.date(2016, 2, 29)),  # a leap year
        ("2015-12", dt.date(2015, 12, 1), dt.date(2015, 12, 31)),
        ("1987", dt.date(1987, 1, 1), dt.date(1987, 12, 31)),
    ],
)
def test_date_bounds_of_a_day_month_or_year(text: str, start: dt.date, end: dt.date) -> None:
    assert (date_bound(text), date_bound(text, end=True)) == (start, end)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("yesterday", "is not a date"),
        ("24.09.2016", "is not a date"),
        ("2016-13", "not a real date"),
        ("2016-02-30", "not a real date"),
    ],
)
def test_date_bounds_refuse_what_they_cannot_read(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        date_bound(text)


def test_near_duplicates() -> None:
    a = "Russia will no longer take seriously requests for unilateral concessions, Lavrov said."
    b = "Russia will “no longer take seriously” requests for unilateral concessions, Lavrov said"
    assert near_duplicate(a, b)
    assert not near_duplicate(a, "The drone left thirty minutes later.")


# --- quotes ----------------------------------------------------------------------------------

ARTICLE = (
    "Drone report\n\n"
    "The drone had taken off from the Incirlik air base. Our radar identified it as a "
    "Predator, the spokesman said.\n\n"
    "The drone entered the airspace minutes before the convoy caught fire. "
    "And it left thirty minutes later, he said.\n\n"
    "Agreement on Syria\n\n"
    "Ryabkov said Russia was not walking out of the agreement."
)


def _sentence_starts(text: str) -> list[int]:
    marks = [
        "The drone had",
        "Our radar",
        "The drone entered",
        "And it left",
        "Agreement on",
        "Ryabkov said",
    ]
    return [text.index(m) for m in marks]


def _window(text: str, first: int, last: int, ordinal: int) -> Chunk:
    starts = _sentence_starts(text)
    ends = [
        text.index(".", s) + 1 if not text[s:].startswith("Agreement") else text.index("\n", s)
        for s in starts
    ]
    start, end = starts[first], ends[last]
    return Chunk("a", ordinal, start, end, text[start:end])


def _hit(chunk: Chunk, score: float, chunk_id: int) -> Hit:
    return Hit(chunk_id, chunk, _meta("a"), score, score, score)


def test_first_quote_pivots_on_the_matching_sentence_and_takes_the_next() -> None:
    windows = [_window(ARTICLE, i, min(i + 2, 5), i) for i in range(6)]
    # The best window ends with the sentence that matches; the answer follows it.
    best = _window(ARTICLE, 0, 2, 0)
    weights = {"convoy": 3.0, "caught": 2.0, "fire": 2.0, "drone": 1.0, "leave": 1.0}
    context = dict(enumerate(windows))
    start, end = first_quote(
        _hit(best, 1.0, 0), [_hit(best, 1.0, 0)], context, ARTICLE, 400, weights
    )
    quote = ARTICLE[start:end]
    assert quote.startswith(("Our radar", "The drone entered"))
    assert "thirty minutes later" in quote
    assert "Agreement on Syria" not in quote


def test_first_quote_pivots_where_the_reader_found_the_answer() -> None:
    """A paraphrase shares its words with the wrong sentence: the sentence holding the
    reader's answer span is the pivot instead, and one outside the window is ignored."""
    windows = [_window(ARTICLE, i, min(i + 2, 5), i) for i in range(6)]
    best = _window(ARTICLE, 0, 2, 0)
    weights = {"taken": 3.0, "incirlik": 3.0}
    context = dict(enumerate(windows))
    plain = _hit(best, 1.0, 0)
    by_words = ARTICLE[slice(*first_quote(plain, [plain], context, ARTICLE, 60, weights))]
    assert by_words == "The drone had taken off from the Incirlik air base."
    read = replace(plain, answer_at=ARTICLE.index("Predator"))
    by_span = ARTICLE[slice(*first_quote(read, [read], context, ARTICLE, 60, weights))]
    assert by_span == "Our radar identified it as a Predator, the spokesman said."
    outside = replace(plain, answer_at=ARTICLE.index("Ryabkov"))
    assert first_quote(outside, [outside], context, ARTICLE, 60, weights) == first_quote(
        plain, [plain], context, ARTICLE, 60, weights
    )


def test_first_quote_grows_towards_the_kind_of_answer_asked_for() -> None:
    """Of the sentences around the pivot, the quote takes the two after it when the second
    one holds the duration "how long" asks for, instead of the one before."""
    windows = [_window(ARTICLE, i, min(i + 2, 5), i) for i in range(6)]
    best = _window(ARTICLE, 1, 1, 1)
    weights = {"radar": 3.0, "predator": 2.0}
    context = dict(enumerate(windows))
    hit = _hit(best, 1.0, 1)
    plain = ARTICLE[slice(*first_quote(hit, [hit], context, ARTICLE, 400, weights))]
    assert plain.startswith("The drone had") and "thirty minutes" not in plain
    expected = expected_answer("How long did the Predator stay, by the radar?")
    assert expected is not None and expected.name == "duration"
    typed = ARTICLE[slice(*first_quote(hit, [hit], context, ARTICLE, 400, weights, expected))]
    assert typed.startswith("Our radar") and typed.endswith("thirty minutes later, he said.")


def test_first_quote_never_grows_over_a_promo_line() -> None:
    text = (
        "Title\n\nLavrov doubted the US account.\n\n"
        "It is very hard to believe that they could forget who is located where, he said.\n\n"
        "READ MORE: US airstrikes on Syrian troops were intentional – Assad to AP\n\n"
        "The situation in Deir ez-Zor is different."
    )
    chunks = windows(text)
    best = next(i for i, c in enumerate(chunks) if c.text.startswith("It is very hard"))
    hit = _hit(chunks[best], 1.0, best)
    weights = {"believe": 3.0, "forget": 2.0}
    start, end = first_quote(hit, [hit], dict(enumerate(chunks)), text, 500, weights)
    assert text[start:end] == (
        "Lavrov doubted the US account.\n\n"
        "It is very hard to believe that they could forget who is located where, he said."
    )


@pytest.mark.parametrize(
    ("question", "speaker"),
    [
        (
            "What did Samantha Power say Russia and Assad do instead of pursuing peace?",
            {"samantha", "power"},
        ),
        ("According to Zakharova, what point has the process come to?", {"zakharova"}),
        ("How did Ryabkov describe the strike?", {"ryabkov"}),
        ("What was brokered in Latakia Province?", set()),
    ],
)
def test_the_speaker_counts_less_when_choosing_the_sentence_to_quote(
    question: str, speaker: set[str]
) -> None:
    weights = {t: 2.0 for t in terms(question)}
    chosen = pivot_weights(question, weights, SPEAKER_NAME_WEIGHT)
    assert {t for t, w in chosen.items() if w < 2.0} - {"say"} == speaker


def test_first_quote_pivots_on_what_was_said_not_on_who_said_it() -> None:
    text = (
        "Title\n\nPower spoke at the Council. “Now instead of pursuing peace Russia and Assad "
        "make war. Instead of helping civilians they bomb convoys,” Samantha Power said.\n\n"
        "She left early."
    )
    chunks = windows(text, ChunkingSettings(max_chars=200, max_sentences=2))
    question = "What did Samantha Power say Russia and Assad do instead of pursuing peace?"
    weights = {t: 1.0 for t in terms(question)} | {"samantha": 4.0, "power": 3.0}
    best = next(i for i, c in enumerate(chunks) if c.text.startswith("“Now"))
    hit = _hit(chunks[best], 1.0, best)
    region = dict(enumerate(chunks))
    plain = text[slice(*first_quote(hit, [hit], region, text, 60, weights))]
    assert "make war" not in plain
    chosen = pivot_weights(question, weights, SPEAKER_NAME_WEIGHT)
    start, end = first_quote(hit, [hit], region, text, 60, chosen)
    assert "make war" in text[start:end]


def test_when_an_article_was_published_is_quoted_from_its_date_line(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "a.txt",
        "Moscow answers the US ultimatum over Syria",
        "The US threatened to end its cooperation with Moscow. Lavrov answered the ultimatum.",
        date="28 Sep, 2016 15:59",
    )
    (seeds / "b.txt").write_text(
        "Strikes are not ruled out\n\nMOSCOW, September 22./TASS/. Russia does not rule out "
        "strikes against the groups, Ryabkov told reporters.\n",
        encoding="utf-8",
    )
    service = QAService(make_settings(tmp_path, seeds), embedder=CountingEmbedder())
    service.index()
    snapshot = service.snapshot()
    hits = service.search("ultimatum Moscow cooperation")
    assert hits is not None
    for question, article, quote in (
        ("When was the article about the US ultimatum published?", "a", "28 Sep, 2016 15:59"),
        (
            "Which news agency reported that Russia does not rule out strikes?",
            "b",
            "MOSCOW, September 22./TASS/.",
        ),
    ):
        retrieval = service.search(question)
        assert retrieval is not None and retrieval.hits[0].article.id == article
        forced = Retrieval(
            retrieval.hits, 1.0, True, retrieval.query_terms, "", {}, {}, query=retrieval.query
        )
        answer = compose(question, forced, snapshot.article_text, RetrievalSettings())
        first = answer.citations[0]
        assert first.quote == quote
        assert snapshot.article_text(article)[first.start : first.end] == quote
        assert len(answer.citations) > 1  # the story's quotes follow
    story = compose(
        "What did Lavrov answer?",
        Retrieval(hits.hits, 1.0, True, hits.query_terms, "", {}, {}),
        snapshot.article_text,
        RetrievalSettings(),
    )
    assert all("2016" not in c.quote for c in story.citations)


def test_a_headline_that_answers_the_question_is_quoted_first(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "a.txt",
        "Russia accuses the US of supporting terror groups in Syria",
        "Lavrov spoke at the United Nations. He said the coalition failed to act.",
    )
    write_article(seeds, "b.txt", "Convoy attacked", "A convoy was attacked near Aleppo.")
    service = QAService(make_settings(tmp_path, seeds), embedder=CountingEmbedder())
    service.index()
    snapshot = service.snapshot()

    def first_quote_of(question: str) -> str:
        found = service.search(question)
        assert found is not None and found.hits[0].article.id == "a"
        forced = Retrieval(found.hits, 1.0, True, found.query_terms, "", {}, found.weights)
        answer = compose(question, forced, snapshot.article_text, RetrievalSettings())
        assert all(
            snapshot.article_text(c.article.id)[c.start : c.end] == c.quote
            for c in answer.citations
        )
        return answer.citations[0].quote

    headline = "Russia accuses the US of supporting terror groups in Syria"
    assert first_quote_of("What does Russia accuse the US of doing in Syria?") == headline
    assert first_quote_of("Why does Russia accuse the US in Syria?") != headline
    assert first_quote_of("What did Lavrov say at the United Nations?") != headline


def test_first_quote_respects_the_character_limit() -> None:
    windows = [_window(ARTICLE, i, min(i + 2, 5), i) for i in range(6)]
    best = _window(ARTICLE, 2, 3, 2)
    weights = {"convoy": 1.0}
    start, end = first_quote(_hit(best, 1.0, 2), [], dict(enumerate(windows)), ARTICLE, 80, weights)
    assert ARTICLE[start:end] == (
        "The drone entered the airspace minutes before the convoy caught fire."
    )


def test_a_subhead_on_its_own_is_never_quoted() -> None:
    heading = _window(ARTICLE, 4, 4, 4)
    assert heading.text == "Agreement on Syria"
    prose = _window(ARTICLE, 5, 5, 5)
    retrieval = Retrieval(
        [_hit(heading, 1.0, 4), _hit(prose, 0.9, 5)], 1.0, True, ["agreement"], "", {}, {}
    )
    answer = compose("q", retrieval, lambda _: ARTICLE, RetrievalSettings())
    assert answer.answered
    assert [c.quote for c in answer.citations] == [
        "Ryabkov said Russia was not walking out of the agreement."
    ]


def test_compose_declines_and_never_quotes_twice() -> None:
    settings = RetrievalSettings()
    w = _window(ARTICLE, 2, 3, 2)
    hits = [_hit(w, 1.0, 2), _hit(w, 0.95, 2), _hit(_window(ARTICLE, 3, 3, 3), 0.9, 3)]
    retrieval = Retrieval(hits, 1.0, True, ["convoy"], "", {}, {"convoy": 1.0})
    answer = compose("q", retrieval, lambda _: ARTICLE, settings)
    assert answer.answered and len(answer.citations) == 1
    c = answer.citations[0]
    assert ARTICLE[c.start : c.end] == c.quote
    declined = compose("q", Retrieval(hits, 0.1, False, ["x"]), lambda _: ARTICLE, settings)
    assert not declined.answered and declined.citations == ()
    assert declined.suggestions == ("Title a",)


# --- hybrid search on a tiny corpus ----------------------------------------------------------


@pytest.fixture
def tiny(tmp_path: Path) -> QAService:
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "a.txt",
        "Drone spotted over convoy",
        "An attack drone flew at an altitude of 3,600 meters over the convoy. "
        "It had taken off from the Incirlik air base.",
        date="2016-09-24",
    )
    write_article(
        seeds,
        "b.txt",
        "Siege of the city",
        "Syrian troops had been besieged by IS in Deir ez-Zor for over two years. "
        "The garrison held the airport.",
        date="2016-09-18",
    )
    write_article(
        seeds,
        "c.txt",
        "Cocoa harvest outlook",
        "Rain in the cocoa zone improved the harvest outlook, traders said. "
        "Prices fell two percent.",
        date="1987-02-26",
    )
    service = QAService(make_settings(tmp_path, seeds), embedder=CountingEmbedder())
    service.index()
    return service


@pytest.mark.parametrize(
    ("question", "file"),
    [
        ("Which air base did it take off from, Incirlik?", "a.txt"),
        ("What happened at 3600 meters?", "a.txt"),
        ("Who was besieged in Deir ez-Zor?", "b.txt"),
        ("who was besieged in deir ez\u2011zor", "b.txt"),  # no-break hyphen, lower case
    ],
)
def test_names_places_and_numbers_are_found(tiny: QAService, question: str, file: str) -> None:
    retrieval = tiny.search(question)
    assert retrieval is not None
    assert retrieval.hits[0].article.path == file


@pytest.mark.parametrize(
    ("question", "file"),
    [
        ("Which air base did it take off from, Incirlk?", "a.txt"),  # a letter missing
        ("Which air base did it take off from, Incrilik?", "a.txt"),  # two letters swapped
        ("Who was beseiged at the airport?", "b.txt"),
    ],
)
def test_a_misspelt_word_is_read_as_the_indexed_one(
    tiny: QAService, question: str, file: str
) -> None:
    retrieval = tiny.search(question)
    assert retrieval is not None and retrieval.answerable
    assert retrieval.hits[0].article.path == file and retrieval.hits[0].lexical > 0
    strict = tiny.settings.retrieval.model_copy(update={"typo_tolerance": False})
    literal = retrieve(tiny.snapshot(), question, tiny.query_embedder.embed([question])[0], strict)
    assert literal.coverage < retrieval.coverage


@pytest.mark.parametrize(
    ("question", "note"),
    [
        ("Which air base did it take off from, Incirlk?", "Read “Incirlk” as “Incirlik”."),
        ("Who was beseiged at the airport?", "Read “beseiged” as “besieged”."),
        ("Which air base did it take off from, Incirlik?", None),  # nothing to correct
        ("Who was besieged in Zzyzxville?", None),  # unknown, but nothing near it
    ],
)
def test_the_answer_says_how_a_misspelt_word_was_read(
    tiny: QAService, question: str, note: str | None
) -> None:
    retrieval = tiny.search(question)
    assert retrieval is not None
    assert correction_note(question, retrieval) == note
    answer = tiny.ask(question)
    assert (note in answer.notes) if note else not any(n.startswith("Read") for n in answer.notes)


@pytest.mark.parametrize(
    ("question", "names"),
    [
        ("What did Putin say about the convoy?", ["Putin"]),
        ("What did Putin and NATO say about Incirlik?", ["Putin", "NATO"]),
        ("Who was besieged in Deir Ezzor?", []),  # the hyphen left out: still Deir ez-Zor
        ("Which base did the drone leave, Incirlk?", []),  # a typo, not an unknown name
        ("Putin flew over the convoy?", []),  # the first word is capitalised anyway
        ("What did the EU say about the convoy?", []),  # two-letter acronyms are shorthand
        ("What Did The Drone Do Over The Convoy?", []),  # title case: known or stop words
        # A name in the asking phrase describes the answer, which may be named without it.
        ("From which Turkish air base did the drone take off?", []),
        ("Which NATO drone flew over the convoy?", []),
        ("What did the Turkish army say about the drone?", ["Turkish"]),
        # "According to X" ends where the question starts: "whats" is no speaker.
        ("according to the traders whats the drone's speed", []),
        ("According to Merkel what did the drone do?", ["Merkel"]),
    ],
)
def test_names_no_article_mentions(tiny: QAService, question: str, names: list[str]) -> None:
    assert list(analyse(question, tiny.snapshot().lexical).unknown_names) == names


@pytest.mark.parametrize(
    ("question", "corrections", "names"),
    [
        # A short name typed with a slip is read as the one indexed word that close...
        ("What did the troops in Dier ez-Zor hold?", {"dier": ("deir",)}, []),
        ("What did the Syrain troops hold?", {"syrain": ("syrian",)}, []),  # long: as before
        # ... never when the name is an English word (one letter from the indexed "base")...
        ("What did Bass say about the convoy?", {}, ["Bass"]),
        # ... nor when nothing indexed is one slip away, nor when the word is no name.
        ("What did Putin say about the convoy?", {}, ["Putin"]),
        ("how many trucks did the convoy hvae", {}, []),
    ],
)
def test_a_short_misspelt_name_is_read_when_one_indexed_word_is_that_close(
    tiny: QAService, question: str, corrections: dict[str, tuple[str, ...]], names: list[str]
) -> None:
    query = analyse(question, tiny.snapshot().lexical)
    assert dict(query.corrections) == corrections
    assert list(query.unknown_names) == names


def test_a_misspelt_short_name_is_answered_and_the_reading_told(tiny: QAService) -> None:
    answer = tiny.ask("How long were troops besieged in Dier ez-Zor?")
    assert answer.answered and "Read “Dier” as “Deir”." in answer.notes
    assert "over two years" in answer.citations[0].quote


def test_a_question_about_a_name_no_article_mentions_is_declined(tiny: QAService) -> None:
    question = "What did Putin say about the drone over the convoy?"
    answer = tiny.ask(question)
    assert not answer.answered
    assert "The articles never mention “Putin”." in answer.notes
    retrieval = tiny.search(question)
    assert retrieval is not None and retrieval.unknown_names == ("Putin",)
    assert "never mention “Putin”" in retrieval.reason
    lenient = tiny.settings.retrieval.model_copy(update={"decline_unknown_names": False})
    vector = tiny.query_embedder.embed([question])[0]
    assert retrieve(tiny.snapshot(), question, vector, lenient).answerable
    assert tiny.ask("What did the drone do over the convoy?").answered


def test_an_outlet_named_to_filter_by_is_no_unknown_name(tmp_path: Path) -> None:
    """ "According to Press TV, ..." filters by the outlet; that its name is only in the page
    footer (a note of the site, not a word of the story asked about) must not decline the
    question."""
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "p.txt",
        "Truce in Syria",
        "The truce went into effect late February in Syria.\n\n"
        "Press TV’s website can also be accessed at the following alternate addresses:",
    )
    write_article(seeds, "q.txt", "Drone over the convoy", "A drone flew over the convoy.")
    service = QAService(make_settings(tmp_path, seeds), embedder=CountingEmbedder())
    service.index()
    assert "Press TV" in service.snapshot().outlets()
    retrieval = service.search("According to Press TV, when did the truce go into effect?")
    assert retrieval is not None and retrieval.unknown_names == ()
    assert "late February" in retrieval.hits[0].chunk.text
    other = service.search("According to Press TV, what did Putin say about the truce?")
    assert other is not None and other.unknown_names == ("Putin",)


def test_a_question_may_point_at_the_article_by_its_date(tiny: QAService) -> None:
    """ "In the September 24 report" names the article's publication date, which no window
    holds: those words count as covered by the article's own windows."""
    retrieval = tiny.search(
        "Which air base did the drone take off from in the September 24 report?"
    )
    assert retrieval is not None and retrieval.hits[0].article.path == "a.txt"
    assert retrieval.query is not None
    weights = retrieval.query.weights
    assert {"september", "24"} <= set(weights)
    window_only = share(
        [*terms(retrieval.hits[0].chunk.text), *terms(retrieval.hits[0].article.title)], weights
    )
    assert retrieval.coverage > window_only


def test_filters_restrict_the_search(tiny: QAService) -> None:
    only_old = SearchFilters(until=dt.date(2000, 1, 1))
    answer = tiny.ask("Who was besieged in Deir ez-Zor?", filters=only_old)
    assert not answer.answered or {c.article.path for c in answer.citations} == {"c.txt"}
    empty = SearchFilters(outlets=("Nobody",))
    assert not tiny.ask("Who was besieged in Deir ez-Zor?", filters=empty).answered


def test_a_short_question_whose_every_word_one_passage_holds_is_answered(
    tmp_path: Path,
) -> None:
    """ "Who is Churkin?" embeds far from any window that names him; the name alone, found
    whole in one passage, is enough evidence. A word missing still declines."""
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "un.txt",
        "Russia accuses the US at the Security Council",
        "The territory of the country is being bombed indiscriminately, Russian Ambassador to "
        "the UN Vitaly Churkin said. The council met on Sunday.",
    )
    write_article(seeds, "cocoa.txt", "Cocoa harvest", "Rain improved the cocoa harvest outlook.")
    service = QAService(make_settings(tmp_path, seeds), embedder=CountingEmbedder())
    service.index()
    snapshot = service.snapshot()
    # A question vector at cosine 0.13 from the window naming Churkin, near 0 from the rest:
    # how the real model places "Who is Churkin?" against the seeds.
    windows = np.asarray(snapshot.vectors, dtype=np.float64)
    texts = snapshot.chunks(list(range(snapshot.n_chunks)))
    named = next(i for i, c in texts.items() if "Churkin" in c.text)
    others = np.delete(windows, named, axis=0).T
    basis, _ = np.linalg.qr(windows.T)
    away = np.random.default_rng(0).standard_normal(windows.shape[1])
    away -= basis @ (basis.T @ away)  # orthogonal to every window
    target = windows[named] - others @ np.linalg.lstsq(others, windows[named], rcond=None)[0]
    target /= np.linalg.norm(target)
    along = 0.13 / float(windows[named] @ target)
    vector = along * target + np.sqrt(1 - along**2) * away / np.linalg.norm(away)
    vector = vector.astype(np.float32)
    sims = windows @ vector
    assert 0.1 < sims[named] < 0.2 and np.abs(np.delete(sims, named)).max() < 0.01
    strict = service.settings.retrieval.model_copy(update={"min_dense_all_words": 1.0})
    for question, answered in [("Who is Churkin?", True), ("Who is Churkin's wife?", False)]:
        relaxed = retrieve(snapshot, question, vector, service.settings.retrieval)
        assert relaxed.hits[0].chunk_id == named
        assert relaxed.answerable is answered, (question, relaxed.reason)
        assert not retrieve(snapshot, question, vector, strict).answerable
        if answered:
            assert "every word of the question" in relaxed.reason


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("How many airstrikes did Samantha Power mention?", "count"),
        ("How much did it cost?", "money"),
        ("How much aid was sent?", "number"),
        ("how long had the troops been besieged?", "duration"),
        ("How long after the convoy caught fire did the drone leave?", "duration"),
        ("At what altitude was the drone flying?", "length"),
        ("How fast was the drone going?", "speed"),
        ("According to TASS, how fast was the drone going?", "speed"),
        ("What percentage of the vote did he win?", "percent"),
        ("When was the convoy attacked?", "date"),
        ("In what year was the group formed?", "year"),
        ("How old is the minister?", "age"),
        ("Who is Russia's ambassador to the UN?", None),
        ("How did Lavrov describe the attack?", None),
        ("What did the US say about how many drones flew?", None),
    ],
)
def test_expected_answer_from_the_question_wording(question: str, kind: str | None) -> None:
    expected = expected_answer(question)
    assert (expected.name if expected else None) == kind


@pytest.mark.parametrize(
    ("question", "subject", "is_name"),
    [
        ("Who is Zakharova?", "Zakharova", True),
        ("who was John Kirby", "John Kirby", True),
        ("Who is the US Secretary of State?", "the US Secretary of State", False),
        ("Who is Russia's ambassador to the UN?", "Russia's ambassador to the UN", False),
        ("Who led the Panthers in sacks?", None, None),
        ("What kind of publication is Komsomolskaya Pravda?", "Komsomolskaya Pravda", True),
        ("What does ISSG stand for?", "ISSG", True),
        ("What is the ISSG?", "ISSG", True),
        ("Who is the Russian Defense Minister?", "the Russian Defense Minister", False),
        ("What is the capital of Australia?", None, None),
        ("What was brokered in Latakia Province?", None, None),
    ],
)
def test_who_is_questions_name_their_subject(
    question: str, subject: str | None, is_name: bool | None
) -> None:
    found = definition(question)
    assert (found.subject if found else None) == subject
    assert (found.is_name if found else None) == is_name


def test_who_is_a_title_wants_the_title_next_to_a_name() -> None:
    found = definition("Who is the US Secretary of State?")
    assert found is not None and found.beside_name is not None
    for text in (
        "the US Secretary of State John Kerry expressed grave concern",
        "Kerry, the US Secretary of State, said",
        "John Kerry was the US Secretary of State",
    ):
        assert found.beside_name.search(text), text
    for text in (
        "the idea of the US Secretary of State is workable",
        "He met the US Secretary of State. Kerry left.",
    ):
        assert not found.beside_name.search(text), text


def test_an_acronym_asked_about_wants_the_window_spelling_it_out() -> None:
    found = definition("What does ISSG stand for?")
    assert found is not None and found.spelt_out is not None
    chunks = [
        Chunk("a", 0, 0, 10, "The ISSG, co-chaired by Moscow and Washington, was formed."),
        Chunk("a", 1, 20, 30, "Lavrov said the International Syria Support Group (ISSG) may meet."),
    ]
    bonus = _definition_bonus(found, chunks, RetrievalSettings())
    assert bonus[0] == 0 and bonus[1] > 1


def test_a_question_about_a_name_is_answered_by_a_passage_naming_it(tiny: QAService) -> None:
    """ "What kind of base is Incirlik?": the other words are the question's scaffolding, so
    a passage naming Incirlik answers it even when its cosine is low."""
    question = "What kind of facility is Incirlik?"
    retrieval = tiny.search(question)
    assert retrieval is not None and retrieval.answerable, retrieval.reason
    assert "names “Incirlik”" in retrieval.reason
    assert "Incirlik" in retrieval.hits[0].chunk.text or any(
        "Incirlik" in h.chunk.text for h in retrieval.hits[:3]
    )
    plain = retrieve(
        tiny.snapshot(),
        "What kind of facility serves Incirlik?",
        tiny.query_embedder.embed(["What kind of facility serves Incirlik?"])[0],
        tiny.settings.retrieval,
    )
    assert "names" not in plain.reason  # not a question about what Incirlik is


def test_who_is_a_name_prefers_the_first_mention_in_each_article() -> None:
    """News introduces a person with a title at the first mention, later ones say the name."""
    chunks = [
        Chunk("a", 0, 0, 10, "Foreign Ministry spokesperson Maria Zakharova said so."),
        Chunk("a", 1, 50, 60, "“It is a critical point,” Zakharova said."),
        Chunk("b", 0, 0, 10, "Lavrov met Kerry."),
        Chunk("b", 1, 20, 30, "Zakharova, the ministry's spokeswoman, agreed."),
    ]
    found = definition("Who is Zakharova?")
    assert found is not None
    pronoun = definition("Who is He?")
    assert pronoun is not None and not _definition_bonus(pronoun, chunks, RetrievalSettings()).any()
    assert _definition_bonus(
        found, [chunks[1], chunks[0], chunks[2], chunks[3]], RetrievalSettings()
    ).tolist() == [
        0.0,
        1.0,
        0.0,
        1.0,
    ]


@pytest.mark.parametrize(
    ("kind_of", "strict", "loose_only", "neither"),
    [
        (
            "How fast was it flying?",
            "at a speed of about 200 kilometers per hour",
            "at an altitude of 3,600 meters",
            "it flew over the convoy",
        ),
        (
            "At what altitude was it flying?",
            "at an altitude of 3,600 meters",
            "62 troops were killed",
            "high above the city",
        ),
        (
            "How long had the troops been besieged?",
            "besieged for over two years",
            "62 troops",
            "besieged by IS",
        ),
        (
            "How long after the fire did the drone leave?",
            "it left thirty minutes later",
            "one drone",
            "it left later",
        ),
        ("In what year was it formed?", "formed in 2015", "formed in November", "formed"),
        ("How many airstrikes were there?", "more than 150 airstrikes", "62 troops", "airstrikes"),
        # A count of the thing asked about, not any number near it.
        (
            "How many aid workers were killed in the convoy attack?",
            "the death of 20 civilians and one aid worker",
            "left 62 Syrian troops killed",
            "aid workers were killed",
        ),
        ("How many countries are in the group?", "a group of 20 countries", "in 2015", "a group"),
    ],
)
def test_answer_types_tell_the_asked_for_kind_from_any_number(
    kind_of: str, strict: str, loose_only: str | None, neither: str
) -> None:
    expected = expected_answer(kind_of)
    assert expected is not None
    assert expected.score(strict) == 1.0
    if loose_only is not None:
        assert expected.score(loose_only) == 0.5
    assert expected.score(neither) == 0.0


def test_a_passage_with_the_asked_for_number_outranks_one_that_only_repeats_the_names(
    tmp_path: Path,
) -> None:
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "power.txt",
        "Power at the Security Council",
        "Samantha Power condemned the airstrikes on the convoys. "
        "Samantha Power counted 150 airstrikes in three days of fighting around the city.",
    )
    settings = make_settings(tmp_path, seeds, chunking={"max_chars": 100, "max_sentences": 1})
    service = QAService(settings, embedder=CountingEmbedder())
    service.index()
    question = "How many airstrikes did Samantha Power mention?"
    retrieval = service.search(question)
    assert retrieval is not None and "150 airstrikes" in retrieval.hits[0].chunk.text
    plain = settings.retrieval.model_copy(update={"answer_type_weight": 0.0})
    vector = service.query_embedder.embed([question])[0]
    without = retrieve(service.snapshot(), question, vector, plain)
    assert "150" not in without.hits[0].chunk.text  # the names alone rank the other first


@pytest.fixture
def outlets_corpus(tmp_path: Path) -> QAService:
    return _outlets_corpus(tmp_path)


def _outlets_corpus(tmp_path: Path, **overrides: object) -> QAService:
    """Six articles from three outlets (one unnamed), dated and undated."""
    seeds = tmp_path / "seeds"
    rows = [
        ("a.txt", "TASS", "2016-09-18"),
        ("b.txt", "TASS", ""),
        ("c.txt", "RT", "2016-09-22"),
        ("d.txt", "Press TV", "2016-09-30"),
        ("e.txt", None, "2016-09-25"),
        ("f.txt", "RT", "2016-10-02"),
    ]
    sidecar = []
    for i, (name, outlet, date) in enumerate(rows):
        write_article(
            seeds,
            name,
            f"Convoy report {i}",
            f"The convoy was hit near Aleppo, report {i} said. Report {i} counted the trucks. "
            f"Witness {i} saw smoke.",
            date=date,
        )
        if outlet:
            sidecar.append(f'["{name}"]\noutlet = "{outlet}"\n')
    (seeds / "metadata.toml").write_text("\n".join(sidecar), encoding="utf-8")
    service = QAService(make_settings(tmp_path, seeds, **overrides), embedder=CountingEmbedder())
    service.index()
    return service


@pytest.mark.parametrize(
    "filters",
    [
        SearchFilters(outlets=("tass",)),
        SearchFilters(outlets=("RT", "press tv")),
        SearchFilters(outlets=("Nobody",)),
        SearchFilters(since=dt.date(2016, 9, 22)),
        SearchFilters(until=dt.date(2016, 9, 22)),
        SearchFilters(since=dt.date(2016, 9, 19), until=dt.date(2016, 9, 30)),
        SearchFilters(outlets=("rt",), since=dt.date(2016, 10, 1)),
        SearchFilters(since=dt.date(2020, 1, 1)),
    ],
)
def test_filter_query_admits_exactly_what_the_filter_does(
    outlets_corpus: QAService, filters: SearchFilters
) -> None:
    snapshot = outlets_corpus.snapshot()
    expected = {s.meta.id for s in snapshot.sources() if filters.admits(s.meta)}
    found = snapshot.chunk_ids_where(filters.outlets, filters.since, filters.until)
    chunks = snapshot.chunks(found.tolist())
    assert {c.article_id for c in chunks.values()} == expected
    assert len(found) == len(snapshot.chunk_ids_of(sorted(expected)))
    again = snapshot.chunk_ids_where(
        tuple(o.upper() for o in filters.outlets), filters.since, filters.until
    )
    assert again is found, "asked again (in any case), the generation answers from memory"


def test_large_filtered_search_goes_through_the_index_with_the_same_result(
    outlets_corpus: QAService, monkeypatch: pytest.MonkeyPatch
) -> None:
    import qa_bot.store_search as store_search

    only_rt = SearchFilters(outlets=("RT",))
    question = "Who saw smoke near the convoy?"
    exact = outlets_corpus.search(question, filters=only_rt)
    monkeypatch.setattr(store_search, "EXACT_FILTER_LIMIT", 0)
    through_index = outlets_corpus.search(question, filters=only_rt)
    assert exact is not None and through_index is not None
    assert [h.chunk_id for h in through_index.hits] == [h.chunk_id for h in exact.hits]
    assert {h.article.outlet for h in exact.hits} == {"RT"}


def test_an_approximate_index_is_masked_only_when_most_rows_stay(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Masking most rows of an HNSW graph loses neighbours: small allowed shares are scored
    exactly instead, with the same result."""
    import qa_bot.store_search as store_search
    from qa_bot.vector_index import VectorIndex

    service = _outlets_corpus(tmp_path, retrieval={"exact_search_limit": 0})
    assert service.snapshot().dense.kind == "hnsw"
    monkeypatch.setattr(store_search, "EXACT_FILTER_LIMIT", 0)
    masked: list[int] = []
    search = VectorIndex.search

    def spy(self: VectorIndex, queries: np.ndarray, k: int, *, allowed: object = None) -> object:
        if allowed is not None:
            masked.append(len(allowed))  # type: ignore[arg-type]
        return search(self, queries, k, allowed=allowed)  # type: ignore[arg-type]

    monkeypatch.setattr(VectorIndex, "search", spy)
    question = "Who saw smoke near the convoy?"
    two_of_six = service.search(question, filters=SearchFilters(outlets=("RT",)))
    assert masked and two_of_six is not None
    assert {h.article.outlet for h in two_of_six.hits} == {"RT"}
    masked.clear()
    one_of_six = service.search(
        question, filters=SearchFilters(outlets=("TASS",), since=dt.date(2016, 9, 1))
    )
    assert masked == [] and one_of_six is not None
    assert {h.article.path for h in one_of_six.hits} == {"a.txt"}


# --- the real model: paraphrases -------------------------------------------------------------


@pytest.mark.model
def test_paraphrase_is_found_by_the_dense_side(tmp_path: Path, real_embedder: object) -> None:
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "a.txt",
        "Convoy attack",
        "A drone was registered over the convoy shortly before the fire. "
        "The aid trucks burned for hours.",
    )
    write_article(
        seeds,
        "b.txt",
        "Cocoa harvest",
        "Rain in the cocoa zone improved the harvest outlook, traders said.",
    )
    service = QAService(make_settings(tmp_path, seeds), embedder=real_embedder)  # type: ignore[arg-type]
    service.index()
    retrieval = service.search("Was an unmanned aircraft seen near the aid vehicles?")
    assert retrieval is not None
    assert retrieval.hits[0].article.path == "a.txt"
    assert retrieval.hits[0].lexical < 1.0 or retrieval.hits[0].dense > 0.3


def test_the_passage_around_a_quote_leaves_the_page_furniture_out(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text(
        "icon bookmark-bicon bookmarkicon cameraicon checkicon chevron downicon closeicon\n"
        "24 Sep, 2016 01:53\n\nDrone over the convoy\n\n"
        "The drone was registered over the convoy.\n\n"
        "READ MORE: NATO won't speculate on who struck aid convoy in Syria\n\n"
        "It had taken off from the Incirlik air base.\n\n"
        "Russian Foreign Minister Sergei Lavrov © Reuters\n\n"
        "It left thirty minutes later.\n",
        encoding="utf-8",
    )
    service = QAService(make_settings(tmp_path, seeds), embedder=CountingEmbedder())
    service.index()
    text = service.snapshot().article_text("a")
    assert text is not None
    start = text.index("It had taken off")
    end = start + len("It had taken off from the Incirlik air base.")
    passage = service.passage("a", start, end)
    assert passage is not None
    assert passage.text[passage.quote_start : passage.quote_end] == text[start:end]
    assert "The drone was registered" in passage.text and "thirty minutes" in passage.text
    for furniture in ("icon", "READ MORE", "© Reuters"):
        assert furniture not in passage.text


@pytest.mark.parametrize(
    ("question", "outlet", "left"),
    [
        ("how many died per rt", "RT", "how many died per"),
        ("What did RT report about the convoy?", "RT", "What did report about the convoy?"),
        ("what did press tv say about the issg", "Press TV", "what did say about the issg"),
        ("what did the art critic say", "RT", "what did the art critic say"),
    ],
)
def test_without_outlet_takes_out_the_outlet_name_only(
    question: str, outlet: str, left: str
) -> None:
    assert without_outlet(question, outlet) == left
