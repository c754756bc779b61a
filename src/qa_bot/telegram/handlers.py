"""The bot's commands, its gate (who may use it) and its error handler.

Handlers are ``async def name(update, context) -> None``, as in python-telegram-bot's own
examples; every service call runs in the worker pool (:func:`.sending.run_blocking`).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import logging
import time
from typing import TYPE_CHECKING

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType
from telegram.error import Forbidden, NetworkError, RetryAfter, TelegramError
from telegram.ext import ApplicationHandlerStop, filters

from qa_bot.dialogue.access import is_allowed
from qa_bot.errors import QABotError
from qa_bot.filters import FilterChange, dates_command, outlet_command
from qa_bot.telegram.questions import command_argument, conversation_key, replies_to_me
from qa_bot.telegram.render import (
    INDEX_UNAVAILABLE,
    NOT_TEXT,
    REFUSAL,
    RESET_DONE,
    RESET_NOTHING,
    SORRY,
    UNKNOWN_COMMAND,
    example_question,
    render_help,
    render_sources,
    render_status,
    render_welcome,
    with_code,
)
from qa_bot.telegram.sending import reply, run_blocking, send_texts
from qa_bot.telegram.state import Context

if TYPE_CHECKING:
    from qa_bot.service import QAService

log = logging.getLogger(__name__)

#: ``telegram.constants.CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH``.
MAX_ALERT = 200


def _mentions_me(message: Message) -> bool:
    bot = message.get_bot()
    for entity, text in message.parse_entities(
        [MessageEntity.MENTION, MessageEntity.TEXT_MENTION]
    ).items():
        if entity.type == MessageEntity.TEXT_MENTION:
            if entity.user is not None and entity.user.id == bot.id:
                return True
        elif text[1:].casefold() == (bot.username or "").casefold():
            return True
    return False


class _AddressedToMe(filters.MessageFilter):
    """Group messages meant for the bot: they mention it or reply to one of its messages."""

    def filter(self, message: Message) -> bool:
        return _mentions_me(message) or replies_to_me(message)


ADDRESSED_TO_ME = _AddressedToMe(name="AddressedToMe")


def _is_command_for_me(message: Message) -> bool:
    text = message.text or ""
    if not text.startswith("/"):
        return False
    command = text.split(None, 1)[0]
    target = command.partition("@")[2]
    return not target or target.casefold() == (message.get_bot().username or "").casefold()


def _addressed(update: Update) -> bool:
    """Whether an update expects an answer from the bot (so a refusal is not chatter)."""
    if update.callback_query is not None:
        return True
    message = update.message
    if message is None:
        return False
    if message.chat.type == ChatType.PRIVATE:
        return True
    return _is_command_for_me(message) or _mentions_me(message) or replies_to_me(message)


async def gate(update: Update, context: Context) -> None:
    """Let only allowed people and chats through. A stranger who addresses the bot is told no
    at most once per chat per ``refusal_interval_seconds``; a button press is always answered
    (silently after the first refusal), so the button stops spinning."""
    settings = context.bot_data.settings
    user, chat = update.effective_user, update.effective_chat
    if is_allowed(
        user.id if user else None,
        chat.id if chat else None,
        allowed_users=settings.allowed_user_ids,
        allowed_chats=settings.allowed_chat_ids,
    ):
        return
    if _addressed(update):
        where = chat.id if chat is not None else ("user", user.id if user else None)
        tell = context.bot_data.refusals.should_refuse(
            where, settings.refusal_interval_seconds, time.time()
        )
        log.info("refused user %s in chat %s", user and user.id, chat and chat.id)
        if update.callback_query is not None:
            await update.callback_query.answer(REFUSAL if tell else None, show_alert=tell)
        elif tell:
            await reply(update, context, REFUSAL)
    raise ApplicationHandlerStop


async def start(update: Update, context: Context) -> None:
    """Say what the bot is and what it knows, with two questions to try."""
    service = context.bot_data.qa
    status = await run_blocking(context, service.status)
    examples = context.bot_data.settings.example_questions or await run_blocking(
        context, example_questions, service
    )
    await reply(update, context, render_welcome(status, examples))


def example_questions(service: QAService) -> list[str]:
    """Two questions for /start when none are configured: about the latest two articles."""
    sources = sorted(service.sources(), key=lambda s: s.meta.date or dt.date.min, reverse=True)
    return [example_question(s.meta.title) for s in sources[:2]]


async def help_command(update: Update, context: Context) -> None:
    """How to ask, and the commands."""
    service = context.bot_data.qa
    outlets = await run_blocking(context, service.outlets)
    await reply(
        update,
        context,
        render_help(
            max_question_chars=service.settings.max_question_chars,
            rate_limit_per_minute=context.bot_data.settings.rate_limit_per_minute,
            outlets=outlets,
            context_seconds=service.settings.conversation.ttl_seconds,
        ),
    )


async def reset_command(update: Update, context: Context) -> None:
    """Forget the conversation's previous questions: the next one stands alone."""
    key = conversation_key(update)
    async with context.bot_data.turns.hold(key):  # after a question still being answered
        conversation = context.chat_data.conversations.pop(key[1], None)
    had = conversation is not None and conversation.reset()
    await reply(update, context, RESET_DONE if had else RESET_NOTHING)


