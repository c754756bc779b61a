"""Telegram HTML for answers, passages and listings, cut to fit Telegram's message limit.

Pure functions, no python-telegram-bot import: the bot sends what these return, and the tests
check it against the Bot API's rules without a network.

Every piece of article text is escaped here and only here. A message is built from *blocks*
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
from typing import TYPE_CHECKING

from qa_bot.models import Answer, ArticleMeta, SourceInfo

if TYPE_CHECKING:
    from qa_bot.service import IndexStatus, Passage

#: ``telegram.constants.MessageLimit.MAX_TEXT_LENGTH``; the library does not split for us.
MAX_MESSAGE_LENGTH = 4096
#: What an answer with nothing to show says (the core always gives a text; this is a guard).
NO_ANSWER = "The articles don't cover this."
#: Links longer than this are not rendered as links (the title is still shown).
MAX_URL_LENGTH = 512


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


# --- what the bot says --------------------------------------------------------------------------


def _link_tags(url: str | None) -> tuple[str, ...]:
    if url and len(url) <= MAX_URL_LENGTH and re.fullmatch(r"https?://[^\s<>\"]+", url):
        return (f'a href="{html.escape(url, quote=True)}"',)
    return ()


def source_runs(meta: ArticleMeta, label: str) -> tuple[Run, ...]:
    """``[n] <b>Title</b> — Outlet, date``, the title linked when the article has a URL."""
    return (
        Run(f"{label} "),
        Run(meta.title, ("b", *_link_tags(meta.url))),
        Run(f" — {meta.outlet_label()}, {meta.date_label()}"),
    )


def _flat(text: str) -> str:
    return " ".join(text.split())


def answer_blocks(answer: Answer) -> list[Block]:
    """The quotes as blockquotes with ``[n]`` markers, then the numbered sources."""
    blocks = [Block((Run(_flat(note), ("i",)),)) for note in answer.notes]
    if not answer.answered or not answer.citations:
        blocks.append(Block((Run(answer.text),), gap=2 if blocks else 1))
        if answer.suggestions:
            blocks.append(
                Block((Run("The nearest topics the articles do cover:"),), keep_with_next=True)
            )
            blocks.extend(Block((Run("• "), Run(title, ("b",)))) for title in answer.suggestions)
        return blocks
    for c in answer.citations:
        blocks.append(Block((Run(f"[{c.n}]", ("b",)), Run(f" {_flat(c.quote)}")), quote=True))
    blocks.append(Block((Run("Sources", ("b",)),), gap=2, keep_with_next=True))
    blocks.extend(Block(source_runs(c.article, f"[{c.n}]")) for c in answer.citations)
    return blocks


def render_answer(answer: Answer, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """The answer as one or more messages; never none (Telegram refuses empty messages)."""
    return pack(answer_blocks(answer), limit) or [NO_ANSWER]


def render_passage(passage: Passage, n: int, limit: int = MAX_MESSAGE_LENGTH) -> list[str]:
    """The text around quote ``n``, the quote itself in bold, and its source."""
    text, qs, qe = passage.text, passage.quote_start, passage.quote_end
    if not 0 <= qs < qe <= len(text):
        qs = qe = 0
    return pack(
        [
            Block((Run(f"Passage [{n}]", ("b",)),), keep_with_next=True),
            Block(
                (Run(text[:qs]), Run(text[qs:qe], ("b",)), Run(text[qe:])),
                quote=True,
            ),
            Block(source_runs(passage.article, f"[{n}]")),
        ],
        limit,
    )


def render_sources(
    sources: Sequence[SourceInfo], limit: int = MAX_MESSAGE_LENGTH, max_items: int = 100
) -> list[str]:
    """The articles the bot knows: title, outlet, date; at most ``max_items`` of them."""
    if not sources:
        return ["The index has no articles yet."]
    count = f"{len(sources)} article" + ("" if len(sources) == 1 else "s")
    blocks = [Block((Run(count, ("b",)),), keep_with_next=True)]
    blocks.extend(Block(source_runs(s.meta, f"{i}.")) for i, s in enumerate(sources[:max_items], 1))
    if len(sources) > max_items:
        blocks.append(Block((Run(f"… and {len(sources) - max_items} more."),)))
    return pack(blocks, limit)


def _day(date: object) -> str:
    return f"{date.day} {date:%b %Y}"  # type: ignore[attr-defined]


def date_range(status: IndexStatus) -> str | None:
    if status.first_date is None or status.last_date is None:
        return None
    if status.first_date == status.last_date:
        return _day(status.first_date)
    return f"{_day(status.first_date)} to {_day(status.last_date)}"


def render_welcome(status: IndexStatus, examples: Sequence[str]) -> str:
    """``/start``: what the bot is, what it knows, and two questions to try."""
    articles = f"{status.articles} news article" + ("" if status.articles == 1 else "s")
    dates = date_range(status)
    span = f", dated {escape(dates)}" if dates else ""
    lines = [
        f"Hi! I answer questions about <b>{articles}</b>{span}.",
        "",
        "Every answer is made of word-for-word quotes from the articles, each with its "
        "source and date. When the articles don't say, I tell you so.",
    ]
    if examples:
        lines += ["", "<b>Try asking</b>"]
        lines += [f"• {escape(q)}" for q in examples[:2]]
    lines += ["", "/help lists the commands; /sources the articles."]
    return "\n".join(lines)


def render_help(
    *,
    max_question_chars: int,
    rate_limit_per_minute: int,
    outlets: Sequence[str],
    context_seconds: float = 900,
) -> str:
    """``/help``: how to ask, follow-ups (unless ``context_seconds`` is 0), the commands."""
    lines = [
        "<b>Asking</b>",
        "In a private chat, just write your question. In a group, use "
        "<code>/ask your question</code>, mention me, or reply to one of my messages.",
        "",
        "Answers are quotes from the articles. Tap <b>Passage n</b> under an answer to read the "
        "text around quote n, and <b>More</b> for further passages.",
        "",
    ]
    if context_seconds > 0:
        lines += [
            "<b>Follow-ups</b>",
            "A follow-up such as “When was that?” or “And according to TASS?” builds on your "
            "previous question, and the answer says so; a reply to one of my answers builds on "
            "that answer's question (in a group, whoever asked it). "
            f"I forget your questions after {_duration(context_seconds)}, or at once with "
            "/reset. In a group, each person has their own.",
            "",
        ]
    lines += [
        "<b>Commands</b>",
        "/ask <i>question</i> — ask a question (needed in groups)",
        "/sources — the articles I know: title, outlet, date",
        "/outlet <i>name</i> — search only that outlet's articles in this chat; "
        "<code>/outlet all</code> to search everything again",
        "/dates <i>from</i> <i>to</i> — search only articles published then "
        "(<code>/dates 2016-09</code>, <code>/dates 2016-09-20 2016-09-30</code>); "
        "<code>/dates all</code> to search every date again",
        "/status — how fresh the index is, and which model reads it",
        "/reset — forget your previous questions; the next one stands alone",
        "/help — this message",
        "",
        "Naming an outlet in a question (“What did TASS report…”) also searches only its articles.",
    ]
    if outlets:
        lines.append("Outlets: " + escape(", ".join(outlets)) + ".")
    limits = f"Questions can be up to {max_question_chars} characters"
    if rate_limit_per_minute:
        limits += f", {rate_limit_per_minute} a minute per person"
    lines += ["", limits + "."]
    return "\n".join(lines)


def _duration(seconds: float) -> str:
    """``15 minutes``, ``1 hour``, ``45 seconds``."""
    for unit, size in (("day", 86400), ("hour", 3600), ("minute", 60)):
        if (seconds >= size and seconds % size == 0) or seconds >= 2 * size:
            n = round(seconds / size)
            return f"{n} {unit}{'' if n == 1 else 's'}"
    n = round(seconds)
    return f"{n} second{'' if n == 1 else 's'}"


def render_status(status: IndexStatus) -> str:
    """``/status``: how fresh the index is and what it was built with."""
    dates = date_range(status) or "none stated"
    lines = [
        "<b>Index</b>",
        f"Articles: {status.articles} ({status.chunks} passages)",
        f"Dates: {escape(dates)}",
        "Outlets: " + escape(", ".join(status.outlets) if status.outlets else "none named"),
        f"Built: {escape(status.built_at)} (generation {escape(status.generation)})",
        f"Model: {escape(status.model_id)}, {escape(status.dense_kind)} search",
    ]
    if status.stale:
        n = len(status.stale)
        lines.append(
            f"{n} article file{'s' if n != 1 else ''} changed since the build; "
            "the bot picks them up after the next <code>qa-bot index</code>."
        )
    else:
        lines.append("Up to date with the article files.")
    return "\n".join(lines)


__all__ = [
    "MAX_MESSAGE_LENGTH",
    "Block",
    "Run",
    "answer_blocks",
    "escape",
    "pack",
    "render_answer",
    "render_help",
    "render_passage",
    "render_sources",
    "render_status",
    "render_welcome",
    "source_runs",
    "utf16_len",
]
