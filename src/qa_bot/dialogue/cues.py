"""Whether a message leans on the conversation before it: pure functions of text.

A message is a *follow-up* when it plainly leans on what came before:

* it replies to the bot's own answer (Telegram);
* it points back with a pronoun or a demonstrative that has no antecedent in the question itself:
  "When was *that*?", "Who said *it*?", "How many were injured *there*?", "What did *he* say?";
* it names only an outlet: "According to TASS?";
* it is a full question with at most one content word that names nobody ("Why?", "How many
  died?"), or two for a count ("How many soldiers were killed?");
* it opens with a connective: "And ...", "What about ...", "How about ...", "Also ...";
* it is a fragment: "In Aleppo?", "Zanzibar budget".

The first four point back by themselves. The last two only say that the message is short or
loose: when such a message brings content words of its own and none of them belongs to the
previous topic (its key words, or the words of the articles its answer cited), it is a new
topic ("Zanzibar budget", "What about flamingos?") and is asked alone. When one of them does
belong ("And what did Churkin say?" after a question about Lavrov, in an article that quotes
Churkin too), it is a follow-up that names something new, searched within the previous topic
(:mod:`qa_bot.dialogue.asking`). That one rule, :func:`read_message`, serves both.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from collections.abc import Set as AbstractSet
from dataclasses import dataclass

from qa_bot.filters import outlet_in_question
from qa_bot.text import terms

_TOKEN = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*", re.UNICODE)

#: A question with this few content words and no name cannot pick out an event by itself
#: ("Why?", "How many died?"); a count needs its event even with two ("How many soldiers were
#: killed?"), while "Who attacked the convoy?" stands alone.
MAX_VAGUE_WORDS = 1
MAX_VAGUE_COUNT_WORDS = 2

_WH = frozenset("what who whom whose which when where why how".split())
_AUX = frozenset(
    """
    is are was were be been am do does did has have had can could will would shall should may
    might must 's
    """.split()
)
_PREPOSITIONS = frozenset(
    """
    about after against at before behind by during for from in into of on over since through to
    toward towards under with without than like beyond despite
    """.split()
)
_CONNECTIVES = frozenset("and but also so plus or then unless because".split())
_LEADING_PHRASES = (
    ("what", "about"),
    ("how", "about"),
    ("what", "else"),
    ("anything", "else"),
    ("what", "of"),
    ("same", "for"),
    ("same", "question"),
    ("tell", "me", "more"),
    ("more", "on"),
    ("more", "about"),
)
_PERSONAL = frozenset("he she they him her them his their hers theirs himself herself".split())
_DEMONSTRATIVES = frozenset("this these those".split())
_TIME_WORDS = frozenset(
    "week month year morning afternoon evening night time weekend summer winter autumn".split()
)
_EXPLETIVE = frozenset(
    """
    hard difficult easy possible impossible likely unlikely necessary clear true known said
    reported believed thought claimed time
    """.split()
)
#: Verbs and particles of the question's frame ("What did X *tell* Y", "*try* to"), and other
#: words that are not the topic: carried into a follow-up they only dilute it.
_FRAME = frozenset(
    terms(
        """
        tell call try include propose rule mention spot spotted near go going gone taken take
        give make get come see show carry carried think want put ask use keep let seem like
        really actually ever instead via per across along among amid around inside outside
        within toward towards upon onto unless whether yet already long exactly
        """
    )
)
#: Words that are content words to the search but say nothing about the topic.
_GENERIC = frozenset(
    terms(
        """
        happen happened happening mean means meant exactly else again detail details thing things
        source sources article articles quote quotes please know think people
        """
    )
)


def tokens(question: str) -> list[str]:
    return _TOKEN.findall(question)


def is_content(word: str) -> bool:
    low = word.casefold()
    if low in _WH or low in _AUX or low in _PERSONAL or low in _DEMONSTRATIVES:
        return False
    return any(t not in _GENERIC for t in terms(word))


def _is_name(word: str, position: int) -> bool:
    """A capitalized content word (a name, an acronym) that is not merely sentence-initial."""
    if not word[:1].isupper() or not is_content(word):
        return False
    return position > 0 or (word.isupper() and len(word) > 1)


def _points_back(i: int, low: Sequence[str], seen_content: bool) -> bool:
    """Whether ``low[i]`` is a pronoun or demonstrative whose antecedent is outside the question."""
    word = low[i]
    prev = low[i - 1] if i else ""
    nxt = low[i + 1] if i + 1 < len(low) else ""
    last = i == len(low) - 1
    if word in _PERSONAL:
        return last or not seen_content
    if word in {"it", "its"}:
        # Rarely has an antecedent inside a question; only "is it possible that" is idle.
        expletive = nxt in _EXPLETIVE or (
            nxt in {"is", "was", "'s", "seems", "seemed"}
            and i + 2 < len(low)
            and low[i + 2] in _EXPLETIVE
        )
        return not expletive
    if word == "that":
        # "about that", "was that", "That's ..." point back; "the strike that killed"
        # (relative) and "say that the ..." (complementizer) do not.
        return last or not prev or prev in _PREPOSITIONS or prev in _AUX or prev in _WH
    if word in _DEMONSTRATIVES:
        return not (nxt in _TIME_WORDS or (word == "those" and nxt in {"who", "which", "that"}))
    if word == "there":
        return not (nxt in _AUX or (prev in _AUX and not last))
    return word == "then"


def _anaphor(words: Sequence[str]) -> str | None:
    """The first pronoun or demonstrative that points outside the question, if any."""
    # "that's", "it's": the pronoun is what counts
    low = [re.sub(r"'s$", "", t.casefold().replace("’", "'")) for t in words]
    seen_content = False
    for i in range(len(low)):
        if _points_back(i, low, seen_content):
            return words[i]
        if is_content(words[i]):
            seen_content = True
    return None


def _without_outlet(question: str, outlets: Iterable[str]) -> tuple[list[str], bool]:
    """The question's tokens without the words of the outlet it names; and whether it named one."""
    found = tokens(question)
    named = outlet_in_question(question, list(outlets))
    if not named:
        return found, False
    skip = {w.casefold() for w in named.split()}
    return [t for t in found if t.casefold() not in skip], True


