"""Telegram HTML cut to fit Telegram's message limit: blocks of styled runs packed into messages.

Pure functions, no python-telegram-bot import: the bot sends what :mod:`.render` builds with
these, and the tests check it against the Bot API's rules without a network.

Every piece of text is escaped here and only here. A message is built from *blocks*
(a paragraph of styled runs, optionally inside a ``<blockquote>``). A block too long for one
message is cut in its plain text, at a paragraph, sentence or word boundary, and each piece is
escaped and wrapped in its tags again: a cut can never fall inside a tag or an entity, and
every message has balanced tags.

Lengths are counted in UTF-16 code units of the *markup*, which is never shorter than the text
Telegram keeps after parsing it, so the limit holds however the server counts.
"""

from __future__ import annotations

import bisect
import html
import re
import unicodedata
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass

#: ``telegram.constants.MessageLimit.MAX_TEXT_LENGTH``; the library does not split for us.
MAX_MESSAGE_LENGTH = 4096


def utf16_len(text: str) -> int:
    """Length as Telegram counts it: UTF-16 code units (an emoji outside the BMP counts 2)."""
    return len(text.encode("utf-16-le")) // 2


def escape(text: str) -> str:
    """Text for Telegram HTML: ``<``, ``>`` and ``&`` become entities; quotes may stay."""
    return html.escape(text, quote=False)


# --- blocks and how they are cut into messages --------------------------------------------------


@dataclass(frozen=True)
class Run:
    """Plain text and the tags around it, outermost first (``("b",)``, ``('a href="…"',)``)."""

    text: str
    tags: tuple[str, ...] = ()


@dataclass(frozen=True)
class Block:
    """A paragraph of the message.

    ``gap`` is the number of line breaks before it when it follows another block in the same
    message; ``keep_with_next`` keeps a heading in the same message as the line after it.
    """

    runs: tuple[Run, ...]
    quote: bool = False
    gap: int = 1
    keep_with_next: bool = False

    @property
    def text(self) -> str:
        return "".join(run.text for run in self.runs)


def _tag_name(tag: str) -> str:
    return tag.split(None, 1)[0]


def _wrap(text: str, tags: Sequence[str]) -> str:
    opened = "".join(f"<{tag}>" for tag in tags)
    closed = "".join(f"</{_tag_name(tag)}>" for tag in reversed(tags))
    return f"{opened}{escape(text)}{closed}"


def _render(block: Block, start: int, end: int) -> str:
    """The markup of the block's plain text ``[start, end)``, every tag balanced."""
    parts: list[str] = []
    offset = 0
    for run in block.runs:
        lo, hi = max(start, offset), min(end, offset + len(run.text))
        if lo < hi:
            parts.append(_wrap(run.text[lo - offset : hi - offset], run.tags))
        offset += len(run.text)
    body = "".join(parts)
    return f"<blockquote>{body}</blockquote>" if block.quote else body


def _overhead(block: Block) -> int:
    """An upper bound on the markup a piece of the block adds to its escaped text."""
    total = utf16_len("<blockquote></blockquote>") if block.quote else 0
    for run in block.runs:
        total += sum(utf16_len(f"<{tag}></{_tag_name(tag)}>") for tag in run.tags)
    return total


_SENTENCE_END = re.compile(r"[.!?…][\"'”’»)\]]*(?=\s)")
_JOINERS = {"\u200d", "\u200c", "\u2060"}


def _glued(text: str, i: int) -> bool:
    """Whether a cut before ``text[i]`` would split one visible character (emoji, accent)."""
    ch = text[i]
    return (
        unicodedata.combining(ch) > 0
        or ch in _JOINERS
        or "\ufe00" <= ch <= "\ufe0f"
        or "\U0001f3fb" <= ch <= "\U0001f3ff"  # skin tone modifiers
        or "\U000e0020" <= ch <= "\U000e007f"  # tag sequences (flags)
        or text[i - 1] in _JOINERS
        or _inside_flag(text, i)
    )


def _regional(ch: str) -> bool:
    return "\U0001f1e6" <= ch <= "\U0001f1ff"


def _inside_flag(text: str, i: int) -> bool:
    """A flag is a pair of regional indicators: a cut after an odd number of them splits one."""
    if not (_regional(text[i]) and _regional(text[i - 1])):
        return False
    run = 0
    while i - run - 1 >= 0 and _regional(text[i - run - 1]):
        run += 1
    return run % 2 == 1


def _cut(text: str, start: int, most: int) -> int:
    """Where to end a piece that starts at ``start`` and may run to ``most`` (exclusive).

    A paragraph break in the second half of the window first, then a sentence end there,
    then any space, and only for one unbroken word a cut between two characters.
    """
    half = start + (most - start) // 2
    newline = text.rfind("\n", half, most)
    if newline > start:
        return newline
    sentence_end = -1
    for match in _SENTENCE_END.finditer(text, half, min(most + 1, len(text))):
        if match.end() <= most:
            sentence_end = match.end()
    if sentence_end > start:
        return sentence_end
    for i in range(most - 1, start, -1):
        if text[i].isspace():
            return i
    cut = most
    while cut - 1 > start and most - cut < 32 and _glued(text, cut):
        cut -= 1
    return cut if not _glued(text, cut) else most


def _skip_space(text: str, i: int) -> int:
    while i < len(text) and text[i].isspace():
        i += 1
    return i


def _pieces(block: Block, limit: int) -> Iterator[str]:
    """The block as one or more rendered pieces, each at most ``limit`` long."""
    text = block.text
    start, end = _skip_space(text, 0), len(text.rstrip())
    if start >= end:
        return
    whole = _render(block, start, end)
    if utf16_len(whole) <= limit:
        yield whole
        return
    budget = limit - _overhead(block)
    if budget < 16:
        raise ValueError(f"a block's markup alone exceeds the {limit}-character limit")
    cost = [0]
    for ch in text:
        cost.append(cost[-1] + utf16_len(escape(ch)))
    while start < end:
        most = min(bisect.bisect_right(cost, cost[start] + budget) - 1, end)
        stop = end if most >= end else _cut(text, start, most)
        piece_end = len(text[:stop].rstrip())
        if piece_end > start:
            yield _render(block, start, piece_end)
        start = _skip_space(text, stop)


def pack(blocks: Iterable[Block], limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """Blocks into as few messages as fit, each at most ``limit`` UTF-16 units of markup."""
    messages: list[str] = []
    current = ""
    pending: list[tuple[Block, list[str]]] = [(b, list(_pieces(b, limit))) for b in blocks]
    pending = [(b, pieces) for b, pieces in pending if pieces]
    for i, (block, pieces) in enumerate(pending):
        for j, piece in enumerate(pieces):
            joined = f"{current}{chr(10) * block.gap}{piece}" if current else piece
            needed = joined
            if j == 0 and block.keep_with_next and i + 1 < len(pending):
                following, next_pieces = pending[i + 1]
                needed = f"{joined}{chr(10) * following.gap}{next_pieces[0]}"
            if current and utf16_len(needed) > limit:
                messages.append(current)
                current = piece
            else:
                current = joined
    if current:
        messages.append(current)
    return messages


__all__ = [
    "MAX_MESSAGE_LENGTH",
    "Block",
    "Run",
    "escape",
    "pack",
    "utf16_len",
]
