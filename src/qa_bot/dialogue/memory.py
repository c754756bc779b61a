"""What a conversation remembers: its last few turns, each for a limited time.

Plain data, no I/O: the terminal chat keeps one :class:`Conversation` for its process, the bot
keeps one per conversation in python-telegram-bot's chat data (which its persistence saves,
off the request path, when a file is configured).
"""

from __future__ import annotations

import time
from collections import deque
from dataclasses import dataclass

from qa_bot.models import Span


@dataclass(frozen=True)
class Turn:
    """One question of a chat, as later follow-ups need it.

    ``words`` are the key words of the topic as the user wrote them; for a follow-up they
    include the topic inherited from the turn it followed, so a chain "Who attacked the
    convoy?" / "When was that?" / "And according to TASS?" keeps the convoy. ``articles`` are
    the articles its answer cited, ``topic`` the question that introduced the topic (quoted in
    the note), ``quoted`` the places of its answer's quotes.
    """

    question: str
    words: tuple[str, ...]
    articles: tuple[str, ...]
    at: float
    topic: str
    follow_up: bool = False
    quoted: tuple[Span, ...] = ()


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

    def reset(self, now: float | None = None) -> bool:
        """Forget every turn; True when one was still remembered."""
        had = bool(self.turns(now))
        self._turns.clear()
        return had

    def __len__(self) -> int:
        return len(self._turns)

    def _alive(self, turn: Turn, now: float) -> bool:
        return self.ttl_seconds > 0 and now - turn.at < self.ttl_seconds


__all__ = ["Conversation", "Turn"]
