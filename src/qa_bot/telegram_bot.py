"""The Telegram front: python-telegram-bot v22 handlers in front of :class:`QAService`.

Shaped after the library's own examples: handlers ``async def name(update, context) -> None``,
one function that builds the :class:`~telegram.ext.Application`, one error handler.

- Retrieval is CPU-bound, so every service call runs in a small thread pool
  (``telegram.workers`` threads) while the event loop keeps serving other chats; updates are
  processed concurrently, and a typing indicator runs while a question is worked on.
- The service reopens the index when ``qa-bot index`` has switched it, so a rebuild is picked
  up by the next question without a restart.
- Everything the articles say is escaped by :mod:`qa_bot.telegram_render`, which also cuts
  replies to Telegram's 4096-character limit.
- Per-chat state lives in ``context.chat_data`` (:class:`ChatData`), per-user state in
  ``context.user_data`` (:class:`UserData`), shared objects in ``application.bot_data``
  (:class:`BotData`).
- Follow-ups ("When was that?") are answered with the previous question's topic, exactly as in
  ``qa-bot chat`` (:mod:`qa_bot.conversation`). A conversation is a private chat, or one
  person in a group (two people in a group don't share a topic); a reply to one of the bot's
  messages always counts as a follow-up. Questions of one conversation are handled one at a
  time, in the order they arrived (:class:`KeyedLocks`), so the second sees the first turn
  and is answered after it; other conversations still run concurrently.

A question becomes ``service.ask(...)`` in exactly one place, :func:`ask_service`.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import functools
import html
import logging
import re
import time
from collections import OrderedDict, deque
from collections.abc import AsyncIterator, Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, TypeVar

from telegram import (
    BotCommand,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    LinkPreviewOptions,
    Message,
    MessageEntity,
    ReplyParameters,
    Update,
)
from telegram.constants import ChatAction, ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, NetworkError, TelegramError, TimedOut
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    ApplicationHandlerStop,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    ExtBot,
    MessageHandler,
    TypeHandler,
    filters,
)

from qa_bot.conversation import Conversations, Reply, Turn
from qa_bot.errors import InvalidQuestionError, QABotError
from qa_bot.filters import LIFT_WORDS, SearchFilters, find_outlet, parse_date_range
from qa_bot.models import Answer, Citation
from qa_bot.retrieval import near_duplicate
from qa_bot.settings import ConversationSettings, TelegramSettings
from qa_bot.telegram_render import (
    MAX_MESSAGE_LENGTH,
    escape,
    render_answer,
    render_help,
    render_passage,
    render_sources,
    render_status,
    render_welcome,
)

log = logging.getLogger(__name__)

T = TypeVar("T")

#: ``telegram.constants.CallbackQueryLimit.ANSWER_CALLBACK_QUERY_TEXT_LENGTH``.
MAX_ALERT = 200
#: ``telegram.constants.InlineKeyboardButtonLimit.MAX_CALLBACK_DATA``, in bytes.
MAX_CALLBACK_DATA = 64
#: How many "More" requests a chat remembers (older buttons say they have expired).
MORE_REMEMBERED = 32
#: Answer messages per chat whose question a reply can build on (the latest ones).
ANSWERS_REMEMBERED = 200
#: Telegram shows a chat action for about 5 s; renew it a little sooner.
TYPING_EVERY = 4.5
#: Network errors (not flood control, which the rate limiter handles) are retried this often.
NETWORK_RETRIES = 3

SORRY = "Sorry, something went wrong on my side. Please try again in a moment."
INDEX_UNAVAILABLE = "Sorry, the articles are not available right now. Please try again later."
REFUSAL = "Sorry, this bot is private and only answers people it was set up for."
EXPIRED = "This button has expired. Please ask the question again."
RESET_DONE = "Done: your next question stands alone."
RESET_NOTHING = "There was nothing to forget: your next question stands alone."

COMMANDS = (
    ("ask", "Ask a question about the articles"),
    ("sources", "The articles I know: title, outlet, date"),
    ("outlet", "Search only one outlet's articles in this chat"),
    ("dates", "Search only articles published in a date range"),
    ("reset", "Forget my previous questions; the next one stands alone"),
    ("status", "How fresh the index is"),
    ("help", "How to ask, and the commands"),
    ("start", "What this bot is"),
)


# --- state ---------------------------------------------------------------------------------------


@dataclass
class MoreRequest:
    """What a "More" button needs to fetch the next passages of an answer."""

    question: str
    filters: SearchFilters | None
    shown: list[tuple[str, int, int]]
    next_n: int


@dataclass
class ChatData:
    """Per-chat state (``context.chat_data``)."""

    #: The outlet chosen with ``/outlet``; questions in this chat search only its articles.
    outlet: str | None = None
    #: The publication dates chosen with ``/dates`` (inclusive; None: open-ended).
    since: dt.date | None = None
    until: dt.date | None = None
    #: Pending "More" buttons by token, oldest first.
    more: OrderedDict[str, MoreRequest] = field(default_factory=OrderedDict)
    next_token: int = 0
    #: The conversation turn behind each answer message, by message id, oldest first: a
    #: reply to an answer builds on that answer's question (in a group, whoever asked it).
    answers: OrderedDict[int, Turn] = field(default_factory=OrderedDict)


@dataclass
class UserData:
    """Per-user state (``context.user_data``): when they last asked, for the rate limit."""

    asked: deque[float] = field(default_factory=deque)


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
    """Shared objects (``application.bot_data``), set by :func:`build_application`."""

    service: Any = None
    settings: TelegramSettings = field(default_factory=TelegramSettings)
    executor: ThreadPoolExecutor | None = None
    #: Every conversation's recent turns, for follow-ups (in memory unless a setting says).
    conversations: Conversations = field(
        default_factory=lambda: Conversations(ConversationSettings())
    )
    #: One question at a time per conversation, in order.
    turns: KeyedLocks = field(default_factory=KeyedLocks)
    #: (index generation, content-hash prefix -> article id), for the "Passage" buttons.
    article_keys: tuple[str, dict[str, str]] = ("", {})


Context = CallbackContext[ExtBot[None], UserData, ChatData, BotData]


# --- helpers ----------------------------------------------------------------------------------


async def run_blocking(context: Context, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
    """Run a (CPU-bound or disk-bound) service call in the worker pool, off the event loop."""
    loop = asyncio.get_running_loop()
    return await loop.run_in_executor(
        context.bot_data.executor, functools.partial(fn, *args, **kwargs)
    )


@contextlib.asynccontextmanager
async def show_typing(context: Context, chat_id: int, thread_id: int | None) -> AsyncIterator[None]:
    """Show "typing…" in the chat until the block ends, renewing it while the work lasts."""
    done = asyncio.Event()

    async def keep_typing() -> None:
        while not done.is_set():
            try:
                await context.bot.send_chat_action(
                    chat_id, ChatAction.TYPING, message_thread_id=thread_id
                )
            except TelegramError as exc:
                log.debug("chat action failed: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(done.wait(), TYPING_EVERY)

    task = asyncio.create_task(keep_typing())
    try:
        yield
    finally:
        done.set()
        # Let an action already on its way arrive first, so it cannot outlive the reply.
        try:
            await asyncio.wait_for(task, 2.0)
        except (TimeoutError, asyncio.CancelledError):
            task.cancel()


def _thread_id(message: Message | None) -> int | None:
    return message.message_thread_id if message is not None and message.is_topic_message else None


def _plain(text: str) -> str:
    """A last-resort plain-text copy of a rendered message."""
    return html.unescape(re.sub(r"<[^>]+>", "", text))[:MAX_MESSAGE_LENGTH]


async def send_texts(
    context: Context,
    chat_id: int,
    texts: Sequence[str],
    *,
    reply_to: Message | None = None,
    markup: InlineKeyboardMarkup | None = None,
    sent: list[Message] | None = None,
) -> Message | None:
    """Send rendered messages in order; the first replies to ``reply_to``, the last carries
    ``markup``. Returns the last message sent; ``sent`` collects them all."""
    last = None
    thread_id = _thread_id(reply_to)
    for i, text in enumerate(texts):
        reply = (
            ReplyParameters(reply_to.message_id, allow_sending_without_reply=True)
            if reply_to is not None and i == 0
            else None
        )
        keyboard = markup if i == len(texts) - 1 else None
        try:
            last = await context.bot.send_message(
                chat_id,
                text,
                reply_parameters=reply,
                reply_markup=keyboard,
                message_thread_id=thread_id,
            )
        except BadRequest as exc:
            if "parse entities" not in str(exc):
                raise
            # A rendering bug must not cost the user the answer: log it, send it plain.
            log.error("Telegram refused our HTML (%s); sending it as plain text", exc)
            last = await context.bot.send_message(
                chat_id,
                _plain(text),
                parse_mode=None,
                reply_parameters=reply,
                reply_markup=keyboard,
                message_thread_id=thread_id,
            )
        if sent is not None:
            sent.append(last)
    return last


async def reply(update: Update, context: Context, text: str) -> None:
    """A short HTML reply to the message being handled (quoting it in groups)."""
    message = update.effective_message
    if message is None:
        return
    quote = message if message.chat.type != ChatType.PRIVATE else None
    await send_texts(context, message.chat_id, [text], reply_to=quote)


def _command_argument(message: Message) -> str:
    """The text after ``/command`` (or ``/command@bot``), with its line breaks intact."""
    text = message.text or ""
    for entity in message.entities:
        if entity.type == MessageEntity.BOT_COMMAND and entity.offset == 0:
            return text[len(message.parse_entity(entity)) :].strip()
    return text.strip()


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


def _replies_to_me(message: Message) -> bool:
    replied = message.reply_to_message
    return bool(
        replied is not None
        and replied.from_user is not None
        and replied.from_user.id == message.get_bot().id
    )


class _AddressedToMe(filters.MessageFilter):
    """Group messages meant for the bot: they mention it or reply to one of its messages."""

    def filter(self, message: Message) -> bool:
        return _mentions_me(message) or _replies_to_me(message)


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
    return _is_command_for_me(message) or _mentions_me(message) or _replies_to_me(message)


def _take_turn(user_data: UserData, per_minute: int, now: float) -> float:
    """0 if the user may ask now (and record it), else the seconds until they may."""
    if per_minute <= 0:
        return 0.0
    asked = user_data.asked
    while asked and now - asked[0] >= 60:
        asked.popleft()
    if len(asked) >= per_minute:
        return 60 - (now - asked[0])
    asked.append(now)
    return 0.0


async def _allowed_to_ask(update: Update, context: Context, text: str) -> bool:
    """The length limit and the per-user rate limit; replies politely when refusing."""
    settings = context.bot_data.settings
    if len(text) > settings.max_question_chars:
        await reply(
            update,
            context,
            f"That question is {len(text):,} characters long; please keep it under "
            f"{settings.max_question_chars:,}.",
        )
        return False
    user = update.effective_user
    if user is None:
        return False
    wait = _take_turn(context.user_data, settings.rate_limit_per_minute, time.monotonic())
    if wait:
        await reply(
            update,
            context,
            "You are asking faster than I can keep up with: up to "
            f"{settings.rate_limit_per_minute} questions a minute. Please slow down and try "
            f"again in {max(1, round(wait))} s.",
        )
        return False
    return True


# --- asking --------------------------------------------------------------------------------------


def chat_filters(chat_data: ChatData) -> SearchFilters | None:
    filters = SearchFilters(
        outlets=(chat_data.outlet,) if chat_data.outlet else (),
        since=chat_data.since,
        until=chat_data.until,
    )
    return filters if filters.active else None


def conversation_key(update: Update) -> Hashable:
    """Whose topic a message continues: the chat in a private chat, the person in a group."""
    chat, user = update.effective_chat, update.effective_user
    assert chat is not None
    if chat.type == ChatType.PRIVATE or user is None:
        return chat.id
    return (chat.id, user.id)


async def ask_service(update: Update, context: Context, question: str) -> Reply:
    """The one place a chat message becomes ``service.ask(...)``: through the conversation, so
    a follow-up is asked with the previous question's topic (and its answer says so)."""
    message = update.effective_message
    assert message is not None
    replying = _replies_to_me(message)
    replied = message.reply_to_message
    return await run_blocking(
        context,
        context.bot_data.conversations.reply,
        context.bot_data.service,
        conversation_key(update),
        question,
        is_reply_to_bot=replying,
        filters=chat_filters(context.chat_data),
        replying_to=(
            context.chat_data.answers.get(replied.message_id)
            if replying and replied is not None
            else None
        ),
    )