def _loose_cue(words: Sequence[str]) -> str | None:
    """A cue that says the message is short or loose, not that it points back."""
    low = [t.casefold() for t in words]
    if low[0] in _CONNECTIVES:
        return f"starts with “{words[0]}”"
    for phrase in _LEADING_PHRASES:
        if tuple(low[: len(phrase)]) == phrase:
            return f"starts with “{' '.join(words[: len(phrase)])}”"
    if len(words) <= 3 and low[0] not in _WH and low[0] not in _AUX:
        return "a fragment, not a full question"
    return None


def _too_vague(words: Sequence[str]) -> bool:
    low = [t.casefold() for t in words]
    content = [t for t in words if is_content(t)]
    counting = low[:2] in (["how", "many"], ["how", "much"])
    limit = MAX_VAGUE_COUNT_WORDS if counting else MAX_VAGUE_WORDS
    return len(content) <= limit and not any(_is_name(t, i) for i, t in enumerate(words))


@dataclass(frozen=True)
class Cue:
    """Why a message reads as a follow-up. ``points_back``: it refers to something earlier by
    itself (a pronoun, a reply, an outlet alone); otherwise it is only short or loose."""

    reason: str
    points_back: bool


def find_cue(
    question: str, *, outlets: Iterable[str] = (), is_reply_to_bot: bool = False
) -> Cue | None:
    """The follow-up cue of ``question``, or None when it reads as a question on its own.

    ``outlets`` are the outlet names of the index: naming one ("according to TASS") only filters,
    so it does not count as a content word.
    """
    if is_reply_to_bot:
        return Cue("a reply to the bot's answer", points_back=True)
    words, named = _without_outlet(question, outlets)
    if not words:
        return Cue("names only an outlet", points_back=True) if named else None
    pointer = _anaphor(words)
    loose = _loose_cue(words)
    if loose is not None:
        return Cue(loose, points_back=pointer is not None)
    if pointer is not None:
        return Cue(f"“{pointer}” refers to something earlier", points_back=True)
    if _too_vague(words):
        # A full question that does not say what it is about ("How many died?") leans on the
        # topic as plainly as a pronoun does.
        return Cue("too few words to stand alone", points_back=True)
    return None


def follow_up_cue(
    question: str, *, outlets: Iterable[str] = (), is_reply_to_bot: bool = False
) -> str | None:
    """Why ``question`` reads as a follow-up (a short phrase), or None when it stands alone."""
    cue = find_cue(question, outlets=outlets, is_reply_to_bot=is_reply_to_bot)
    return cue.reason if cue is not None else None


def key_words(question: str, *, outlets: Iterable[str] = ()) -> tuple[str, ...]:
    """The words that carry a question's topic, as written: names and nouns, not stop words,
    question words, the question's frame ("What did X *tell* Y") or outlet names."""
    words, _ = _without_outlet(question, outlets)
    kept: list[str] = []
    found: list[str] = []
    for token in words:
        if not is_content(token):
            continue
        new = [t for t in terms(token) if t not in _GENERIC and t not in _FRAME and t not in found]
        if new:
            kept.append(token)
            found.extend(new)
    return tuple(kept)


@dataclass(frozen=True)
class Reading:
    """How a message relates to the topic before it.

    ``cue`` says why it is a follow-up (None: it is asked alone). ``new_words`` are its key
    words that the topic did not have: for a follow-up, what it adds to the topic ("Churkin" in
    "And what did Churkin say?"). ``topic_change`` says why a loose cue was overruled.
    """

    cue: str | None
    new_words: tuple[str, ...] = ()
    topic_change: str | None = None

    @property
    def follow_up(self) -> bool:
        return self.cue is not None


def read_message(
    question: str,
    topic_words: Sequence[str] | None,
    topic_vocabulary: Callable[[], AbstractSet[str]],
    *,
    outlets: Iterable[str] = (),
    is_reply_to_bot: bool = False,
) -> Reading:
    """Whether ``question`` continues the topic whose key words are ``topic_words`` (None: there
    is no topic), the one rule for follow-ups and for topic changes.

    ``topic_vocabulary`` gives the search terms of the articles the topic's answer cited; it is
    called only for a loose cue with new words, the one case that needs it.
    """
    if topic_words is None:
        return Reading(None)
    outlets = list(outlets)
    cue = find_cue(question, outlets=outlets, is_reply_to_bot=is_reply_to_bot)
    if cue is None:
        return Reading(None)
    topic_terms = {t for w in topic_words for t in terms(w)}
    new = tuple(w for w in key_words(question, outlets=outlets) if not set(terms(w)) <= topic_terms)
    if cue.points_back or not new:
        return Reading(cue.reason, new)
    vocabulary = topic_vocabulary()
    if any(t in vocabulary or t in topic_terms for w in new for t in terms(w)):
        return Reading(cue.reason, new)
    return Reading(None, new, topic_change=f"{', '.join(new)}: nothing of the previous topic")


__all__ = [
    "Cue",
    "Reading",
    "find_cue",
    "follow_up_cue",
    "is_content",
    "key_words",
    "read_message",
    "tokens",
]
