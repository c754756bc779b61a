"""Follow-up questions without an LLM: a short per-chat memory and clear linguistic cues.

A chat remembers its last few turns (the question, its key words, the articles the answer cited)
for a limited time. A new message is a *follow-up* when it plainly leans on what came before:

* it replies to the bot's own answer (Telegram);
* it opens with a connective: "And ...", "What about ...", "How about ...", "Also ...";
* it is a fragment: "According to TASS?", "In Aleppo?", "Why?";
* it points back with a pronoun or a demonstrative that has no antecedent in the question itself:
  "When was *that*?", "Who said *it*?", "How many were injured *there*?", "What did *he* say?";
* it has at most one content word and names nobody ("Why?", "How many died?"), or two for a
  count ("How many soldiers were killed?").

A follow-up is searched with the previous turn's *topic*: the key words of the question that
opened it (names and nouns, not the question's frame: "What did X *tell* Y") are appended to the
text that is embedded, matched and checked for coverage, and the articles the previous answer
cited get a small bonus (``boost_articles``). The answer still shows the user's own question,
with a note naming the question whose topic was used. Any other question is asked exactly as if
it came alone, and becomes the topic for what follows.

Why the words go into the text rather than into ``extra_terms`` alone: the service embeds and
checks coverage on the question only, so "When was that?" (no content word) could only ever be
declined. Measured on ``tests/dialogues.jsonl``, the text route is also the better one (see
:mod:`qa_bot.conversation_eval`).

Nothing here touches the network, the terminal or Telegram. :class:`Conversations` keeps the
chats in memory and writes them to disk (JSON, atomically) only when ``persist_path`` is set.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import re
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable, Hashable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qa_bot.files import atomic_write_text
from qa_bot.filters import SearchFilters, outlet_in_question
from qa_bot.service import MAX_QUESTION_CHARS, validate_question
from qa_bot.text import terms

if TYPE_CHECKING:
    from qa_bot.models import Answer
    from qa_bot.service import QAService
    from qa_bot.settings import ConversationSettings

log = logging.getLogger(__name__)

ChatId = Hashable
Clock = Callable[[], float]

#: The most context words a follow-up carries along (a long first question is mostly its topic).
MAX_CONTEXT_WORDS = 8
#: A question with this few content words and no name cannot pick out an event by itself
#: ("Why?", "How many died?"); a count needs its event even with two ("How many soldiers were
#: killed?"), while "Who attacked the convoy?" stands alone.
MAX_VAGUE_WORDS = 1
MAX_VAGUE_COUNT_WORDS = 2
#: Chats kept in memory at most; the least recently active are forgotten first.
MAX_CHATS = 10_000
PERSIST_VERSION = 1


def context_note(topic_question: str, *, replied: bool = False) -> str:
    """The remark shown with an answer that used the conversation's context; ``replied``: the
    context came from the answer the message replied to (in a group, maybe someone else's)."""
    whose = "the question you replied to" if replied else "your previous question"
    return f"Taking {whose} into account: “{topic_question}”."


# --- state ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Turn:
    """One question of a chat, as later follow-ups need it.

    ``words`` are the key words of the topic as the user wrote them; for a follow-up they
    include the topic inherited from the turn it followed, so a chain "Who attacked the
    convoy?" / "When was that?" / "And according to TASS?" keeps the convoy. ``articles`` are
    the articles its answer cited, ``topic`` the question that introduced the topic (quoted in
    the note).
    """

    question: str
    words: tuple[str, ...]
    articles: tuple[str, ...]
    at: float
    topic: str
    follow_up: bool = False

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Turn:
        return cls(
            question=str(data["question"]),
            words=tuple(str(w) for w in data["words"]),
            articles=tuple(str(a) for a in data["articles"]),
            at=float(data["at"]),
            topic=str(data.get("topic") or data["question"]),
            follow_up=bool(data.get("follow_up", False)),
        )


class Conversation:
    """The recent turns of one chat: at most ``max_turns``, each forgotten after ``ttl_seconds``.

    ``ttl_seconds=0`` keeps no context at all: every question stands alone.
    """

    def __init__(self, ttl_seconds: float = 900, max_turns: int = 3):
        self.ttl_seconds = ttl_seconds
        self.max_turns = max(1, max_turns)
        self._turns: deque[Turn] = deque(maxlen=self.max_turns)

    def turns(self, now: float | None = None) -> list[Turn]:
        """The turns still remembered at ``now``, oldest first."""
        now = time.time() if now is None else now
        while self._turns and not self._alive(self._turns[0], now):
            self._turns.popleft()
        return [t for t in self._turns if self._alive(t, now)]

    def last(self, now: float | None = None) -> Turn | None:
        alive = self.turns(now)
        return alive[-1] if alive else None

    def add(self, turn: Turn) -> None:
        if self.ttl_seconds > 0:
            self._turns.append(turn)

    def reset(self) -> None:
        self._turns.clear()

    def __len__(self) -> int:
        return len(self._turns)

    def _alive(self, turn: Turn, now: float) -> bool:
        return self.ttl_seconds > 0 and now - turn.at < self.ttl_seconds


# --- deciding whether a message is a follow-up ---------------------------------------------------

_TOKEN = re.compile(r"[^\W_]+(?:['’\-][^\W_]+)*", re.UNICODE)

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


def _tokens(question: str) -> list[str]:
    return _TOKEN.findall(question)


def _is_content(word: str) -> bool:
    low = word.casefold()
    if low in _WH or low in _AUX or low in _PERSONAL or low in _DEMONSTRATIVES:
        return False
    return any(t not in _GENERIC for t in terms(word))


def _is_name(word: str, position: int) -> bool:
    """A capitalized content word (a name, an acronym) that is not merely sentence-initial."""
    if not word[:1].isupper() or not _is_content(word):
        return False
    return position > 0 or (word.isupper() and len(word) > 1)


def _anaphor(tokens: Sequence[str]) -> str | None:
    """The first pronoun or demonstrative that points outside the question, if any."""
    # "that's", "it's": the pronoun is what counts
    low = [re.sub(r"'s$", "", t.casefold().replace("’", "'")) for t in tokens]
    seen_content = False
    for i, word in enumerate(low):
        prev = low[i - 1] if i else ""
        nxt = low[i + 1] if i + 1 < len(low) else ""
        last = i == len(low) - 1
        if word in _PERSONAL:
            if last or not seen_content:
                return tokens[i]
        elif word in {"it", "its"}:
            # Rarely has an antecedent inside a question; only "is it possible that" is idle.
            expletive = nxt in _EXPLETIVE or (
                nxt in {"is", "was", "'s", "seems", "seemed"}
                and i + 2 < len(low)
                and low[i + 2] in _EXPLETIVE
            )
            if not expletive:
                return tokens[i]
        elif word == "that":
            # "about that", "was that", "That's ..." point back; "the strike that killed"
            # (relative) and "say that the ..." (complementizer) do not.
            if last or not prev or prev in _PREPOSITIONS or prev in _AUX or prev in _WH:
                return tokens[i]
        elif word in _DEMONSTRATIVES:
            if nxt in _TIME_WORDS or (word == "those" and nxt in {"who", "which", "that"}):
                pass
            else:
                return tokens[i]
        elif word == "there":
            existential = nxt in _AUX or (prev in _AUX and not last)
            if not existential:
                return tokens[i]
        elif word == "then":
            return tokens[i]
        if _is_content(tokens[i]):
            seen_content = True
    return None


def follow_up_cue(
    question: str, *, outlets: Iterable[str] = (), is_reply_to_bot: bool = False
) -> str | None:
    """Why ``question`` reads as a follow-up (a short phrase), or None when it stands alone.

    ``outlets`` are the outlet names of the index: naming one ("according to TASS") only filters,
    so it does not count as a content word.
    """
    if is_reply_to_bot:
        return "a reply to the bot's answer"
    tokens = _tokens(question)
    if not tokens:
        return None
    named = outlet_in_question(question, list(outlets))
    if named:
        tokens = [t for t in tokens if t.casefold() not in {w.casefold() for w in named.split()}]
        if not tokens:
            return "names only an outlet"
    low = [t.casefold() for t in tokens]
    if low[0] in _CONNECTIVES:
        return f"starts with “{tokens[0]}”"
    for phrase in _LEADING_PHRASES:
        if tuple(low[: len(phrase)]) == phrase:
            return f"starts with “{' '.join(tokens[: len(phrase)])}”"
    if len(tokens) <= 3 and low[0] not in _WH and low[0] not in _AUX:
        return "a fragment, not a full question"
    pointer = _anaphor(tokens)
    if pointer is not None:
        return f"“{pointer}” refers to something earlier"
    content = [t for t in tokens if _is_content(t)]
    limit = (
        MAX_VAGUE_COUNT_WORDS if low[:2] in (["how", "many"], ["how", "much"]) else MAX_VAGUE_WORDS
    )
    if len(content) <= limit and not any(_is_name(t, i) for i, t in enumerate(tokens)):
        return "too few words to stand alone"
    return None


def is_follow_up(
    question: str,
    conversation: Conversation,
    *,
    is_reply_to_bot: bool = False,
    outlets: Iterable[str] = (),
    now: float | None = None,
) -> bool:
    """Whether ``question`` leans on the conversation: there is context and a clear cue."""
    if conversation.last(now) is None:
        return False
    return follow_up_cue(question, outlets=outlets, is_reply_to_bot=is_reply_to_bot) is not None


# --- asking with context -------------------------------------------------------------------------


def key_words(question: str, *, outlets: Iterable[str] = ()) -> tuple[str, ...]:
    """The words that carry a question's topic, as written: names and nouns, not stop words,
    question words, the question's frame ("What did X *tell* Y") or outlet names."""
    named = outlet_in_question(question, list(outlets))
    skip = {w.casefold() for w in named.split()} if named else set()
    words: list[str] = []
    found: list[str] = []
    for token in _tokens(question):
        if token.casefold() in skip or not _is_content(token):
            continue
        new = [t for t in terms(token) if t not in _GENERIC and t not in _FRAME and t not in found]
        if new:
            words.append(token)
            found.extend(new)
    return tuple(words)


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


def ask_in_conversation(
    service: QAService,
    conversation: Conversation,
    question: str,
    *,
    is_reply_to_bot: bool = False,
    filters: SearchFilters | None = None,
    now: float | None = None,
    replied_context: bool = False,
) -> Reply:
    """Answer ``question`` in a conversation, with its context when it is a follow-up.

    The turn is recorded in ``conversation`` afterwards (a question the service refuses as
    invalid raises and is not recorded). ``replied_context``: the conversation holds the turn
    of the answer the message replies to, which the note then names as such.
    """
    question = validate_question(question)
    now = time.time() if now is None else now
    outlets = service.snapshot().outlets()
    previous = conversation.last(now)
    cue = (
        follow_up_cue(question, outlets=outlets, is_reply_to_bot=is_reply_to_bot)
        if previous is not None
        else None
    )
    own = key_words(question, outlets=outlets)
    if previous is None or cue is None:
        answer = service.ask(question, filters=filters)
        turn = Turn(
            question=answer.question,
            words=own,
            articles=_cited(answer),
            at=now,
            topic=answer.question,
        )
        conversation.add(turn)
        return Reply(answer, follow_up=False, cue=None, searched=answer.question, turn=turn)

    in_question = set(terms(question))
    missing = [w for w in previous.words if not all(t in in_question for t in terms(w))]
    extra_words = missing[:MAX_CONTEXT_WORDS]
    asked = f"{question.rstrip()} {' '.join(extra_words)}" if extra_words else question
    if len(asked) > MAX_QUESTION_CHARS:
        asked = question
    answer = service.ask(
        asked,
        filters=filters,
        boost_articles=previous.articles,
        notes=(context_note(previous.topic, replied=replied_context),),
    )
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
    )
    conversation.add(turn)
    return Reply(
        answer, follow_up=True, cue=cue, topic=previous.topic, searched=searched, turn=turn
    )