async def answer_question(update: Update, context: Context, question: str) -> None:
    """Check the question, answer it from the articles, and send the answer with its buttons.

    The checks come first, so a refused question never waits; an accepted one waits until the
    conversation's previous question has been answered (and its turn recorded).
    """
    question = " ".join(question.split())
    if not question:
        await reply(
            update,
            context,
            "Ask me something about the articles, e.g. "
            "<code>/ask Who is Russia's ambassador to the UN?</code>",
        )
        return
    if not await _allowed_to_ask(update, context, question):
        return
    async with context.bot_data.turns.hold(conversation_key(update)):
        await _answer(update, context, question)


async def _answer(update: Update, context: Context, question: str) -> None:
    message = update.effective_message
    assert message is not None
    started = time.perf_counter()
    try:
        async with show_typing(context, message.chat_id, _thread_id(message)):
            asked = await ask_service(update, context, question)
    except InvalidQuestionError as exc:
        await reply(update, context, f"I can't search for that: {escape(str(exc))}.")
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
    sent = await send_answer(
        update,
        context,
        answer,
        question=asked.searched or answer.question,
        filters=chat_filters(context.chat_data),
    )
    if asked.turn is not None:
        _remember_answer(context.chat_data, sent, asked.turn)


async def send_answer(
    update: Update,
    context: Context,
    answer: Answer,
    *,
    question: str,
    filters: SearchFilters | None,
    shown: Sequence[tuple[str, int, int]] = (),
) -> list[Message]:
    """Send an answer, split as needed, with a "Passage n" button per quote and "More"
    (which remembers the question, its filters and what was ``shown`` already); returns the
    messages sent."""
    chat = update.effective_chat
    assert chat is not None
    markup = None
    if answer.answered and answer.citations:
        token = _remember_more(
            context.chat_data,
            MoreRequest(
                question=question,
                filters=filters,
                shown=[*shown, *((c.article.id, c.start, c.end) for c in answer.citations)],
                next_n=answer.citations[-1].n + 1,
            ),
        )
        markup = answer_keyboard(answer.citations, more_token=token)
    anchor = update.effective_message
    quote = anchor if isinstance(anchor, Message) and chat.type != ChatType.PRIVATE else None
    sent: list[Message] = []
    await send_texts(
        context, chat.id, render_answer(answer), reply_to=quote, markup=markup, sent=sent
    )
    return sent


