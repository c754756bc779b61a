"""A message that is a question: checked, answered in its conversation, sent with buttons.

A conversation is a private chat, or one person in a group (two people in a group don't share
a topic); a reply to one of the bot's answers builds on that answer's question, whoever asked
it. Questions of one conversation are handled one at a time, in the order they arrived, so the
second sees the first turn; other conversations run concurrently.

A question becomes ``service.ask(...)`` in exactly one place, :func:`ask_service` (through
:mod:`qa_bot.dialogue`, as in ``qa-bot chat``).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Hashable

from telegram import Message, MessageEntity, Update
from telegram.constants import ChatType

from qa_bot.dialogue.asking import Reply, answer_in_context
from qa_bot.errors import InvalidQuestionError
from qa_bot.models import Rated
from qa_bot.telegram.buttons import answer_keyboard
from qa_bot.telegram.render import (
    EMPTY_QUESTION,
    render_answer,
    render_cannot_search,
    render_slow_down,
    render_too_long,
)
from qa_bot.telegram.sending import reply, run_blocking, send_texts, show_typing, thread_id
from qa_bot.telegram.state import Context

log = logging.getLogger(__name__)


def command_argument(message: Message) -> str:
    """The text after ``/command`` (or ``/command@bot``), with its line breaks intact."""
    text = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return text[len(message.parse_entity(entity)) :].strip()
    return text.strip()


def replies_to_me(message: Message) -> bool:
    replied = message.reply_to_message
    return bool(
        replied is not None
        and replied.from_user is not None
        and replied.from_user.id == message.get_bot().id
    )


def conversation_key(update: Update) -> tuple[Hashable, int]:
    """Whose topic a message continues: (chat, 0) in a private chat, (chat, person) in a group;
    the second part is the conversation's key in the chat's data."""
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None
    if chat.type == ChatType.PRIVATE or user is None:
        return chat.id, 0
    return chat.id, user.id


async def _allowed_to_ask(update: Update, context: Context, text: str) -> bool:
    """The length limit and the per-person rate limit; replies politely when refusing."""
    limit = context.bot_data.qa.settings.max_question_chars
    if len(text) > limit:
        await reply(update, context, render_too_long(len(text), limit))
        return False
    if update.effective_user is None:
        return False
    per_minute = context.bot_data.settings.rate_limit_per_minute
    wait = context.user_data.rate.take(per_minute, time.time())
    if wait:
        await reply(update, context, render_slow_down(per_minute, wait))
        return False
    return True


async def answer_question(update: Update, context: Context, question: str) -> None:
    """Check the question, answer it from the articles, and send the answer with its buttons.

    The checks come first, so a refused question never waits; an accepted one waits until the
    conversation's previous question has been answered (and its turn recorded).
    """
    question = " ".join(question.split())
    if not question:
        await reply(update, context, EMPTY_QUESTION)
        return
    if not await _allowed_to_ask(update, context, question):
        return
    async with context.bot_data.turns.hold(conversation_key(update)):
        await _answer(update, context, question)


async def ask_service(update: Update, context: Context, question: str) -> Reply:
    """The one place a chat message becomes ``service.ask(...)``: in its conversation, so a
    follow-up is asked with the previous question's topic (and its answer says so)."""
    message = update.effective_message
    assert message is not None
    chat_data = context.chat_data
    settings = context.bot_data.qa.settings.conversation
    conversation = chat_data.conversation(conversation_key(update)[1], settings)
    replying = replies_to_me(message)
    replied = message.reply_to_message
    replied_turn = (
        chat_data.answers.get(replied.message_id) if replying and replied is not None else None
    )
    now = time.time()
    asked = await run_blocking(
        context,
        answer_in_context,
        context.bot_data.qa,
        replied_turn if replied_turn is not None else conversation.last(now),
        question,
        is_reply_to_bot=replying,
        filters=chat_data.active_filters(),
        now=now,
        replied_context=replied_turn is not None,
    )
    if asked.turn is not None:
        conversation.add(asked.turn)
    return asked


async def _answer(update: Update, context: Context, question: str) -> None:
    message = update.effective_message
    assert message is not None
    started = time.perf_counter()
    try:
        async with show_typing(context, message.chat_id, thread_id(message)):
            asked = await ask_service(update, context, question)
    except InvalidQuestionError as exc:
        await reply(update, context, render_cannot_search(str(exc)))
        return
    answer = asked.answer
    log.info(
        "chat %s: %s%s in %.2f s",
        message.chat_id,
        f"{len(answer.citations)} quote(s)" if answer.answered else "not covered",
        f", a follow-up ({asked.cue})" if asked.follow_up else "",
        time.perf_counter() - started,
    )
    # "More" searches what was searched: for a follow-up, the question with its topic.
    rated = Rated.of(answer, searched=asked.searched)
    markup = answer_keyboard(
        answer,
        question=asked.searched or answer.question,
        filters=context.chat_data.active_filters(),
        rated=rated,
    )
    quote = message if message.chat.type != ChatType.PRIVATE else None
    sent = await send_texts(
        context, message.chat_id, render_answer(answer), reply_to=quote, markup=markup
    )
    sent_ids = [m.message_id for m in sent]
    context.chat_data.remember_rated(sent_ids, conversation_key(update)[1], rated)
    if asked.turn is not None:
        context.chat_data.remember_answer(sent_ids, asked.turn)


async def ask_command(update: Update, context: Context) -> None:
    """``/ask question``; or ``/ask`` in reply to someone's message to ask that."""
    message = update.effective_message
    assert message is not None
    question = command_argument(message)
    replied = message.reply_to_message
    if not question and replied is not None and not replies_to_me(message):
        question = replied.text or ""
    await answer_question(update, context, question)


async def private_text(update: Update, context: Context) -> None:
    """In a private chat any text is a question."""
    assert update.effective_message is not None
    await answer_question(update, context, update.effective_message.text or "")


async def group_text(update: Update, context: Context) -> None:
    """In a group, a message that mentions the bot or replies to it is a question."""
    message = update.effective_message
    assert message is not None
    text = message.text or ""
    username = context.bot.username
    question = re.sub(rf"@{re.escape(username)}\b", " ", text, flags=re.IGNORECASE)
    await answer_question(update, context, question)


__all__ = [
    "answer_question",
    "ask_command",
    "ask_service",
    "command_argument",
    "conversation_key",
    "group_text",
    "private_text",
    "replies_to_me",
]
