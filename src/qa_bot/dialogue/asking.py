"""Asking in a conversation: a follow-up is searched with the previous turn's topic.

The key words of the question that opened the topic (names and nouns, not the question's
frame: "What did X *tell* Y") are appended to the text that is embedded, matched and checked
for coverage, and the articles the previous answer cited get a small bonus
(``boost_articles``). The answer still shows the user's own question, with a note naming the
question whose topic was used. Any other question is asked exactly as if it came alone, and
becomes the topic for what follows.

Why the words go into the text rather than into ``extra_terms`` alone: the service embeds and
checks coverage on the question only, so "When was that?" (no content word) could only ever be
declined. Measured on ``tests/dialogues.jsonl``, the text route is also the better one (see
:mod:`qa_bot.dialogue.evaluation`).

A follow-up that names something new ("And what did Churkin say?") must not bring back the
previous answer unchanged: when the topic's words pull the same quotes again and they do not
mention the new words, it is asked again with those quotes left out.

A follow-up that only names another outlet ("and what does tass say?") asks the previous
question again, without the outlet it named, of that outlet's articles: the same question of
another source, not the topic's words appended to "what does tass say".

"Who said that?" after an answer asks whose words its first quote holds: the reply is the
sentence of the article that names them (the quote's own, or the one naming the speaker of its
"he said"), not a new search, or that the article does not name them there; only when the
article has left the index is it asked as any other follow-up.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qa_bot.answer_types import points_at_article
from qa_bot.dialogue.cues import Reading, key_words, read_message
from qa_bot.dialogue.memory import Conversation, Turn
from qa_bot.filters import SearchFilters, outlet_in_question, without_outlet
from qa_bot.models import Span
from qa_bot.speakers import asks_who_said_it
from qa_bot.text import terms

if TYPE_CHECKING:
    from qa_bot.models import Answer
    from qa_bot.service import QAService

#: The most context words a follow-up carries along (a long first question is mostly its topic).
MAX_CONTEXT_WORDS = 8


def context_note(topic_question: str, *, replied: bool = False) -> str:
    """The remark shown with an answer that used the conversation's context; ``replied``: the
    context came from the answer the message replied to (in a group, maybe someone else's)."""
    whose = "the question you replied to" if replied else "your previous question"
    return f"Taking {whose} into account: “{topic_question}”."


@dataclass(frozen=True)
class Reply:
    """An answer and how the conversation shaped it (for fronts, logs and the evaluation)."""

    answer: Answer
    follow_up: bool
    cue: str | None
    #: The question whose topic was used; None when the question stood alone.
    topic: str | None = None
    #: The text that was searched (the question, plus the topic's words for a follow-up): what
    #: to search again for further passages ("More" in the bot).
    searched: str = ""
    #: The turn this question left in the conversation: what a later reply to this very
    #: answer builds on (the bot keeps it by message).
    turn: Turn | None = None
    #: Why a short question was taken as a new topic rather than a follow-up, if it was.
    topic_change: str | None = None


def answer_in_context(
    service: QAService,
    previous: Turn | None,
    question: str,
    *,
    is_reply_to_bot: bool = False,
    filters: SearchFilters | None = None,
    now: float | None = None,
    replied_context: bool = False,
) -> Reply:
    """Answer ``question`` after the turn ``previous`` (None: nothing came before), with that
    turn's topic when the question is a follow-up. Records nothing: the caller keeps
    ``reply.turn``. ``replied_context``: ``previous`` is the turn of the answer the message
    replies to, which the note then names as such.

    Raises InvalidQuestionError for a question the service refuses.
    """
    question = service.check_question(question)
    now = time.time() if now is None else now
    said = _who_said_it(service, previous, question, now, replied_context)
    if said is not None:  # answered from the previous quote: no reading of the message needed
        return said
    outlets = service.outlets()
    reading = read_message(
        question,
        previous.words if previous is not None else None,
        lambda: service.vocabulary(previous.articles if previous is not None else ()),
        outlets=outlets,
        is_reply_to_bot=is_reply_to_bot,
    )
    own = key_words(question, outlets=outlets)
    if previous is None or not reading.follow_up:
        answer = service.ask(question, filters=filters)
        turn = Turn(
            answer.question, own, _cited(answer), now, answer.question, quoted=_spans(answer)
        )
        return Reply(
            answer,
            follow_up=False,
            cue=None,
            searched=answer.question,
            turn=turn,
            topic_change=reading.topic_change,
        )
    switch = _outlet_switch(previous, question, reading, outlets)
    return _follow_up(
        service, previous, question, reading, own, filters, now, replied_context, switch
    )


def _follow_up(
    service: QAService,
    previous: Turn,
    question: str,
    reading: Reading,
    own: tuple[str, ...],
    filters: SearchFilters | None,
    now: float,
    replied: bool,
    switch: tuple[str, str] | None,
) -> Reply:
    base = question
    if switch is not None:  # "and what does tass say?": the previous question, at that outlet
        base, outlet = switch
        filters = dataclasses.replace(filters or SearchFilters(), outlets=(outlet,))
    in_question = set(terms(base))
    missing = [w for w in previous.words if not all(t in in_question for t in terms(w))]
    extra_words = missing[:MAX_CONTEXT_WORDS]
    asked = f"{base.rstrip()} {' '.join(extra_words)}" if extra_words else base
    if len(asked) > service.settings.max_question_chars:
        asked = base
    kwargs = {
        "filters": filters,
        "boost_articles": previous.articles,
        "notes": (context_note(previous.topic, replied=replied),),
    }
    answer = service.ask(asked, **kwargs)
    if _repeats(answer, previous, reading.new_words) and not _still_answers(service, answer):
        answer = service.ask(asked, avoid=previous.quoted, **kwargs)
    searched = answer.question
    if asked != question:
        answer = dataclasses.replace(answer, question=question)
    turn = Turn(
        question=answer.question,
        words=_merge(own, extra_words)[:MAX_CONTEXT_WORDS],
        articles=_cited(answer) or previous.articles,
        at=now,
        topic=previous.topic,
        follow_up=True,
        quoted=_spans(answer),
    )
    return Reply(
        answer, follow_up=True, cue=reading.cue, topic=previous.topic, searched=searched, turn=turn
    )


def _outlet_switch(
    previous: Turn, question: str, reading: Reading, outlets: Sequence[str]
) -> tuple[str, str] | None:
    """A follow-up that only names another outlet ("and according to TASS?", "what does the rt
    piece say"): the previous question without the outlet it named (the topic's words are
    added to it as to any follow-up), and the outlet now asked about. None for any other
    follow-up: one with words of its own, other than words naming the article, is searched
    with the topic's words."""
    if any(not points_at_article(w) for w in reading.new_words):
        return None
    named = outlet_in_question(question, outlets)
    before = outlet_in_question(previous.question, outlets)
    if named is None or named == before:
        return None
    return (without_outlet(previous.question, before) if before else previous.question), named


def _who_said_it(
    service: QAService, previous: Turn | None, question: str, now: float, replied: bool
) -> Reply | None:
    """The reply to "who said that?" after an answer: the sentence naming whose words its
    first quote holds, or that the article does not say; None when the question is something
    else or the article has left the index (it is then asked as any other)."""
    if previous is None or not previous.quoted or not asks_who_said_it(question):
        return None
    note = context_note(previous.topic, replied=replied)
    answer = service.speaker(question, previous.quoted[0], notes=(note,))
    if answer is None:
        return None
    turn = dataclasses.replace(
        previous,
        question=question,
        at=now,
        follow_up=True,
        quoted=_spans(answer) or previous.quoted,
    )
    topic = previous.topic
    return Reply(answer, follow_up=True, cue=None, topic=topic, searched=topic, turn=turn)


def _repeats(answer: Answer, previous: Turn, new_words: Sequence[str]) -> bool:
    """Whether a follow-up that names something new got the previous answer's quotes again,
    none of which mentions what it names."""
    if not new_words or not previous.quoted or _spans(answer) != previous.quoted:
        return False
    wanted = {t for w in new_words for t in terms(w)}
    return not any(wanted & set(terms(c.quote)) for c in answer.citations)


def _still_answers(service: QAService, answer: Answer) -> bool:
    """Whether the learned order is confident that the previous quotes, brought back by a
    follow-up whose new words they do not hold, answer it all the same (the ceasefire's
    quote, which says how long it lasted): their word overlap alone cannot tell that from a
    follow-up about someone else ("And what did Churkin say?"). A citation's score is the
    learned order's probability only under the learned ranker."""
    settings = service.settings
    if settings.retrieval.ranker != "learned" or not answer.citations:
        return False
    return answer.citations[0].score >= settings.conversation.keep_quoted_score


def ask_in_conversation(
    service: QAService,
    conversation: Conversation,
    question: str,
    *,
    filters: SearchFilters | None = None,
    now: float | None = None,
) -> Reply:
    """Answer ``question`` after the conversation's latest turn, and record its own turn (a
    question the service refuses as invalid raises and is not recorded)."""
    now = time.time() if now is None else now
    reply = answer_in_context(service, conversation.last(now), question, filters=filters, now=now)
    if reply.turn is not None:
        conversation.add(reply.turn)
    return reply


def _cited(answer: Answer) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.article.id for c in answer.citations))


def _spans(answer: Answer) -> tuple[Span, ...]:
    return tuple(c.place for c in answer.citations)


def _merge(first: Sequence[str], second: Sequence[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for word in [*first, *second]:
        key = word.casefold()
        if key not in seen:
            seen.add(key)
            out.append(word)
    return tuple(out)


__all__ = ["Reply", "answer_in_context", "ask_in_conversation", "context_note"]