def _remember_answer(chat_data: ChatData, messages: Sequence[Message], turn: Turn) -> None:
    for message in messages:
        chat_data.answers[message.message_id] = turn
    while len(chat_data.answers) > ANSWERS_REMEMBERED:
        chat_data.answers.popitem(last=False)


def _remember_more(chat_data: ChatData, request: MoreRequest) -> str:
    chat_data.next_token += 1
    token = str(chat_data.next_token)
    chat_data.more[token] = request
    while len(chat_data.more) > MORE_REMEMBERED:
        chat_data.more.popitem(last=False)
    return token


def passage_data(citation: Citation) -> str:
    """Callback data of a "Passage n" button: the article by its content (so a changed or
    removed article is noticed, across restarts and re-indexing), and the quote's span."""
    data = f"p:{citation.article.content_hash[:12]}:{citation.start}:{citation.end}:{citation.n}"
    assert len(data.encode()) <= MAX_CALLBACK_DATA
    return data


def answer_keyboard(
    citations: Sequence[Citation], *, more_token: str | None
) -> InlineKeyboardMarkup:
    buttons = [
        InlineKeyboardButton(f"Passage {c.n}", callback_data=passage_data(c)) for c in citations
    ]
    rows = [buttons[i : i + 4] for i in range(0, len(buttons), 4)]
    if more_token is not None:
        rows.append([InlineKeyboardButton("More", callback_data=f"m:{more_token}")])
    return InlineKeyboardMarkup(rows)


