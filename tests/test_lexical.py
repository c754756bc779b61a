"""The lexical index's typo lookup: the nearest indexed terms to a word it does not hold."""

from __future__ import annotations

import pytest

from qa_bot.lexical import LexicalIndex, typo_budget


@pytest.fixture(scope="module")
def index() -> LexicalIndex:
    return LexicalIndex.build(
        [
            "Lavrov said the ceasefire could be revived",
            "Churkin spoke at the Security Council",
            "Septicemic plague spread through the blood",
            "The apply button and the 2016 report",
            "Lavrova and Lavrov met",
            "Gegeen Khan ruled for two years",
            "Troops besieged in Deir ez-Zor watched the Super Bowl",
        ]
    )


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("lavrow", ("lavrov",)),  # the closest only: "lavrova" is two edits away
        ("churkn", ("churkin",)),  # a letter missing
        ("geegen", ("gegeen",)),  # neighbouring letters swapped: one edit
        ("septicemia", ("septicemic",)),
        ("ezzor", ("ez-zor",)),  # the hyphen left out
        ("superbowl", ("super", "bowl")),  # two indexed words run together
        ("lavrov", ()),  # indexed itself
        ("apple", ()),  # too short to guess: "apply" is another word
        ("2017", ()),  # numbers are never corrected
        ("zzzzzzzz", ()),
    ],
)
def test_near_terms(index: LexicalIndex, term: str, expected: tuple[str, ...]) -> None:
    assert index.near_terms(term) == expected


def test_typo_budget_grows_with_the_word() -> None:
    assert [typo_budget(w) for w in ("apple", "lavrow", "churkins", "septicemia")] == [0, 1, 1, 2]


@pytest.mark.parametrize(
    ("term", "expected"),
    [
        ("kery", ("kerry",)),  # a doubled letter typed once
        ("asad", ("assad",)),
        ("kerrry", ("kerry",)),  # long enough for the one-typo budget
        ("bomb", ()),  # indexed words are left alone
        ("very", ()),  # a substitution away from "kery"-like words: not a slip of doubling
        ("hil", ()),  # three letters are too short to guess from ("hill")
    ],
)
def test_short_words_are_read_with_a_doubled_letter_fixed(
    term: str, expected: tuple[str, ...]
) -> None:
    index = LexicalIndex.build(["Kerry met Assad to talk about a bomb", "News from the hill"])
    assert index.near_terms(term) == expected
