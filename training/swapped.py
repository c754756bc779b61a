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
from dataclasses import dataclass

from qa_bot.text import MONTHS, STOPWORDS, fold, words

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
#: How many names of the pool a swap draws before it gives up.
DRAWS = 200
#: Each country word and its form: 0 for the name, 1 for the adjective.
_FORMS = {form: k for pair in COUNTRIES for k, form in enumerate(pair)}
#: At most how many of a word's appearances may be in lowercase for it to count as a name.
MAX_LOWERCASE_SHARE = 0.1
_CALENDAR = frozenset(MONTHS) | frozenset(
    "monday tuesday wednesday thursday friday saturday sunday".split()
)
#: Words never drawn as names: countries (swapped as countries), days, months, stop words.
_NOT_NAMES = frozenset(_FORMS) | _CALENDAR | STOPWORDS
_LOWERCASE = re.compile(r"\b[a-z]{3,}\b")
#: A capitalised word or an acronym ("UN", "NATO") after a word of the same sentence.
_CAPITALISED = re.compile(r"(?<=[a-z,;] )(?:[A-Z][a-z]{2,}|[A-Z]{2,5})\b")


@dataclass(frozen=True)
class NamePool:
    """The names a swap may draw (sorted, so that a seeded draw is the same on every run),
    and the same names folded, for telling whether a question's word is one."""

    names: tuple[str, ...]
    folded: frozenset[str]


def name_pool(passages: Iterable[str]) -> NamePool:
    """Capitalised words and acronyms standing inside sentences of ``passages`` at least
    MIN_NAME_COUNT times and hardly ever written in lowercase (names of people, places,
    bodies, not the "Minister" or "Council" of a title); countries, days, months and stop
    words left out."""
    texts = list(passages)
    capitalised = Counter(m.group() for text in texts for m in _CAPITALISED.finditer(text))
    lowercase = Counter(m.group() for text in texts for m in _LOWERCASE.finditer(text))
    names = sorted(
        word
        for word, n in capitalised.items()
        if n >= MIN_NAME_COUNT
        and lowercase[word.lower()] <= MAX_LOWERCASE_SHARE * (n + lowercase[word.lower()])
        and fold(word) not in _NOT_NAMES
    )
    return NamePool(tuple(names), frozenset(fold(w) for w in names))


def swapped(question: str, passage: str, pool: NamePool, rng: random.Random) -> str | None:
    """``question`` with one of its names that ``passage`` mentions (a country or a word of
    ``pool``) replaced, everywhere, by another of its kind the passage does not mention, typed
    the way the question typed it (lowercase stays lowercase); None when it names nothing the
    passage holds."""
    held = set(words(passage))
    asked = words(question)
    candidates = sorted({w for w in asked if w in held and (w in _FORMS or w in pool.folded)})
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


def _stand_in(word: str, avoid: set[str], pool: NamePool, rng: random.Random) -> str | None:
    """Another country in the same form as ``word`` (name or adjective), or another name of
    ``pool`` (an acronym for an acronym): one that no word of ``avoid`` is a form of, drawn
    at most DRAWS times (the pool is large, and nearly every draw is one)."""
    if word in _FORMS:
        form = _FORMS[word]
        others = [pair for pair in COUNTRIES if not avoid & set(pair)]
        return rng.choice(others)[form] if others else None
    if not pool.names:
        return None
    acronym = word.upper() in pool.names
    for _ in range(DRAWS):
        name = rng.choice(pool.names)
        if name.isupper() == acronym and fold(name) not in avoid:
            return name
    return None