def _cited(answer: Answer) -> tuple[str, ...]:
    return tuple(dict.fromkeys(c.article.id for c in answer.citations))


def _merge(first: Sequence[str], second: Sequence[str]) -> tuple[str, ...]:
    seen: set[str] = set()
    out: list[str] = []
    for word in [*first, *second]:
        key = word.casefold()
        if key not in seen:
            seen.add(key)
            out.append(word)
    return tuple(out)


# --- many chats ----------------------------------------------------------------------------------


class Conversations:
    """The conversations of every chat, by chat id, in memory (and on disk when asked).

    Thread-safe: the bot answers several chats at once. The service call itself runs outside
    the lock, so one slow question never holds up another chat.
    """

    def __init__(
        self,
        settings: ConversationSettings,
        *,
        clock: Clock = time.time,
        max_chats: int = MAX_CHATS,
    ):
        self.ttl_seconds = settings.ttl_seconds
        self.max_turns = settings.max_turns
        self.persist_path = settings.persist_path
        self._clock = clock
        self._max_chats = max_chats
        self._chats: OrderedDict[ChatId, Conversation] = OrderedDict()
        self._lock = threading.Lock()
        if self.persist_path is not None:
            self._load(self.persist_path)

    def ask(
        self,
        service: QAService,
        chat_id: ChatId,
        question: str,
        *,
        is_reply_to_bot: bool = False,
        filters: SearchFilters | None = None,
    ) -> Answer:
        """Answer a chat's message, with the chat's context when it is a follow-up."""
        return self.reply(
            service, chat_id, question, is_reply_to_bot=is_reply_to_bot, filters=filters
        ).answer

    def reply(
        self,
        service: QAService,
        chat_id: ChatId,
        question: str,
        *,
        is_reply_to_bot: bool = False,
        filters: SearchFilters | None = None,
        replying_to: Turn | None = None,
    ) -> Reply:
        """Like :meth:`ask`, and also says whether the context was used and why.

        ``replying_to`` is the turn of the answer the message replies to, when the front knows
        it: the question then builds on that answer's topic, whoever asked it and however long
        ago (replying to it says so), not on the chat's latest question.
        """
        now = self._clock()
        with self._lock:
            scratch = Conversation(self.ttl_seconds, self.max_turns)
            if replying_to is not None:
                scratch.add(dataclasses.replace(replying_to, at=now))
            else:
                for turn in self._get(chat_id, now).turns(now):
                    scratch.add(turn)
        reply = ask_in_conversation(
            service,
            scratch,
            question,
            is_reply_to_bot=is_reply_to_bot,
            filters=filters,
            now=now,
            replied_context=replying_to is not None,
        )
        new_turn = scratch.last(now)
        with self._lock:
            if new_turn is not None:
                self._get(chat_id, now).add(new_turn)
            self._save()
        return reply

    def context(self, chat_id: ChatId) -> list[Turn]:
        """The turns a follow-up in this chat would build on, oldest first."""
        now = self._clock()
        with self._lock:
            conversation = self._chats.get(chat_id)
            return conversation.turns(now) if conversation is not None else []

    def reset(self, chat_id: ChatId) -> bool:
        """Forget a chat's context; True when there was something to forget."""
        now = self._clock()
        with self._lock:
            conversation = self._chats.pop(chat_id, None)
            had = conversation is not None and bool(conversation.turns(now))
            self._save()
        return had

    def __len__(self) -> int:
        now = self._clock()
        with self._lock:
            self._prune(now)
            return len(self._chats)

    # --- internals (called with the lock held) --------------------------------------------------

    def _get(self, chat_id: ChatId, now: float) -> Conversation:
        self._prune(now)
        conversation = self._chats.get(chat_id)
        if conversation is None:
            conversation = Conversation(self.ttl_seconds, self.max_turns)
            self._chats[chat_id] = conversation
        self._chats.move_to_end(chat_id)
        while len(self._chats) > self._max_chats:
            self._chats.popitem(last=False)
        return conversation

    def _prune(self, now: float) -> None:
        for chat_id in [c for c, conv in self._chats.items() if not conv.turns(now)]:
            del self._chats[chat_id]

    def _save(self) -> None:
        if self.persist_path is None:
            return
        now = self._clock()
        self._prune(now)
        data = {
            "version": PERSIST_VERSION,
            "chats": [
                {"chat": chat_id, "turns": [t.to_json() for t in conv.turns(now)]}
                for chat_id, conv in self._chats.items()
            ],
        }
        try:
            atomic_write_text(self.persist_path, json.dumps(data, ensure_ascii=False))
        except OSError as exc:
            log.warning("could not save conversations to %s: %s", self.persist_path, exc)

    def _load(self, path: Path) -> None:
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
            if data.get("version") != PERSIST_VERSION:
                raise ValueError(f"unknown version {data.get('version')!r}")
            now = self._clock()
            for entry in data["chats"]:
                conversation = Conversation(self.ttl_seconds, self.max_turns)
                for raw in entry["turns"]:
                    conversation.add(Turn.from_json(raw))
                if conversation.turns(now):
                    chat_id = entry["chat"]
                    self._chats[tuple(chat_id) if isinstance(chat_id, list) else chat_id] = (
                        conversation
                    )
        except FileNotFoundError:
            return
        except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
            log.warning("ignoring unreadable conversations file %s: %s", path, exc)
            self._chats.clear()


__all__ = [
    "Conversation",
    "Conversations",
    "Reply",
    "Turn",
    "ask_in_conversation",
    "context_note",
    "follow_up_cue",
    "is_follow_up",
    "key_words",
]