async def unknown_command(update: Update, context: Context) -> None:
    """A command the bot does not have (private chats only)."""
    await reply(update, context, UNKNOWN_COMMAND)


async def not_text(update: Update, context: Context) -> None:
    """Photos, stickers, voice... (private chats only)."""
    await reply(update, context, NOT_TEXT)


async def sources_command(update: Update, context: Context) -> None:
    """List the articles: title, outlet, date."""
    sources = await run_blocking(context, context.bot_data.qa.sources)
    message = update.effective_message
    assert message is not None
    quote = message if message.chat.type != ChatType.PRIVATE else None
    await send_texts(context, message.chat_id, render_sources(sources), reply_to=quote)


async def status_command(update: Update, context: Context) -> None:
    """How fresh the index is, and which model reads it."""
    status = await run_blocking(context, context.bot_data.qa.status)
    await reply(update, context, render_status(status))


async def _apply(update: Update, context: Context, change: FilterChange) -> None:
    context.chat_data.filters = change.filters
    await reply(update, context, with_code(change.message))


async def outlet_command_handler(update: Update, context: Context) -> None:
    """``/outlet NAME`` searches only that outlet in this chat; ``/outlet all`` undoes it."""
    assert update.effective_message is not None
    outlets = await run_blocking(context, context.bot_data.qa.outlets)
    argument = command_argument(update.effective_message)
    await _apply(update, context, outlet_command(context.chat_data.filters, argument, outlets))


async def dates_command_handler(update: Update, context: Context) -> None:
    """``/dates FROM TO`` (or one period) searches only articles published then, in this chat;
    ``/dates all`` undoes it."""
    assert update.effective_message is not None
    argument = command_argument(update.effective_message)
    await _apply(update, context, dates_command(context.chat_data.filters, argument))


async def on_error(update: object, context: Context) -> None:
    """Log the failure with its traceback, then tell the user something went wrong, unless
    the failure was in reaching Telegram: then the reply may have arrived after all (a
    timeout), or an apology would not get through either."""
    error = context.error
    if isinstance(error, Forbidden):
        log.info("cannot write to a chat (the bot was blocked or removed): %s", error)
        return
    log.error("error while handling an update", exc_info=error)
    if not isinstance(update, Update) or isinstance(error, NetworkError | RetryAfter):
        return
    text = INDEX_UNAVAILABLE if isinstance(error, QABotError) else SORRY
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text[:MAX_ALERT], show_alert=True)
            return
        except TelegramError:
            pass  # answered before the failure: say it in the chat instead
    with contextlib.suppress(TelegramError):
        await reply(update, context, text)


__all__ = [
    "ADDRESSED_TO_ME",
    "dates_command_handler",
    "gate",
    "help_command",
    "not_text",
    "on_error",
    "outlet_command_handler",
    "reset_command",
    "sources_command",
    "start",
    "status_command",
    "unknown_command",
]