def further_passages(service: Any, request: MoreRequest, k: int) -> Answer:
    """The next ``k`` passages for a question, skipping what was shown already."""
    retrieval = service.search(request.question, filters=request.filters)
    citations: list[Citation] = []
    for hit in retrieval.hits if retrieval is not None else []:
        span = (hit.article.id, hit.chunk.start, hit.chunk.end)
        if any(a == span[0] and s < span[2] and span[1] < e for a, s, e in request.shown):
            continue
        if any(near_duplicate(hit.chunk.text, c.quote) for c in citations):
            continue
        citations.append(
            Citation(
                n=request.next_n + len(citations),
                article=hit.article,
                quote=hit.chunk.text,
                start=hit.chunk.start,
                end=hit.chunk.end,
                score=hit.score,
            )
        )
        if len(citations) == k:
            break
    return Answer(
        question=request.question,
        answered=bool(citations),
        text="" if citations else "No further passages.",
        citations=tuple(citations),
        notes=("Further passages, less closely matching:",) if citations else (),
    )


def _find_passage(bot_data: BotData, key: str, start: int, end: int) -> Any:
    """The passage behind a "Passage n" button, or None when the article changed or left."""
    service = bot_data.service
    generation = service.snapshot().generation
    known_generation, keys = bot_data.article_keys
    if known_generation != generation:
        keys = {s.meta.content_hash[:12]: s.meta.id for s in service.sources()}
        bot_data.article_keys = (generation, keys)
    article_id = keys.get(key)
    return None if article_id is None else service.passage(article_id, start, end)


