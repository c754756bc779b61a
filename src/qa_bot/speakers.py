"""Who is speaking in a sentence of news, when the sentence itself does not say.

News names a speaker once ("Russian Deputy Foreign Minister Sergey Ryabkov told reporters")
and then goes on with "he said", "she added", "the top diplomat said", sometimes for several
paragraphs. A quote of those later words answers "what was said" but not "who said it"; the
speaker is the one the article last named as speaking before them. This module tells an
attribution that names its speaker from one that does not, and finds the sentence that names
them: later in the same paragraph, or earlier in the article.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from qa_bot.text import STOPWORDS, terms

#: Verbs that report speech or a stated position.
_SPEECH = (
    r"(?:said|says|told|added|stated|noted|stressed|warned|explained|insisted|argued|claimed|"
    r"declared|announced|emphasi[sz]ed|urged|replied|remarked|commented|pointed\s+out)"
)
#: A name as news writes it: capitalised words, a title included ("Deputy Foreign Minister
#: Sergey Ryabkov"), joined by the particles names carry.
_NAME = r"(?-i:[A-Z][\w’'.-]+(?:\s+(?:al-|bin\s+|de\s+|van\s+|von\s+)?[A-Z][\w’'.-]+){0,5})"
#: "Ryabkov told", "Zakharova, the ministry's spokeswoman, said", "said Zakharova",
#: "according to Lavrov".
_NAMED = re.compile(
    rf"(?P<before>{_NAME})(?:,[^,.;]{{1,80}},|,)?\s+(?:has\s+|had\s+)?{_SPEECH}\b"
    rf"|\b(?:said|says|added|according\s+to)\s+(?P<after>{_NAME})",
    re.IGNORECASE,
)
#: The words are someone's, but the sentence does not name them: "..., she said", "the top
#: diplomat said", "the high-ranking diplomat told reporters", "said the minister".
UNNAMED = re.compile(
    r"\b(?:he|she|they|it)\s+(?:said|says|added|told)\b"
    r"|\b(?:said|says|added)\s+(?:he|she|they)\b"
    r"|\b(?:said|says|added)\s+the\s+[a-z]+\b"
    r"|\bthe\s+[a-z-]+(?:\s+[a-z-]+)?\s+(?:said|says|added|told)\b",
    re.IGNORECASE,
)


#: "who said ...", "which official warned ...", "who was it that called ...", "who came out
#: with the line ...": the question asks whose words they are.
_ASKS_SPEAKER = re.compile(
    r"\b(?:who|which\s+[\w’'-]+(?:\s+[\w’'-]+)?)(?:\s+[\w’'-]+){0,3}?\s+"
    r"(?:said|says|say|told|tells|called|calls|claimed|claims|warned|warns|described|describes|"
    r"accused|accuses|stated|states|added|insisted|argued|argues|remarked|commented|blamed|"
    r"pointed\s+out|came\s+out\s+with)\b",
    re.IGNORECASE,
)


def asks_speaker(question: str) -> bool:
    """Whether the question asks who said something (not who someone is, or who did it)."""
    return bool(_ASKS_SPEAKER.search(question))


#: "who said that?", "and who said so", "whose words are those?": the question asks whose
#: words an earlier answer quoted, and names nothing else.
_THAT = r"(?:that|this|it|so|those|these)"
_WORDS = r"(?:words?|quotes?|line|statement|remarks?|claims?|comments?|one)"
_WHO_SAID_IT = re.compile(
    r"^\W*(?:(?:and|so|but|ok|okay)\W+)?(?:"
    r"(?:who|whom)(?:['’]?s)?(?:\s+[\w’'-]+){0,3}?\s+(?:said|says|say|saying|told|wrote|"
    r"claimed|claims|claiming|stated|reported|reporting|came\s+out\s+with)"
    rf"(?:\s+{_THAT})?(?:\s+{_WORDS})?"
    rf"|(?:who|whom)(?:['’]?s)?\s+(?:made|makes|making)\s+{_THAT}\s+{_WORDS}"
    r"|whose\s+(?:words|quote|line|statement|remarks?)\s+(?:is|are|was|were)\s+"
    r"(?:that|this|it|those|these)"
    r")\W*$",
    re.IGNORECASE,
)


def asks_who_said_it(question: str) -> bool:
    """Whether the question only asks whose words were just quoted ("who said that?")."""
    return bool(_WHO_SAID_IT.match(question))


def named_speaker(sentence: str) -> str | None:
    """The name of whoever the sentence says is speaking, if it names them ("It said" and
    "The minister said" name no one)."""
    for match in _NAMED.finditer(sentence):
        name = match.group("before") or match.group("after")
        words = [w for w in name.rstrip(".’'-").split() if w.casefold() not in STOPWORDS]
        if words:
            return " ".join(words)
    return None


def sentences_in(spans: Sequence[tuple[int, int]], start: int, end: int) -> list[int]:
    """The indexes of the sentences ``spans`` that share text with ``start:end`` (a quote)."""
    return [i for i, (a, b) in enumerate(spans) if a < end and start < b]


def speaker_of(
    text: str,
    spans: Sequence[tuple[int, int]],
    index: int,
    lookback: int,
    asked: set[str],
) -> tuple[int, int] | None:
    """The span of the sentence naming whose words ``spans[index]`` (a sentence of ``text``)
    reports, someone whose surname the question (its terms ``asked``) does not hold: a
    sentence of its own paragraph that names a speaker ("...” she added, “...” Samantha Power
    said.), the later ones first; else, when the paragraph gives the words to someone it does
    not name ("...," he said), the nearest sentence before the paragraph that names a
    speaker, at most ``lookback`` sentences back. None when the paragraph reports no one's
    words."""
    first, last = index, index
    while first > 0 and "\n" not in text[spans[first - 1][1] : spans[first][0]]:
        first -= 1
    while last + 1 < len(spans) and "\n" not in text[spans[last][1] : spans[last + 1][0]]:
        last += 1
    paragraph = [*range(index + 1, last + 1), *range(index, first - 1, -1)]
    found = _named_among(text, spans, paragraph, asked)
    if found is not None or not any(UNNAMED.search(text[slice(*spans[i])]) for i in paragraph):
        return found
    return _named_among(text, spans, range(first - 1, max(-1, first - 1 - lookback), -1), asked)


def _named_among(
    text: str, spans: Sequence[tuple[int, int]], order: Iterable[int], asked: set[str]
) -> tuple[int, int] | None:
    for i in order:
        name = named_speaker(text[slice(*spans[i])])
        if name is not None and not set(terms(name.split()[-1])) <= asked:  # the surname
            return spans[i]
    return None
