"""What the bot keeps: per chat (``context.chat_data``), per person (``context.user_data``), for
the whole bot (``application.bot_data``), and the data behind its buttons.

Chat and user data are plain picklable objects, so python-telegram-bot's persistence can save
them between restarts when ``conversation.persist_path`` is set; the buttons' data is kept by
its ``arbitrary_callback_data`` cache (persisted the same way).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import OrderedDict
from collections.abc import AsyncIterator, Hashable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from telegram.ext import CallbackContext, ExtBot

from qa_bot.dialogue.access import RateLimit, RefusalLog
from qa_bot.dialogue.memory import Conversation, Turn
from qa_bot.filters import SearchFilters
from qa_bot.models import Rated, Span
from qa_bot.settings import ConversationSettings, TelegramSettings

if TYPE_CHECKING:
    from qa_bot.service import QAService

#: Answer messages per chat whose question a reply can build on (the latest ones).
ANSWERS_REMEMBERED = 200


@dataclass(frozen=True)
class PassageButton:
    """The data of a "Passage n" button: the quote's place, and the article's content hash so
    that a changed article is noticed."""

    article_id: str
    content_hash: str
    start: int
    end: int
    n: int


@dataclass(frozen=True)
class MoreButton:
    """The data of a "More" button: what to search again, and what was shown already."""

    question: str
    filters: SearchFilters | None
    shown: tuple[Span, ...]
    next_n: int


@dataclass(frozen=True)
class FeedbackButton:
    """The data of a 👍 / 👎 button: the vote, and the answer as it was shown (its id makes a
    second press change the vote rather than add one)."""

    vote: str
    rated: Rated


@dataclass
class ChatData:
    """Per-chat state (``context.chat_data``)."""

    #: The outlet and dates chosen with ``/outlet`` and ``/dates``.
    filters: SearchFilters = field(default_factory=SearchFilters)
    #: The conversation of each person: in a private chat there is one (key 0); in a group
    #: each person has their own, by user id (two people don't share a topic).
    conversations: dict[int, Conversation] = field(default_factory=dict)
    #: The conversation turn behind each answer message, by message id, oldest first: a
    #: reply to an answer builds on that answer's question (in a group, whoever asked it).
    answers: OrderedDict[int, Turn] = field(default_factory=OrderedDict)
    #: The answer behind each answer message, with whose conversation it was in: what
    #: ``/good`` and ``/bad`` rate (the one replied to, else the person's latest).
    rated: OrderedDict[int, tuple[int, Rated]] = field(default_factory=OrderedDict)

    def __setstate__(self, state: dict[str, object]) -> None:
        """Chat data saved by an older version (persistence) lacks the newer fields."""
        self.__dict__.update({"rated": OrderedDict()} | state)

    def active_filters(self) -> SearchFilters | None:
        return self.filters if self.filters.active else None

    def conversation(self, key: int, settings: ConversationSettings) -> Conversation:
        """The conversation of ``key``, made on first use; conversations whose turns have all
        expired are dropped on the way."""
        for stale in [k for k, c in self.conversations.items() if k != key and not c.turns()]:
            del self.conversations[stale]
        if key not in self.conversations:
            self.conversations[key] = Conversation(settings.ttl_seconds, settings.max_turns)
        return self.conversations[key]

    def remember_answer(self, message_ids: list[int], turn: Turn) -> None:
        for message_id in message_ids:
            self.answers[message_id] = turn
        while len(self.answers) > ANSWERS_REMEMBERED:
            self.answers.popitem(last=False)

    def remember_rated(self, message_ids: list[int], key: int, rated: Rated) -> None:
        for message_id in message_ids:
            self.rated[message_id] = (key, rated)
        while len(self.rated) > ANSWERS_REMEMBERED:
            self.rated.popitem(last=False)

    def rated_for(self, replied_id: int | None, key: int) -> Rated | None:
        """The answer a vote command is about: the message replied to when it is an answer,
        else the latest answer in conversation ``key``."""
        if replied_id is not None and replied_id in self.rated:
            return self.rated[replied_id][1]
        mine = [rated for owner, rated in self.rated.values() if owner == key]
        return mine[-1] if mine else None


@dataclass
class UserData:
    """Per-person state (``context.user_data``): when they last asked, for the rate limit."""

    rate: RateLimit = field(default_factory=RateLimit)


class KeyedLocks:
    """One :class:`asyncio.Lock` per key, kept only while someone holds or awaits it (so there
    are never more than the updates in flight). Waiters get the lock in arrival order."""

    def __init__(self) -> None:
        self._locks: dict[Hashable, tuple[asyncio.Lock, int]] = {}

    @contextlib.asynccontextmanager
    async def hold(self, key: Hashable) -> AsyncIterator[None]:
        entry = self._locks.get(key)
        lock, users = entry if entry is not None else (asyncio.Lock(), 0)
        self._locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._locks[key]
            if users == 1:
                del self._locks[key]
            else:
                self._locks[key] = (lock, users - 1)

    def __len__(self) -> int:
        return len(self._locks)


@dataclass
class BotData:
    """Shared objects (``application.bot_data``), set by the application builder."""

    service: QAService | None = None
    settings: TelegramSettings = field(default_factory=TelegramSettings)
    executor: ThreadPoolExecutor | None = None
    #: One question at a time per conversation, in order.
    turns: KeyedLocks = field(default_factory=KeyedLocks)
    #: When each chat of strangers was last told no.
    refusals: RefusalLog = field(default_factory=RefusalLog)

    @property
    def qa(self) -> QAService:
        """The service (set before the bot starts)."""
        assert self.service is not None
        return self.service


Context = CallbackContext[ExtBot[None], UserData, ChatData, BotData]

__all__ = [
    "BotData",
    "ChatData",
    "Context",
    "FeedbackButton",
    "KeyedLocks",
    "MoreButton",
    "PassageButton",
    "UserData",
]
