"""Sending: replies, the typing indicator, and how flood control and network errors are met.

Telegram's flood limits are kept by python-telegram-bot's :class:`AIORateLimiter`; a 429 is
waited out for as long as its ``retry_after`` says, and a network error retried with backoff,
until the request gets through or ``telegram.send_deadline_seconds`` have passed. A send that
timed out is never repeated: it may have arrived, and a doubled answer (or an apology next to
the answer) is worse than a lost one.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import html
import logging
import re
import time
from collections.abc import AsyncIterator, Callable, Sequence
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, Message, ReplyParameters, Update
from telegram.constants import ChatAction, ChatType
from telegram.error import BadRequest, NetworkError, RetryAfter, TelegramError, TimedOut
from telegram.ext import AIORateLimiter

from qa_bot.telegram.markup import MAX_MESSAGE_LENGTH
from qa_bot.telegram.state import Context

log = logging.getLogger(__name__)

T = TypeVar("T")

#: Telegram shows a chat action for about 5 s; renew it a little sooner.
TYPING_EVERY = 4.5
#: The first wait before retrying after a network error; it doubles up to the last.
FIRST_BACKOFF = 0.5
MAX_BACKOFF = 8.0
#: Methods that post something a person reads: not repeated after a timeout.
POSTING = frozenset({"sendMessage", "editMessageText", "answerCallbackQuery"})


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


def thread_id(message: Message | None) -> int | None:
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
) -> list[Message]:
    """Send rendered messages in order; the first replies to ``reply_to``, the last carries
    ``markup``. Returns the messages sent."""
    sent: list[Message] = []
    for i, text in enumerate(texts):
        reply = (
            ReplyParameters(reply_to.message_id, allow_sending_without_reply=True)
            if reply_to is not None and i == 0
            else None
        )
        options: dict[str, Any] = {
            "reply_parameters": reply,
            "reply_markup": markup if i == len(texts) - 1 else None,
            "message_thread_id": thread_id(reply_to),
        }
        try:
            sent.append(await context.bot.send_message(chat_id, text, **options))
        except BadRequest as exc:
            if "parse entities" not in str(exc):
                raise
            # A rendering bug must not cost the user the answer: log it, send it plain.
            log.error("Telegram refused our HTML (%s); sending it as plain text", exc)
            sent.append(
                await context.bot.send_message(chat_id, _plain(text), parse_mode=None, **options)
            )
    return sent


async def reply(update: Update, context: Context, text: str) -> list[Message]:
    """A short HTML reply to the message being handled (quoting it in groups)."""
    message = update.effective_message
    if message is None:
        return []
    quote = message if message.chat.type != ChatType.PRIVATE else None
    return await send_texts(context, message.chat_id, [text], reply_to=quote)


class PatientRateLimiter(AIORateLimiter):
    """Telegram's flood limits kept; RetryAfter waited out and network errors retried until
    the request gets through or ``deadline`` seconds have passed. A timed-out post is not
    repeated (it may have arrived).

    Chat actions ("typing…") bypass all of it: they are cosmetic, sent best effort, and must
    neither wait in line before answers nor spend the answers' 30-a-second budget."""

    def __init__(self, *, deadline: float = 60.0, **kwargs: Any):
        # Flood control is retried here, against the deadline, not a number of times.
        kwargs.setdefault("max_retries", 1_000_000)
        super().__init__(**kwargs)
        self._deadline = deadline

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
        give_up = time.monotonic() + self._deadline
        delay = FIRST_BACKOFF
        while True:
            left = give_up - time.monotonic()
            try:
                async with asyncio.timeout(left):
                    return await super().process_request(
                        callback, args, kwargs, endpoint, data, rate_limit_args
                    )
            except TimeoutError:
                raise TimedOut(f"{endpoint}: not delivered within {self._deadline:g} s") from None
            except (BadRequest, RetryAfter):
                raise
            except NetworkError as exc:
                if isinstance(exc, TimedOut) and endpoint in POSTING:
                    raise
                if time.monotonic() + delay >= give_up:
                    raise
                log.warning("%s failed (%s); retrying in %.1f s", endpoint, exc, delay)
                await asyncio.sleep(delay)
                delay = min(2 * delay, MAX_BACKOFF)


__all__ = [
    "PatientRateLimiter",
    "reply",
    "run_blocking",
    "send_texts",
    "show_typing",
    "thread_id",
]
