"""Descriptor-swapped questions: an answerable question with one of its names replaced by
another that its answering passage never mentions, read with that passage as a negative.

The on-topic questions the bot still answers wrongly most often ask for someone described
rather than named ("who is the uk ambassador to the un") of a passage that names someone else
of that description (the US ambassador). Answer-removed passages teach the reader that a
passage without the answer sentence does not answer; they never show it a question whose
country, organisation or person the passage lacks while it holds every other word. Swapping
one name for another of the same kind makes exactly that pair, from the questions at hand.
"""

from __future__ import annotations

import random
import re
from collections import Counter
from collections.abc import Iterable

from qa_bot.text import STOPWORDS, fold, words

#: Countries as news names them, each with the adjective it takes ("russia", "russian"): a
#: country in a question is swapped for another country, in the same form.
COUNTRIES: tuple[tuple[str, str], ...] = (
    ("afghanistan", "afghan"),
    ("argentina", "argentine"),
    ("australia", "australian"),
    ("austria", "austrian"),
    ("belgium", "belgian"),
    ("brazil", "brazilian"),
    ("britain", "british"),
    ("canada", "canadian"),
    ("chile", "chilean"),
    ("china", "chinese"),
    ("colombia", "colombian"),
    ("cuba", "cuban"),
    ("egypt", "egyptian"),
    ("ethiopia", "ethiopian"),
    ("france", "french"),
    ("germany", "german"),
    ("greece", "greek"),
    ("india", "indian"),
    ("indonesia", "indonesian"),
    ("iran", "iranian"),
    ("iraq", "iraqi"),
    ("ireland", "irish"),
    ("israel", "israeli"),
    ("italy", "italian"),
    ("japan", "japanese"),
    ("jordan", "jordanian"),
    ("kenya", "kenyan"),
    ("lebanon", "lebanese"),
    ("libya", "libyan"),
    ("mexico", "mexican"),
    ("morocco", "moroccan"),
    ("netherlands", "dutch"),
    ("nigeria", "nigerian"),
    ("norway", "norwegian"),
    ("pakistan", "pakistani"),
    ("peru", "peruvian"),
    ("poland", "polish"),
    ("portugal", "portuguese"),
    ("qatar", "qatari"),
    ("russia", "russian"),
    ("spain", "spanish"),
    ("sweden", "swedish"),
    ("switzerland", "swiss"),
    ("syria", "syrian"),
    ("turkey", "turkish"),
    ("uk", "british"),
    ("ukraine", "ukrainian"),
    ("us", "american"),
    ("venezuela", "venezuelan"),
    ("yemen", "yemeni"),
)
#: Countries written as acronyms, typed in capitals when the question typed the word so.
ACRONYM_COUNTRIES = frozenset({"uk", "us"})
#: How often a capitalised word must stand inside sentences of the passages to count as a
#: name that may stand in for another (once is too often a stray heading word).
MIN_NAME_COUNT = 2
_FORMS = {form: (i, k) for i, pair in enumerate(COUNTRIES) for k, form in enumerate(pair)}
#: A capitalised word or an acronym ("UN", "NATO") after a word of the same sentence.
_CAPITALISED = re.compile(r"(?<=[a-z,;] )(?:[A-Z][a-z]{2,}|[A-Z]{2,5})\b")


def name_pool(passages: Iterable[str]) -> tuple[str, ...]:
    """Capitalised words standing inside sentences of ``passages`` at least MIN_NAME_COUNT
    times (names of people, places, bodies), countries and stop words left out; sorted, so
    that a seeded draw from it is the same on every run."""
    counts = Counter(m.group() for text in passages for m in _CAPITALISED.finditer(text))
    return tuple(
        sorted(
            word
            for word, n in counts.items()
            if n >= MIN_NAME_COUNT and fold(word) not in _FORMS and fold(word) not in STOPWORDS
        )
    )


def swapped(question: str, passage: str, pool: tuple[str, ...], rng: random.Random) -> str | None:
    """``question`` with one of its names that ``passage`` mentions (a country or a word of
    ``pool``) replaced, everywhere, by another of its kind the passage does not mention, typed
    the way the question typed it (lowercase stays lowercase); None when it names nothing the
    passage holds."""
    held = set(words(passage))
    asked = words(question)
    names = {fold(w) for w in pool}
    candidates = sorted({w for w in asked if w in held and (w in _FORMS or w in names)})
    rng.shuffle(candidates)
    for word in candidates:
        stand_in = _stand_in(word, held | set(asked), pool, rng)
        if stand_in is not None:
            return _replaced(question, word, stand_in)
    return None


def _replaced(question: str, word: str, stand_in: str) -> str:
    """Every ``word`` of ``question`` (whole words, any case) replaced by ``stand_in``."""

    def typed(match: re.Match[str]) -> str:
        text = match.group()
        if text.islower():
            return stand_in.lower()
        if text.isupper() and (stand_in.isupper() or stand_in in ACRONYM_COUNTRIES):
            return stand_in.upper()
        return stand_in[0].upper() + stand_in[1:]

    return re.sub(rf"(?<![\w-]){re.escape(word)}(?![\w-])", typed, question, flags=re.IGNORECASE)


def _stand_in(word: str, avoid: set[str], pool: tuple[str, ...], rng: random.Random) -> str | None:
    """Another country in the same form as ``word`` (name or adjective), or another name of
    ``pool`` (an acronym for an acronym): one that no word of ``avoid`` is a form of."""
    if word in _FORMS:
        _, form = _FORMS[word]
        others = [pair for pair in COUNTRIES if not avoid & set(pair)]
        return rng.choice(others)[form] if others else None
    same_kind = [w for w in pool if w.isupper() == (word.upper() in pool)]
    others = [w for w in same_kind if fold(w) not in avoid]
    return rng.choice(others) if others else None
