"""The buttons under an answer: "Passage n" (the text around quote n), "More" (further
passages) and 👍 / 👎 (readers' feedback, :mod:`.feedback`). Their data is kept by
python-telegram-bot's ``arbitrary_callback_data`` cache, as the objects of :mod:`.state`; a
press whose data is gone (an old message after a restart without persistence) raises
InvalidCallbackData, answered by :func:`expired_button`.

Every press is answered, and sends at most one message: a passage is trimmed around its quote
to fit, further passages are as many as fit.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from collections.abc import Sequence

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Message, Update
from telegram.constants import ChatType
from telegram.error import BadRequest

from qa_bot.models import Answer, Citation, Rated, Span
from qa_bot.telegram.render import (
    CHANGED,
    EXPIRED,
    render_button_slow_down,
    render_one_answer,
    render_passage,
)
from qa_bot.telegram.sending import run_blocking, send_texts, show_typing, thread_id
from qa_bot.telegram.state import Context, FeedbackButton, MoreButton, PassageButton

log = logging.getLogger(__name__)

#: Buttons in one row under an answer.
PER_ROW = 4
#: The feedback buttons, by vote.
VOTE_LABELS = {"good": "👍", "bad": "👎"}


def answer_keyboard(
    answer: Answer,
    *,
    question: str,
    filters: object,
    shown: Sequence[Span] = (),
    rated: Rated | None = None,
) -> InlineKeyboardMarkup | None:
    """A "Passage n" button per quote, and "More", which remembers the question searched, its
    filters and every place ``shown`` so far; with ``rated``, 👍 / 👎 under them (under a
    declined answer too). None when there is no button to show."""
    votes = [[_vote_button(v, rated) for v in VOTE_LABELS]] if rated else []
    if not answer.answered or not answer.citations:
        return InlineKeyboardMarkup(votes) if votes else None
    buttons = [
        InlineKeyboardButton(f"Passage {c.n}", callback_data=passage_button(c))
        for c in answer.citations
    ]
    rows = [buttons[i : i + PER_ROW] for i in range(0, len(buttons), PER_ROW)]
    more = MoreButton(
        question=question,
        filters=filters,  # type: ignore[arg-type]
        shown=(*shown, *(c.place for c in answer.citations)),
        next_n=answer.citations[-1].n + 1,
    )
    rows.append([InlineKeyboardButton("More", callback_data=more)])
    return InlineKeyboardMarkup(rows + votes)


def _vote_button(vote: str, rated: Rated) -> InlineKeyboardButton:
    return InlineKeyboardButton(VOTE_LABELS[vote], callback_data=FeedbackButton(vote, rated))


def passage_button(citation: Citation) -> PassageButton:
    article = citation.article
    return PassageButton(article.id, article.content_hash, citation.start, citation.end, citation.n)


def _anchor(update: Update) -> Message | None:
    query = update.callback_query
    message = query.message if query is not None else None
    return message if isinstance(message, Message) else None


async def press(update: Update, context: Context) -> None:
    """A press of one of our buttons: a passage, or further passages (votes have their own
    handler, :func:`.feedback.vote_pressed`)."""
    query = update.callback_query
    assert query is not None
    if _anchor(update) is None:
        # No message attached (too old, or an inline message): nowhere to answer in.
        await query.answer(EXPIRED, show_alert=True)
        return
    data = query.data
    if isinstance(data, PassageButton):
        await _show_passage(update, context, data)
    elif isinstance(data, MoreButton):
        await _show_more(update, context, data)
    else:
        await query.answer(EXPIRED, show_alert=True)


async def expired_button(update: Update, context: Context) -> None:
    """A press whose data the bot no longer has (InvalidCallbackData)."""
    query = update.callback_query
    assert query is not None
    await query.answer(EXPIRED, show_alert=True)


async def _show_passage(update: Update, context: Context, button: PassageButton) -> None:
    query, anchor = update.callback_query, _anchor(update)
    assert query is not None and anchor is not None
    passage = await run_blocking(
        context,
        context.bot_data.qa.passage,
        button.article_id,
        button.start,
        button.end,
        content_hash=button.content_hash,
    )
    if passage is None:
        await query.answer(CHANGED, show_alert=True)
        return
    await query.answer()
    await send_texts(context, anchor.chat_id, [render_passage(passage, button.n)], reply_to=anchor)


async def _show_more(update: Update, context: Context, button: MoreButton) -> None:
    query, anchor = update.callback_query, _anchor(update)
    assert query is not None and anchor is not None
    wait = context.user_data.rate.take(context.bot_data.settings.rate_limit_per_minute, time.time())
    if wait:
        await query.answer(render_button_slow_down(wait))
        return
    await query.answer()
    if anchor.reply_markup is not None:
        # The answer keeps its Passage buttons; More has been used.
        rows = [
            row
            for row in anchor.reply_markup.inline_keyboard
            if not any(isinstance(b.callback_data, MoreButton) for b in row)
        ]
        with contextlib.suppress(BadRequest):
            await anchor.edit_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
    # The old keyboard's data (the kept Passage buttons were stored again by the edit).
    with contextlib.suppress(KeyError):
        context.drop_callback_data(query)
    service = context.bot_data.qa
    async with show_typing(context, anchor.chat_id, thread_id(anchor)):
        answer = await run_blocking(
            context,
            service.more,
            button.question,
            filters=button.filters,
            shown=button.shown,
            first_n=button.next_n,
        )
    text = render_one_answer(answer)
    shown_answer = _as_rendered(answer, text)
    markup = answer_keyboard(
        shown_answer, question=button.question, filters=button.filters, shown=button.shown
    )
    quote = anchor if anchor.chat.type != ChatType.PRIVATE else None
    await send_texts(context, anchor.chat_id, [text], reply_to=quote, markup=markup)


def _as_rendered(answer: Answer, text: str) -> Answer:
    """The answer with only the quotes its one message shows (for their buttons)."""
    kept = tuple(c for c in answer.citations if f"[{c.n}]" in text)
    return dataclasses.replace(answer, citations=kept)


__all__ = [
    "VOTE_LABELS",
    "answer_keyboard",
    "expired_button",
    "press",
]
