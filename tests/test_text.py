"""The light stemmer: which word forms meet, and which stay apart."""

from __future__ import annotations

import pytest

from qa_bot.text import (
    _stem,
    clean_inline,
    line_end,
    line_start,
    normalize_question,
    printable,
    terms,
)


@pytest.mark.parametrize(
    ("word", "stem"),
    [
        ("attacks", "attack"),
        ("attacked", "attack"),
        ("attacking", "attack"),
        ("submitted", "submit"),
        ("stopped", "stop"),
        ("planned", "plan"),
        ("embedded", "embed"),
        ("added", "add"),  # undoubling would leave two letters
        ("called", "call"),  # l, s, f, z doubles stay
        ("passed", "pass"),
        ("buzzed", "buzz"),
        ("staffed", "staff"),
        ("manning", "mann"),  # not after -ing: "Manning" must not meet "man"
        ("need", "need"),
        ("needed", "need"),
        ("speed", "speed"),
        ("speeds", "speed"),
        ("cities", "city"),
        ("studied", "study"),
        ("taxes", "tax"),
        ("houses", "house"),
        ("status", "status"),
        ("davis", "davis"),
        ("glass", "glass"),
        ("gas", "gas"),
        ("1990s", "1990s"),
    ],
)
def test_stem(word: str, stem: str) -> None:
    assert _stem(word) == stem


@pytest.mark.parametrize(
    ("a", "b"),
    [("The bill was submitted", "They submit bills"), ("Talks stopped", "talks stop")],
)
def test_inflections_meet(a: str, b: str) -> None:
    assert set(terms(a)) == set(terms(b))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Russia's ambassador", ["russia", "ambassador"]),
        ("Russia\u2019s ambassador", ["russia", "ambassador"]),  # curly apostrophe
        ("Norman Cantor's theory", ["norman", "cantor", "theory"]),
        ("the US' arming", ["us", "arm"]),
        ("it's what Lavrov's aides say", ["lavrov", "aide"]),
        ("O'Neill at five o'clock", ["o'neill", "five", "o'clock"]),  # not possessives
    ],
)
def test_possessives_meet_the_bare_name(text: str, expected: list[str]) -> None:
    assert terms(text) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [("the U.S. said", "the US said"), ("U.N. envoy", "UN envoy"), ("U.K.", "UK")],
)
def test_dotted_initials_meet_the_bare_acronym(a: str, b: str) -> None:
    assert terms(a) == terms(b)


def test_numbers_and_addresses_keep_their_dots() -> None:
    assert terms("3.5 percent at www.tass.com") == ["3.5", "percent", "www.tass.com"]


@pytest.mark.parametrize(
    ("dirty", "clean"),
    [
        ("Who is Chur\u00adkin?", "Who is Churkin?"),
        ("Who is \x1b[1;31mChurkin\x1b[0m?", "Who is Churkin?"),
        ("\x1b]0;title\x07Who is Churkin?", "Who is Churkin?"),
        ("Who\x00 is\x7f Chur\u200bkin\u2060?", "Who is Churkin?"),
        ("Who\tis\u2028Churkin?", "Who is Churkin?"),
        ("Ｗｈｏ is Ｃｈｕｒｋｉｎ？", "Who is Churkin?"),
    ],
)
def test_questions_are_normalised_before_matching(dirty: str, clean: str) -> None:
    assert normalize_question(dirty) == clean
    assert terms(normalize_question(dirty)) == terms(clean)


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("seeds/a\nb.txt", "seeds/a\\nb.txt"),
        ("seeds/\x1b[2Jclear.txt", "seeds/\\x1b[2Jclear.txt"),
        ("seeds/evil\u202etxt.exe", "seeds/evil\\u202etxt.exe"),
        ("seeds/Zürich café.txt", "seeds/Zürich café.txt"),
    ],
)
def test_names_print_on_one_line(name: str, shown: str) -> None:
    assert printable(name) == shown


def test_headlines_lose_control_characters() -> None:
    assert clean_inline("Head\x1b[2Jline\x07 about\u00a0Syria\n") == "Headline about Syria"


def test_a_line_starts_after_the_newline_before_it_and_ends_at_the_next() -> None:
    text = "Headline\n\nFirst line.\nSecond line"
    second = text.index("Second") + 3
    assert text[line_start(text, second) : line_end(text, second)] == "Second line"
    first = text.index("First")
    assert text[line_start(text, first + 4) : line_end(text, first)] == "First line."
    assert line_start(text, 3) == 0 and line_end(text, 3) == len("Headline")
    # A position on a newline belongs to the line that newline ends.
    assert line_start(text, text.index("\nSecond")) == first