# --- handlers ----------------------------------------------------------------------------------


async def gate(update: Update, context: Context) -> None:
    """Let only allowed users and chats through; refuse politely when we were addressed."""
    settings = context.bot_data.settings
    if not settings.allowed_user_ids and not settings.allowed_chat_ids:
        return
    user, chat = update.effective_user, update.effective_chat
    if (user is not None and user.id in settings.allowed_user_ids) or (
        chat is not None and chat.id in settings.allowed_chat_ids
    ):
        return
    if _addressed(update):
        log.info("refused user %s in chat %s", user and user.id, chat and chat.id)
        if update.callback_query is not None:
            await update.callback_query.answer(REFUSAL, show_alert=True)
        else:
            await reply(update, context, REFUSAL)
    raise ApplicationHandlerStop


async def start(update: Update, context: Context) -> None:
    """Say what the bot is and what it knows, with two questions to try."""
    status = await run_blocking(context, context.bot_data.service.status)
    examples = context.bot_data.settings.example_questions or await run_blocking(
        context, example_questions, context.bot_data.service
    )
    await reply(update, context, render_welcome(status, examples))


def example_questions(service: Any) -> list[str]:
    """Two questions for /start when none are configured: about the latest two articles."""
    sources = sorted(service.sources(), key=lambda s: s.meta.date or dt.date.min, reverse=True)
    return [f"What does the article “{s.meta.title}” say?" for s in sources[:2]]


async def help_command(update: Update, context: Context) -> None:
    """How to ask, and the commands."""
    settings = context.bot_data.settings
    outlets = await run_blocking(context, lambda: context.bot_data.service.snapshot().outlets())
    await reply(
        update,
        context,
        render_help(
            max_question_chars=settings.max_question_chars,
            rate_limit_per_minute=settings.rate_limit_per_minute,
            outlets=outlets,
            context_seconds=context.bot_data.conversations.ttl_seconds,
        ),
    )


async def reset_command(update: Update, context: Context) -> None:
    """Forget the conversation's previous questions: the next one stands alone."""
    key = conversation_key(update)
    async with context.bot_data.turns.hold(key):  # after a question still being answered
        had = await run_blocking(context, context.bot_data.conversations.reset, key)
    await reply(update, context, RESET_DONE if had else RESET_NOTHING)


async def ask_command(update: Update, context: Context) -> None:
    """``/ask question``; or ``/ask`` in reply to someone's message to ask that."""
    message = update.effective_message
    assert message is not None
    question = _command_argument(message)
    replied = message.reply_to_message
    if not question and replied is not None and not _replies_to_me(message):
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


async def unknown_command(update: Update, context: Context) -> None:
    """A command the bot does not have (private chats only)."""
    await reply(update, context, "I don't know that command. /help lists the ones I have.")


async def not_text(update: Update, context: Context) -> None:
    """Photos, stickers, voice... (private chats only)."""
    await reply(update, context, "I can only read questions written as text.")


async def sources_command(update: Update, context: Context) -> None:
    """List the articles: title, outlet, date."""
    sources = await run_blocking(context, context.bot_data.service.sources)
    message = update.effective_message
    assert message is not None
    quote = message if message.chat.type != ChatType.PRIVATE else None
    await send_texts(context, message.chat_id, render_sources(sources), reply_to=quote)


async def status_command(update: Update, context: Context) -> None:
    """How fresh the index is, and which model reads it."""
    status = await run_blocking(context, context.bot_data.service.status)
    await reply(update, context, render_status(status))


