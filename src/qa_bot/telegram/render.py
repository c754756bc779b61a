"""What the bot says, as Telegram HTML: answers, passages, listings, help and status.

Pure functions over the core's plain types (:mod:`qa_bot.models`), no python-telegram-bot
import; :mod:`.markup` escapes the text and cuts it to Telegram's limit. A button's reply
(a passage, further passages) always fits one message.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import replace

from qa_bot.commands import NOTHING_TO_RATE, Command, bot_commands
from qa_bot.models import Answer, ArticleMeta, IndexStatus, Passage, SourceInfo
from qa_bot.telegram.markup import MAX_MESSAGE_LENGTH, Block, Run, escape, pack

#: What an answer with nothing to show says (the core always gives a text; this is a guard).
NO_ANSWER = "The articles don't cover this."
#: Links longer than this are not rendered as links (the title is still shown).
MAX_URL_LENGTH = 512
#: A passage whose source line (title, outlet, date) is longer than this shows it cut when the
#: passage would not fit one message otherwise.
MAX_LABEL = 600


def with_code(text: str) -> str:
    """Plain text with `code` marked by backquotes (the core's commands and filter messages),
    as Telegram HTML."""
    parts = text.split("`")
    return "".join(
        f"<code>{escape(part)}</code>" if i % 2 else escape(part) for i, part in enumerate(parts)
    )


def command_line(command: Command) -> str:
    """One line of ``/help``: ``/name <i>args</i> — what it does``."""
    args = "".join(f" <i>{escape(arg)}</i>" for arg in command.args.split())
    return f"/{command.name}{args} — {with_code(command.help.format(p='/'))}"


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


def render_one_answer(answer: Answer, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """The answer in one message, keeping as many of its first quotes as fit (what a button
    sends: one message, never a burst)."""
    citations = answer.citations
    while True:
        shown = replace(answer, citations=citations)
        messages = render_answer(shown, limit)
        if len(messages) == 1 or len(citations) <= 1:
            return messages[0]
        citations = citations[:-1]


def _passage_message(
    passage: Passage, n: int, lo: int, hi: int, limit: int, *, first: bool = False
) -> str | None:
    """The message showing ``passage.text[lo:hi]`` (with "…" where it was cut), the quote in
    bold; None when it does not fit one message (or with ``first``, the first message)."""
    text = passage.text
    qs = min(max(passage.quote_start, lo), hi)
    qe = min(max(passage.quote_end, qs), hi)
    runs = (
        Run(("… " if lo > 0 else "") + text[lo:qs]),
        Run(text[qs:qe], ("b",)),
        Run(text[qe:hi] + (" …" if hi < len(text) else "")),
    )
    messages = pack(
        [
            Block((Run(f"Passage [{n}]", ("b",)),), keep_with_next=True),
            Block(runs, quote=True),
            Block(source_runs(passage.article, f"[{n}]")),
        ],
        limit,
    )
    return messages[0] if len(messages) == 1 or first else None


def _around(text: str, qs: int, qe: int, reach: int) -> tuple[int, int]:
    """``reach`` characters either side of ``[qs, qe)``, widened or narrowed to whole words."""
    lo, hi = max(0, qs - reach), min(len(text), qe + reach)
    if lo > 0:
        space = text.find(" ", lo, qs)
        lo = space + 1 if space >= 0 else qs
    if hi < len(text):
        space = text.rfind(" ", qe, hi)
        hi = space if space >= 0 else qe
    return lo, hi


def render_passage(passage: Passage, n: int, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """The text around quote ``n`` in one message, the quote itself in bold, and its source.

    A passage too long for one message is trimmed around the quote, as evenly as the words
    allow, with "…" where text was left out; a quote too long by itself is cut at its end.
    """
    text, qs, qe = passage.text, passage.quote_start, passage.quote_end
    if not 0 <= qs < qe <= len(text):
        qs = qe = 0
    whole = _passage_message(passage, n, 0, len(text), limit)
    if whole is not None:
        return whole
    found = None
    low, high = 0, max(qs, len(text) - qe)
    while low <= high:  # the widest reach around the quote that fits
        reach = (low + high) // 2
        message = _passage_message(passage, n, *_around(text, qs, qe, reach), limit)
        if message is not None:
            found, low = message, reach + 1
        else:
            high = reach - 1
    if found is not None:
        return found
    meta = passage.article
    if len(meta.title) + len(meta.outlet or "") + len(meta.date_text or "") > MAX_LABEL:
        # The quote does not fit beside a title (or outlet, or date) of thousands of
        # characters: the label is shown cut first, so that the quote keeps its room.
        short = replace(
            meta,
            title=_cut_label(meta.title),
            outlet=_cut_label(meta.outlet),
            date_text=_cut_label(meta.date_text),
        )
        return render_passage(replace(passage, article=short), n, limit)
    low, high = 1, qe - qs
    while low <= high:  # the quote alone does not fit: the longest start of it that does
        keep = (low + high) // 2
        message = _passage_message(passage, n, qs, qs + keep, limit)
        if message is not None:
            found, low = message, keep + 1
        else:
            high = keep - 1
    if found is not None:
        return found
    return _passage_message(passage, n, qs, qs, limit, first=True) or ""


def _cut_label(text: str | None) -> str | None:
    return text if text is None or len(text) <= MAX_LABEL // 3 else text[: MAX_LABEL // 3] + "…"


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
    lines += ["<b>Commands</b>"]
    lines += [command_line(c) for c in bot_commands() if c.in_help]
    lines += [
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


# -- short replies: what the bot says besides answers -------------------------------------------

SORRY = "Sorry, something went wrong on my side. Please try again in a moment."
INDEX_UNAVAILABLE = "Sorry, the articles are not available right now. Please try again later."
REFUSAL = "Sorry, this bot is private and only answers people it was set up for."
RESET_DONE = "Done: your next question stands alone."
RESET_NOTHING = "There was nothing to forget: your next question stands alone."
UNKNOWN_COMMAND = "I don't know that command. /help lists the ones I have."
NOT_TEXT = "I can only read questions written as text."
EMPTY_QUESTION = with_code(
    "Ask me something about the articles, e.g. `/ask Who is Russia's ambassador to the UN?`"
)
#: Answered instead when ``/good`` or ``/bad`` has no answer to rate (`code` marked as in commands).
NOTHING_HERE = NOTHING_TO_RATE + " To rate an older answer, reply to it with `/good` or `/bad`."
#: A button's answer (a pop-up, plain text) when its question or article is gone.
EXPIRED = "This button has expired. Please ask the question again."
CHANGED = "That article has changed or left the index since. Please ask again."


def example_question(title: str) -> str:
    """A question ``/start`` suggests about one article (plain text: the welcome escapes it)."""
    return f"What does the article “{title}” say?"


def render_too_long(length: int, limit: int) -> str:
    """A question over ``max_question_chars``, refused."""
    return f"That question is {length:,} characters long; please keep it under {limit:,}."


def render_slow_down(per_minute: int, wait: float) -> str:
    """A question over the per-person rate limit, refused for ``wait`` seconds."""
    return (
        f"You are asking faster than I can keep up with: up to {per_minute} questions a "
        f"minute. Please slow down and try again in {max(1, round(wait))} s."
    )


def render_button_slow_down(wait: float) -> str:
    """A "More" press over the per-person rate limit (a pop-up, plain text)."""
    return f"Please slow down; try again in {max(1, round(wait))} s."


def render_cannot_search(reason: str) -> str:
    """A question the core refused (:class:`qa_bot.errors.InvalidQuestionError`), with why."""
    return f"I can't search for that: {escape(reason)}."


__all__ = [
    "CHANGED",
    "EMPTY_QUESTION",
    "EXPIRED",
    "INDEX_UNAVAILABLE",
    "NOTHING_HERE",
    "NOT_TEXT",
    "NO_ANSWER",
    "REFUSAL",
    "RESET_DONE",
    "RESET_NOTHING",
    "SORRY",
    "UNKNOWN_COMMAND",
    "answer_blocks",
    "command_line",
    "date_range",
    "example_question",
    "render_answer",
    "render_button_slow_down",
    "render_cannot_search",
    "render_help",
    "render_one_answer",
    "render_passage",
    "render_slow_down",
    "render_sources",
    "render_status",
    "render_too_long",
    "render_welcome",
    "source_runs",
    "with_code",
]
