"""The descriptor-swapped negatives (``training/swapped.py``): an answerable question with one
of its names replaced by another of its kind that the answering passage never mentions."""

from __future__ import annotations

import random
import sys
from pathlib import Path
from types import SimpleNamespace as NS

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "training"))

import swapped
import train_reader

from qa_bot.text import words

PASSAGE = (
    "Russian Foreign Minister Sergey Lavrov told the UN that Russia had asked the US to act, "
    "and Lavrov said the UN must investigate."
)
POOL = swapped.name_pool(
    [PASSAGE, "He met Kerry in Geneva, then Kerry flew from Geneva to NATO talks at NATO."]
)


def test_the_pool_holds_names_standing_inside_sentences_but_no_country_or_stray_word() -> None:
    assert POOL.names == ("Geneva", "Kerry", "Lavrov", "NATO", "UN")


def test_a_country_is_swapped_for_one_the_passage_lacks_in_the_same_form_and_case() -> None:
    for seed in range(20):
        asked = swapped.swapped(
            "who is russia's foreign minister", PASSAGE, POOL, random.Random(seed)
        )
        assert asked is not None and asked.endswith("'s foreign minister") and asked.islower()
        country = asked.split()[2].removesuffix("'s")
        held = set(words(PASSAGE))
        forms = next(pair for pair in swapped.COUNTRIES if country in pair)
        assert country == forms[0] and not held & set(forms)
    adjective = swapped.swapped(
        "What did the Russian minister say?", PASSAGE, POOL, random.Random(1)
    )
    assert adjective is not None and adjective.split()[3] != "Russian"
    assert adjective.split()[3] in {pair[1].capitalize() for pair in swapped.COUNTRIES}


def test_a_name_is_swapped_for_a_name_and_an_acronym_for_an_acronym() -> None:
    seen = {
        swapped.swapped("what did lavrov say", PASSAGE, POOL, random.Random(s)) for s in range(20)
    }
    assert seen == {"what did kerry say", "what did geneva say"}
    acronym = {
        swapped.swapped("What did the UN ask?", PASSAGE, POOL, random.Random(s)) for s in range(9)
    }
    assert acronym == {"What did the NATO ask?"}


def test_a_question_naming_nothing_the_passage_holds_is_not_swapped() -> None:
    assert swapped.swapped("how many trucks were hit", PASSAGE, POOL, random.Random(1)) is None
    # Every other name of its kind is in the passage: none is left to stand in.
    assert (
        swapped.swapped(
            "what did lavrov say",
            PASSAGE,
            swapped.name_pool(["a Lavrov b Lavrov"]),
            random.Random(1),
        )
        is None
    )


def test_the_swapped_question_joins_the_pairs_as_a_negative_only_when_asked() -> None:
    e = NS(
        query=NS(text="what did lavrov ask of the us"),
        question=NS(answers=("to act",), unanswerable=False),
        hits=[NS(chunk=NS(text=PASSAGE)), NS(chunk=NS(text="Talks resumed in Geneva."))],
        labels=np.array([True, False]),
    )
    plain = train_reader.pairs([e], random.Random(1))
    swap = lambda q, p: swapped.swapped(q, p, POOL, random.Random(2))  # noqa: E731
    with_swap = train_reader.pairs([e], random.Random(1), swap=swap)
    added = [p for p in with_swap if p not in plain]
    assert len(added) == 1 and added[0].label == 0.0 and added[0].answers == ()
    assert added[0].passage == PASSAGE and added[0].question != e.query.text