async def outlet_command(update: Update, context: Context) -> None:
    """``/outlet NAME`` searches only that outlet in this chat; ``/outlet all`` undoes it."""
    message = update.effective_message
    assert message is not None
    wanted = _command_argument(message)
    outlets = await run_blocking(context, lambda: context.bot_data.service.snapshot().outlets())
    known = escape(", ".join(outlets)) or "none"
    chat_data = context.chat_data
    if not wanted:
        current = (
            f"Searching only <b>{escape(chat_data.outlet)}</b>."
            if chat_data.outlet
            else "Searching all outlets."
        )
        await reply(
            update,
            context,
            f"{current}\nOutlets: {known}.\nUse <code>/outlet NAME</code> "
            "or <code>/outlet all</code>.",
        )
        return
    if wanted.casefold() in LIFT_WORDS:
        chat_data.outlet = None
        await reply(update, context, "Searching all outlets again.")
        return
    match = find_outlet(wanted, outlets)
    if match is None:
        await reply(
            update, context, f"I know no outlet called “{escape(wanted)}”. Outlets: {known}."
        )
        return
    chat_data.outlet = match
    await reply(
        update,
        context,
        f"From now on I search only <b>{escape(match)}</b> articles in this chat. "
        "<code>/outlet all</code> to search everything again.",
    )


DATES_USAGE = (
    "<code>/dates 2016-09</code> (a month), <code>/dates 2016-09-20 2016-09-30</code>, "
    "<code>/dates 2016-09-20 -</code> (from then on), <code>/dates all</code> (every date)."
)


def _describe_dates(since: dt.date | None, until: dt.date | None) -> str:
    return SearchFilters(since=since, until=until).describe() or "published at any date"


async def dates_command(update: Update, context: Context) -> None:
    """``/dates FROM TO`` (or one period) searches only articles published then, in this chat;
    ``/dates all`` undoes it. Undated articles cannot be said to fall inside a range, so a
    range leaves them out, and the reply says so."""
    message = update.effective_message
    assert message is not None
    argument = _command_argument(message)
    chat_data = context.chat_data
    if not argument:
        current = (
            f"Searching only articles {escape(_describe_dates(chat_data.since, chat_data.until))}."
            if chat_data.since or chat_data.until
            else "Searching articles of every date."
        )
        await reply(update, context, f"{current}\nUse {DATES_USAGE}")
        return
    if argument.casefold() in LIFT_WORDS:
        chat_data.since = chat_data.until = None
        await reply(update, context, "Searching articles of every date again.")
        return
    try:
        since, until = parse_date_range(argument)
    except ValueError as exc:
        await reply(update, context, f"Sorry, {escape(str(exc))}.\nUse {DATES_USAGE}")
        return
    chat_data.since, chat_data.until = since, until
    if since is None and until is None:
        await reply(update, context, "Searching articles of every date again.")
        return
    await reply(
        update,
        context,
        f"From now on I search only articles {escape(_describe_dates(since, until))} in this "
        "chat; articles without a stated date are left out. <code>/dates all</code> to search "
        "every date again.",
    )


async def button(update: Update, context: Context) -> None:
    """The buttons under answers: "Passage n" and "More". Every query is answered."""
    query = update.callback_query
    assert query is not None
    kind, _, rest = (query.data or "").partition(":")
    if kind == "p":
        await _show_passage(update, context, rest)
    elif kind == "m":
        await _show_more(update, context, rest)
    else:
        await query.answer(EXPIRED, show_alert=True)


async def _show_passage(update: Update, context: Context, rest: str) -> None:
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    try:
        key, start, end, n = rest.split(":")
        location = (key, int(start), int(end), int(n))
    except ValueError:
        await query.answer(EXPIRED, show_alert=True)
        return
    passage = await run_blocking(context, _find_passage, context.bot_data, *location[:3])
    if passage is None:
        await query.answer(
            "That article has changed or left the index since. Please ask again.",
            show_alert=True,
        )
        return
    await query.answer()
    anchor = query.message if isinstance(query.message, Message) else None
    await send_texts(
        context, update.effective_chat.id, render_passage(passage, location[3]), reply_to=anchor
    )


