"""One analysis of a question, made once and read by every later stage.

Candidates, features, the answer decision and quote selection all need the same facts about a
question: its search terms (typos read as the indexed words they stand for), the words that
are only there to filter or to point at the article, the kind of answer its wording asks for,
whom or what a "Who is X?" asks about, and which of its words no article holds. Working them
out in one place keeps one definition of each.

Names are judged against the corpus's own vocabulary, never by capital letters alone: most
people type in lowercase, and "lavrov" is as much a name as "Lavrov". A word the index does
not hold, even one typo away, weighs in as *unknown*: an on-topic question about someone or
something the articles never mention shares its other words with them, and only that missing
word shows that they cannot answer it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field

from qa_bot.answer_types import (
    AnswerType,
    Definition,
    article_words,
    definition,
    expected_answer,
    points_at_article,
)
from qa_bot.article_asked import ArticleAskedModel
from qa_bot.lexicon import dictionary_neighbours, english_words
from qa_bot.store_api import Lexicon
from qa_bot.text import MONTH_NAMES, MONTHS, STOPWORDS, SURFACE_WORD, terms


@dataclass(frozen=True)
class Query:
    """What every stage needs to know about one question."""

    text: str
    #: Search terms, misspellings replaced by the indexed terms they stand for.
    terms: tuple[str, ...]
    #: Each distinct term with its IDF (rare names and numbers weigh the most).
    weights: dict[str, float] = field(default_factory=dict)
    #: Terms of the previous question(s) carried into a follow-up, searched at half weight.
    context_terms: tuple[str, ...] = ()
    #: Articles cited by the previous answer (a follow-up's topic).
    context_articles: tuple[str, ...] = ()
    #: Misspelt terms and the indexed terms they were read as.
    corrections: dict[str, tuple[str, ...]] = field(default_factory=dict)
    #: Words of the question, as typed, that no article holds even with a typo fixed.
    unknown_words: tuple[str, ...] = ()
    #: Share of the question's IDF mass carried by those words...
    unknown_share: float = 0.0
    #: ... and by those of them that are dictionary words ("putin", "imf", "aircraft"): a
    #: thing or person the articles never name, or a paraphrase; the others are mostly slips
    #: no reading fixed, or rare names.
    unknown_word_share: float = 0.0
    #: Words typed as names (capitalised past the first word, or acronyms) among those.
    unknown_names: tuple[str, ...] = ()
    #: The kind of answer the wording asks for ("how fast": a speed), if it says.
    expected: AnswerType | None = None
    #: Whom or what a "Who is X?" / "What does X stand for?" asks about.
    subject: Definition | None = None
    #: The part of the article itself a question asks for ("date", "outlet", "headline"),
    #: by :mod:`qa_bot.article_asked`; None for a question about the story.
    about: str | None = None


#: Shortest acronym taken for a name ("NATO", "ISSG"; not "SP").
MIN_ACRONYM = 3

#: Words that open the phrase saying what is asked for ("which German city").
_ASKING = frozenset({"which", "what", "whose"})


def analyse(
    question: str,
    lexical: Lexicon,
    *,
    typo_tolerance: bool = True,
    extra_terms: Sequence[str] = (),
    boost_articles: Sequence[str] = (),
    ignore_terms: Sequence[str] = (),
    about_model: ArticleAskedModel | None = None,
    about_threshold: float = 0.5,
) -> Query:
    """The question's :class:`Query` against the index's vocabulary.

    ``ignore_terms`` are words named only to filter by (an outlet: "according to TASS");
    ``extra_terms`` and ``boost_articles`` carry a conversation's previous topic;
    ``about_model`` reads whether the question asks about the article itself (at
    ``about_threshold``), whose words naming the article are then not searched for.
    """
    about = about_model.asked(question, about_threshold) if about_model is not None else None
    pointing = article_words(question) if about is not None else ()
    ignore = {t for word in [*ignore_terms, *pointing] for t in terms(word)}
    # A word whose stem is a stop word ("whats", "whos", "says") is one: nothing to search.
    q_terms = [t for t in terms(question) if t not in ignore and t not in STOPWORDS]
    corrections: dict[str, tuple[str, ...]] = {}
    typed = typed_words(question)
    ignored = {w.casefold() for name in ignore_terms for w in SURFACE_WORD.findall(name)}
    if typo_tolerance:
        names = _name_terms(question, [t for t in q_terms if not lexical.holds(t)], ignored)
        q_terms, corrections = _read_typos(typed, q_terms, lexical, names)
    weights = {t: lexical.idf(t) for t in dict.fromkeys(q_terms)}
    unknown = [t for t in weights if not lexical.holds(t)]
    total = sum(weights.values())
    unknown_words = _surface_words(question, unknown, ignored)
    return Query(
        text=question,
        terms=tuple(q_terms),
        weights=weights,
        context_terms=tuple(t for t in extra_terms if t not in weights and t not in ignore),
        context_articles=tuple(boost_articles),
        corrections=corrections,
        unknown_words=tuple(unknown_words),
        unknown_share=sum(weights[t] for t in unknown) / total if total > 0 else 0.0,
        unknown_word_share=_dictionary_share(typed, unknown, weights),
        unknown_names=_unknown_names(question, unknown_words),
        expected=expected_answer(question),
        subject=definition(question),
        about=about,
    )


def _read_typos(
    typed_as: dict[str, str], q_terms: Sequence[str], lexical: Lexicon, names: frozenset[str]
) -> tuple[list[str], dict[str, tuple[str, ...]]]:
    """Each term the index does not hold, read as the indexed terms it stands for; and the
    misspellings among them, to tell the person. A dictionary word ("arrange" for the
    articles' "arranged") is searched as the indexed form without being called a typo; a
    five-letter word that is no English word ("flyng") is read one edit away, and so is a
    short name (of ``names``) that is no English word, when one indexed word is that close."""
    dictionary = english_words()
    out: list[str] = []
    corrections: dict[str, tuple[str, ...]] = {}
    for term in q_terms:
        if lexical.holds(term):
            out.append(term)
            continue
        typed = typed_as.get(term, term).casefold()
        known = typed in dictionary
        near = _month_in_full(typed, lexical) or lexical.near_terms(term)
        near = near or (() if known else _short_slip(typed, lexical))
        if not near and not known and term in names and term not in dictionary:
            near = _name_slip(term, lexical)  # "Ki-moon" is no word, but "moon" is one
        if near and not known:
            corrections[term] = near
        out.extend(near or (term,))
    return out, corrections


def _month_in_full(typed: str, lexical: Lexicon) -> tuple[str, ...]:
    """The indexed term of the month a short name stands for ("Sept" -> September), when the
    articles write it in full: a date, never a name no article mentions."""
    number = MONTHS.get(typed.rstrip("."))
    full = terms(MONTH_NAMES[number]) if number else []
    return tuple(full) if full and full[0] != typed and lexical.holds(full[0]) else ()


#: A short word is read as what it most likely meant only when that leaves few readings.
MAX_SHORT_READINGS = 2


def _short_slip(typed: str, lexical: Lexicon) -> tuple[str, ...]:
    """The indexed terms of the dictionary words one edit from a five-letter word that is
    no word ("flyng" -> "flying" -> "fly"); none when they are more than a couple ("hight":
    high, fight, light, might...), where guessing would mislead more than help."""
    if len(typed) != SHORT_SLIP_LENGTH:
        return ()
    found = {t for word in dictionary_neighbours(typed) for t in terms(word) if lexical.holds(t)}
    return tuple(sorted(found)) if 0 < len(found) <= MAX_SHORT_READINGS else ()


#: A short unknown name is read as an indexed word one slip away only when that word is the
#: only one: "Powr" for "power" in "what did Samantha Powr say". A name no article mentions
#: is rarely one slip from exactly one indexed word (benchmarks/README.md, "Tenth round").
MAX_NAME_READINGS = 1


def _name_slip(term: str, lexical: Lexicon) -> tuple[str, ...]:
    """The one indexed word a short unknown name slipped from, or none: without it, a typo
    in a name declines the question as naming someone no article mentions."""
    found = lexical.slip_readings(term)
    return found if 0 < len(found) <= MAX_NAME_READINGS else ()


def _name_terms(question: str, missing: Sequence[str], ignored: set[str]) -> frozenset[str]:
    """The terms, of those the index does not hold, that the question uses as names (what
    :func:`_unknown_names` would decline it for), before any typo is read."""
    if not missing:  # most questions: every word indexed
        return frozenset()
    words = _unknown_names(question, _surface_words(question, missing, ignored))
    return frozenset(t for word in words for t in terms(word))


#: The length of word read with one slip fixed by the dictionary: longer ones are read
#: against the index's own words (``LexicalIndex.near_terms``).
SHORT_SLIP_LENGTH = 5


def surface(text: str, term: str) -> str | None:
    """The word of ``text``, as written, that yields ``term``."""
    return typed_words(text).get(term)


def typed_words(text: str) -> dict[str, str]:
    """Each term of ``text`` and the first word, as written, that yields it: :func:`surface`
    for every term at once, read in one pass over the question."""
    found: dict[str, str] = {}
    for match in SURFACE_WORD.finditer(text):
        for term in terms(match.group()):
            found.setdefault(term, match.group())
    return found


def _dictionary_share(
    typed_as: dict[str, str], unknown: Sequence[str], weights: dict[str, float]
) -> float:
    total = sum(weights.values())
    if total <= 0:
        return 0.0
    dictionary = english_words()
    found = [t for t in unknown if typed_as.get(t, t).casefold() in dictionary]
    return sum(weights[t] for t in found) / total


def _surface_words(question: str, unknown: Sequence[str], ignored: set[str]) -> list[str]:
    """The question's words, as typed, whose terms are all among ``unknown``."""
    missing = set(unknown)
    found: list[str] = []
    for match in SURFACE_WORD.finditer(question):
        word = match.group()
        word_terms = terms(word)
        if word.casefold() in ignored or not word_terms:
            continue
        if all(t in missing for t in word_terms) and word not in found:
            found.append(word)
    return found


_SPEAKER = re.compile(
    r"\b(?:what|how|why|whom?|which \w+)\s+(?:did|does|do|has|have|had|would|will)\s+"
    r"(?P<speaker>.+?)\s+(?:say|tell|call|describe|claim|think|believe|suspect|accuse|blame"
    r"|warn|refer|mean|propose|suggest|characteri[sz]e|insist|argue|admit|deny|add)\b"
    r"|\baccording to\s+(?P<source>[^,?]+?)(?=\s*[,?]|\s*$|\s+(?:what|whats|who|whom|whose"
    r"|when|where|which|why|how|is|are|was|were|do|does|doesnt|did|has|have|had|can|could"
    r"|will|would|should)\b)",
    re.IGNORECASE,
)


def speaker(question: str) -> str | None:
    """Who the question says said it: "Samantha Power" in "What did Samantha Power say
    ...?", "TASS" in "according to TASS, ..." and in "according to tass what ...": the source
    ends where the question it asks begins, so that no word of that question is taken for
    part of a name ("whats" in "according to lavrov whats the ...")."""
    match = _SPEAKER.search(question)
    return (match.group("speaker") or match.group("source")) if match else None


def _unknown_names(question: str, unknown_words: Sequence[str]) -> tuple[str, ...]:
    """The unknown words that name someone or something: typed as a name, or, in any case,
    naming the speaker of "what did X say": "what did boris johnson say about aleppo" cannot
    be answered by articles that never mention him, however it is typed. Of the speaker's
    words, the first one that is not a stop word identifies them ("iran's foreign minister",
    "the white house press secretary"); a later unknown word counts when it is no
    dictionary word ("ban ki-moon"), so a paraphrased title ("the russian envoy" for the
    articles' "ambassador") still searches."""
    # Two letters are too often the question's own shorthand ("the SP" for the articles'
    # "Scottish Parliament"), as with acronyms typed as names.
    # "What does the article say?": the article speaks, and the question names it; so does
    # a part of it ("the closing paragraph of the report", "the article quoting Churkin"),
    # whose other words describe the article, not someone who spoke.
    words = SURFACE_WORD.findall(speaker(question) or "")
    article_speaks = any(points_at_article(w) for w in words)
    said_by = [w for w in words if terms(w) and len(w) >= 3 and not points_at_article(w)]
    unknown = {w.casefold() for w in unknown_words}
    dictionary = english_words()
    named = {
        w.casefold()
        for i, w in enumerate(said_by)
        if w.casefold() in unknown
        and ((i == 0 and not article_speaks) or w.casefold() not in dictionary)
    }
    return tuple(w for w in unknown_words if w.casefold() in named or _typed_as_name(question, w))


def _typed_as_name(question: str, word: str) -> bool:
    """Whether ``word`` is typed as a name: an acronym of three letters or more, or a
    capitalised word past the first, not inside the asking phrase ("In which *German* city",
    "Which *NATO* chief" describe the answer, which an article can name without the word)."""
    previous = ""
    for i, match in enumerate(SURFACE_WORD.finditer(question)):
        current, before = match.group(), previous
        previous = current.casefold()
        if current != word:
            continue
        if before in _ASKING:
            return False
        if current.isupper():
            return len(current) >= MIN_ACRONYM
        return i > 0 and current[0].isupper()
    return False
