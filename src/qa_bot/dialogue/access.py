"""Who may ask, and how often: the allowlist, the per-person rate limit, and how often a
stranger is told no. Pure bookkeeping over a clock; the bot keeps these objects in its chat,
user and bot data.
"""

from __future__ import annotations

from collections import OrderedDict, deque
from collections.abc import Hashable, Sequence
from dataclasses import dataclass, field


def is_allowed(
    user_id: int | None,
    chat_id: int | None,
    *,
    allowed_users: Sequence[int],
    allowed_chats: Sequence[int],
) -> bool:
    """Whether someone may use the bot here: anyone when no allowlist is set, else a listed
    person anywhere, or anyone in a listed chat."""
    if not allowed_users and not allowed_chats:
        return True
    return (user_id is not None and user_id in allowed_users) or (
        chat_id is not None and chat_id in allowed_chats
    )


@dataclass
class RateLimit:
    """At most ``per_minute`` questions in any 60 seconds (0: no limit)."""

    asked: deque[float] = field(default_factory=deque)

    def take(self, per_minute: int, now: float) -> float:
        """0 if a question may be asked at ``now`` (and count it), else the seconds to wait."""
        if per_minute <= 0:
            return 0.0
        while self.asked and now - self.asked[0] >= 60:
            self.asked.popleft()
        if len(self.asked) >= per_minute:
            return 60 - (now - self.asked[0])
        self.asked.append(now)
        return 0.0


@dataclass
class RefusalLog:
    """When each chat was last refused, so a stranger who keeps writing is told no once per
    ``interval`` seconds rather than once per message. Keeps at most ``max_chats`` chats, the
    most recently refused."""

    max_chats: int = 10_000
    _last: OrderedDict[Hashable, float] = field(default_factory=OrderedDict)

    def should_refuse(self, chat: Hashable, interval: float, now: float) -> bool:
        """True (and note it) when ``chat`` has not been refused in the last ``interval``."""
        last = self._last.get(chat)
        if last is not None and now - last < interval:
            return False
        self._last[chat] = now
        self._last.move_to_end(chat)
        while len(self._last) > self.max_chats:
            self._last.popitem(last=False)
        return True


__all__ = ["RateLimit", "RefusalLog", "is_allowed"]