async def _show_more(update: Update, context: Context, token: str) -> None:
    query = update.callback_query
    assert query is not None and update.effective_chat is not None
    request = context.chat_data.more.pop(token, None)
    if request is None:
        await query.answer(EXPIRED, show_alert=True)
        return
    wait = _take_turn(
        context.user_data, context.bot_data.settings.rate_limit_per_minute, time.monotonic()
    )
    if wait:
        context.chat_data.more[token] = request
        await query.answer(f"Please slow down; try again in {max(1, round(wait))} s.")
        return
    await query.answer()
    anchor = query.message if isinstance(query.message, Message) else None
    if anchor is not None and anchor.reply_markup is not None:
        # The answer keeps its Passage buttons; More has been used.
        rows = [
            row
            for row in anchor.reply_markup.inline_keyboard
            if not any(b.callback_data == f"m:{token}" for b in row)
        ]
        with contextlib.suppress(BadRequest):
            await anchor.edit_reply_markup(InlineKeyboardMarkup(rows) if rows else None)
    service = context.bot_data.service
    async with show_typing(context, update.effective_chat.id, _thread_id(anchor)):
        answer = await run_blocking(
            context, further_passages, service, request, service.settings.retrieval.top_k
        )
    await send_answer(
        update,
        context,
        answer,
        question=request.question,
        filters=request.filters,
        shown=request.shown,
    )


async def on_error(update: object, context: Context) -> None:
    """Log the failure with its traceback, then tell the user something went wrong."""
    if isinstance(context.error, Forbidden):
        log.info("cannot write to a chat (the bot was blocked or removed): %s", context.error)
        return
    log.error("error while handling an update", exc_info=context.error)
    if not isinstance(update, Update):
        return
    text = INDEX_UNAVAILABLE if isinstance(context.error, QABotError) else SORRY
    if update.callback_query is not None:
        try:
            await update.callback_query.answer(text[:MAX_ALERT], show_alert=True)
            return
        except TelegramError:
            pass  # answered before the failure: say it in the chat instead
    with contextlib.suppress(TelegramError):
        await reply(update, context, text)


# --- the application -------------------------------------------------------------------------


class PatientRateLimiter(AIORateLimiter):
    """Telegram's flood limits kept, RetryAfter waited out (up to 3 times), and network
    errors retried with backoff. A timed-out ``sendMessage`` is not repeated: it may have
    arrived, and a doubled answer is worse than the error message.

    Chat actions ("typing…") bypass all of it: they are cosmetic, sent best effort, and must
    neither wait in line before answers nor spend the answers' 30-a-second budget."""

    def __init__(self, *, network_retries: int = NETWORK_RETRIES, **kwargs: Any):
        kwargs.setdefault("max_retries", 3)
        super().__init__(**kwargs)
        self._network_retries = network_retries

    async def process_request(  # type: ignore[override]
        self,
        callback: Any,
        args: Any,
        kwargs: dict[str, Any],
        endpoint: str,
        data: dict[str, Any],
        rate_limit_args: int | None,
    ) -> Any:
        if endpoint == "sendChatAction":
            return await callback(*args, **kwargs)
        delay = 0.5
        for attempt in range(self._network_retries + 1):
            try:
                return await super().process_request(
                    callback, args, kwargs, endpoint, data, rate_limit_args
                )
            except BadRequest:
                raise
            except NetworkError as exc:
                last = attempt == self._network_retries
                if last or (isinstance(exc, TimedOut) and endpoint == "sendMessage"):
                    raise
                log.warning("%s failed (%s); retrying in %.1f s", endpoint, exc, delay)
                await asyncio.sleep(delay)
                delay *= 2
        raise AssertionError("unreachable")


async def _post_init(application: Application) -> None:  # type: ignore[type-arg]
    await application.bot.set_my_commands([BotCommand(c, d) for c, d in COMMANDS])


async def _post_shutdown(application: Application) -> None:  # type: ignore[type-arg]
    executor = application.bot_data.executor
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)


