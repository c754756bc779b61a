"""Readers' feedback in Telegram: the 👍 / 👎 buttons under an answer, and ``/good`` and
``/bad note`` for the answer replied to (or the person's latest answer).

A vote goes to the service's feedback log (:attr:`QAService.feedback`) with the chat id,
which the log keeps only as a salted hash; nothing about the person is passed on. Every press
is answered with a short thanks; a second press on the same answer changes the vote, and the
same vote again is only acknowledged.
"""

from __future__ import annotations

from telegram import Update

from qa_bot.commands import vote_reply
from qa_bot.models import Rated
from qa_bot.telegram.questions import command_argument, conversation_key, replies_to_me
from qa_bot.telegram.render import NOTHING_HERE, with_code
from qa_bot.telegram.sending import reply, run_blocking
from qa_bot.telegram.state import Context, FeedbackButton


async def _record(context: Context, chat_id: int, rated: Rated, vote: str, note: str) -> str:
    """Store the vote (in the worker pool: it writes to disk) and say what it did."""
    feedback = context.bot_data.qa.feedback
    outcome = await run_blocking(
        context, feedback.record, rated, vote, note=note, chat_id=chat_id, front="telegram"
    )
    return vote_reply(vote, outcome, prefix="/", noted=bool(note))


async def vote_pressed(update: Update, context: Context) -> None:
    """A press of 👍 or 👎: store the vote, and thank the reader in the button's answer."""
    query = update.callback_query
    assert query is not None
    button = query.data
    chat = update.effective_chat
    if not isinstance(button, FeedbackButton) or chat is None:
        await query.answer()
        return
    text = await _record(context, chat.id, button.rated, button.vote, "")
    await query.answer(text.replace("`", ""))


async def _vote_command(update: Update, context: Context, vote: str) -> None:
    message = update.effective_message
    assert message is not None
    replied = message.reply_to_message
    replied_id = replied.message_id if replied is not None and replies_to_me(message) else None
    rated = context.chat_data.rated_for(replied_id, conversation_key(update)[1])
    if rated is None:
        await reply(update, context, with_code(NOTHING_HERE))
        return
    text = await _record(context, message.chat_id, rated, vote, command_argument(message))
    await reply(update, context, with_code(text))


async def good_command(update: Update, context: Context) -> None:
    """``/good``: the answer replied to (else your latest) was right."""
    await _vote_command(update, context, "good")


async def bad_command(update: Update, context: Context) -> None:
    """``/bad [note]``: the answer replied to (else your latest) was wrong; the note may say
    what is right."""
    await _vote_command(update, context, "bad")


__all__ = ["bad_command", "good_command", "vote_pressed"]