def build_application(
    service: Any,
    settings: TelegramSettings | None = None,
    *,
    rate_limiter: AIORateLimiter | None = None,
) -> Application:  # type: ignore[type-arg]
    """The bot, ready to run: handlers, error handler, flood control, worker threads.

    Args:
        service: the :class:`~qa_bot.service.QAService` to answer from (or a stand-in).
        settings: defaults to ``service.settings.telegram``; must carry the token.
        rate_limiter: defaults to :class:`PatientRateLimiter` with Telegram's limits.
    """
    # httpx logs every request at INFO, and the Bot API URL contains the token.
    logging.getLogger("httpx").setLevel(max(logging.getLogger("httpx").level, logging.WARNING))
    settings = settings if settings is not None else service.settings.telegram
    if settings.token is None or not settings.token.get_secret_value().strip():
        raise ValueError("no bot token: set QA_BOT_TELEGRAM__TOKEN")
    context_types = ContextTypes(
        context=CallbackContext, chat_data=ChatData, user_data=UserData, bot_data=BotData
    )
    application = (
        ApplicationBuilder()
        .token(settings.token.get_secret_value().strip())
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .rate_limiter(rate_limiter if rate_limiter is not None else PatientRateLimiter())
        .concurrent_updates(True)
        .context_types(context_types)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
        .build()
    )
    bot_data: BotData = application.bot_data
    bot_data.service = service
    bot_data.settings = settings
    bot_data.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="qa-bot-ask")
    bot_data.conversations = Conversations(service.settings.conversation)

    new = filters.UpdateType.MESSAGE
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    application.add_handler(TypeHandler(Update, gate), group=-1)
    application.add_handler(CommandHandler("start", start, filters=new))
    application.add_handler(CommandHandler("help", help_command, filters=new))
    application.add_handler(CommandHandler("ask", ask_command, filters=new))
    application.add_handler(CommandHandler("sources", sources_command, filters=new))
    application.add_handler(CommandHandler(["status", "about"], status_command, filters=new))
    application.add_handler(CommandHandler("outlet", outlet_command, filters=new))
    application.add_handler(CommandHandler("dates", dates_command, filters=new))
    application.add_handler(CommandHandler("reset", reset_command, filters=new))
    application.add_handler(
        MessageHandler(new & private & filters.TEXT & ~filters.COMMAND, private_text)
    )
    application.add_handler(
        MessageHandler(new & groups & filters.TEXT & ~filters.COMMAND & ADDRESSED_TO_ME, group_text)
    )
    application.add_handler(MessageHandler(new & private & filters.COMMAND, unknown_command))
    application.add_handler(MessageHandler(new & private & ~filters.TEXT, not_text))
    application.add_handler(CallbackQueryHandler(button))
    application.add_error_handler(on_error)
    return application


ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]


def webhook_options(settings: TelegramSettings) -> dict[str, Any]:
    """Where the webhook server listens and what Telegram is told. The local path is the
    public URL's path, so a reverse proxy can pass requests through unchanged."""
    from urllib.parse import urlsplit

    if not settings.webhook_url:
        raise ValueError("webhook mode needs telegram.webhook_url")
    return {
        "listen": settings.webhook_listen,
        "port": settings.webhook_port,
        "url_path": urlsplit(settings.webhook_url).path.lstrip("/"),
        "webhook_url": settings.webhook_url,
        "secret_token": (
            settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
        ),
        "allowed_updates": ALLOWED_UPDATES,
    }


@contextlib.asynccontextmanager
async def serving(
    application: Application,  # type: ignore[type-arg]
    *,
    poll_timeout: float = 10.0,
) -> AsyncIterator[Application]:  # type: ignore[type-arg]
    """Run the bot inside an already running event loop (tests, benchmarks): long polling or
    the webhook server as the settings say, with the start-up and shut-down steps of
    :meth:`Application.run_polling`."""
    settings: TelegramSettings = application.bot_data.settings
    async with application:
        if application.post_init is not None:
            await application.post_init(application)
        await application.start()
        assert application.updater is not None
        if settings.mode == "webhook":
            await application.updater.start_webhook(**webhook_options(settings))
        else:
            await application.updater.start_polling(
                poll_interval=0.0, timeout=poll_timeout, allowed_updates=ALLOWED_UPDATES
            )
        try:
            yield application
        finally:
            await application.updater.stop()
            await application.stop()
            if application.post_stop is not None:
                await application.post_stop(application)
    if application.post_shutdown is not None:
        await application.post_shutdown(application)


def run(application: Application) -> None:  # type: ignore[type-arg]
    """Run until interrupted (SIGINT, SIGTERM): long polling, or the webhook server."""
    settings: TelegramSettings = application.bot_data.settings
    if settings.mode == "webhook":
        application.run_webhook(**webhook_options(settings))
    else:
        application.run_polling(allowed_updates=ALLOWED_UPDATES)


__all__ = [
    "BotData",
    "ChatData",
    "KeyedLocks",
    "PatientRateLimiter",
    "UserData",
    "answer_question",
    "ask_service",
    "build_application",
    "conversation_key",
    "run",
    "serving",
    "webhook_options",
]
