"""The bot, assembled: python-telegram-bot's :class:`~telegram.ext.Application` with our
handlers, flood control, worker threads, button data and (optionally) persistence.

- Retrieval is CPU-bound, so every service call runs in a small thread pool
  (``telegram.workers`` threads) while the event loop keeps serving other chats; updates are
  processed concurrently, and a typing indicator runs while a question is worked on.
- The service reopens the index when ``qa-bot index`` has switched it, so a rebuild is picked
  up by the next question without a restart.
- With ``conversation.persist_path`` set, chat and user data and the buttons' data are saved
  by :class:`~telegram.ext.PicklePersistence` every minute and at shutdown, off the request
  path, and read back at start-up.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any

from telegram import BotCommand, LinkPreviewOptions, Update
from telegram.constants import ParseMode
from telegram.ext import (
    AIORateLimiter,
    Application,
    ApplicationBuilder,
    CallbackContext,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    Defaults,
    InvalidCallbackData,
    MessageHandler,
    PersistenceInput,
    PicklePersistence,
    TypeHandler,
    filters,
)

from qa_bot.commands import bot_commands
from qa_bot.settings import TelegramSettings
from qa_bot.telegram import buttons, feedback, handlers, questions
from qa_bot.telegram.sending import PatientRateLimiter
from qa_bot.telegram.state import BotData, ChatData, FeedbackButton, UserData

if TYPE_CHECKING:
    from qa_bot.service import QAService

ALLOWED_UPDATES = [Update.MESSAGE, Update.CALLBACK_QUERY]
#: Buttons whose data is remembered (python-telegram-bot's cache; the oldest are forgotten).
BUTTONS_REMEMBERED = 2048


async def _post_init(application: Application) -> None:  # type: ignore[type-arg]
    commands = [BotCommand(c.name, c.menu) for c in bot_commands()]
    await application.bot.set_my_commands(commands)


async def _post_shutdown(application: Application) -> None:  # type: ignore[type-arg]
    executor = application.bot_data.executor
    if executor is not None:
        executor.shutdown(wait=False, cancel_futures=True)


def _add_handlers(application: Application) -> None:  # type: ignore[type-arg]
    new = filters.UpdateType.MESSAGE
    private = filters.ChatType.PRIVATE
    groups = filters.ChatType.GROUPS
    commands = {
        "start": handlers.start,
        "help": handlers.help_command,
        "ask": questions.ask_command,
        "sources": handlers.sources_command,
        "status": handlers.status_command,
        "outlet": handlers.outlet_command_handler,
        "dates": handlers.dates_command_handler,
        "reset": handlers.reset_command,
        "good": feedback.good_command,
        "bad": feedback.bad_command,
    }
    application.add_handler(TypeHandler(Update, handlers.gate), group=-1)
    for command in bot_commands():
        names = [command.name, *command.aliases]
        application.add_handler(CommandHandler(names, commands[command.name], filters=new))
    application.add_handler(
        MessageHandler(new & private & filters.TEXT & ~filters.COMMAND, questions.private_text)
    )
    application.add_handler(
        MessageHandler(
            new & groups & filters.TEXT & ~filters.COMMAND & handlers.ADDRESSED_TO_ME,
            questions.group_text,
        )
    )
    application.add_handler(
        MessageHandler(new & private & filters.COMMAND, handlers.unknown_command)
    )
    application.add_handler(MessageHandler(new & private & ~filters.TEXT, handlers.not_text))
    application.add_handler(
        CallbackQueryHandler(buttons.expired_button, pattern=InvalidCallbackData)
    )
    application.add_handler(CallbackQueryHandler(feedback.vote_pressed, pattern=FeedbackButton))
    application.add_handler(CallbackQueryHandler(buttons.press))
    application.add_error_handler(handlers.on_error)


def build_application(
    service: QAService,
    settings: TelegramSettings | None = None,
    *,
    rate_limiter: AIORateLimiter | None = None,
) -> Application:  # type: ignore[type-arg]
    """The bot, ready to run: handlers, error handler, flood control, worker threads.

    Args:
        service: the service to answer from (or a stand-in with the same methods).
        settings: defaults to ``service.settings.telegram``; must carry the token.
        rate_limiter: defaults to :class:`PatientRateLimiter` with Telegram's limits and the
            settings' send deadline.
    """
    settings = settings if settings is not None else service.settings.telegram
    if settings.token is None or not settings.token.get_secret_value().strip():
        raise ValueError("no bot token: set QA_BOT_TELEGRAM__TOKEN")
    context_types = ContextTypes(
        context=CallbackContext, chat_data=ChatData, user_data=UserData, bot_data=BotData
    )
    builder = (
        ApplicationBuilder()
        .token(settings.token.get_secret_value().strip())
        .base_url(settings.base_url)
        .base_file_url(settings.base_file_url)
        .read_timeout(settings.read_timeout_seconds)
        .defaults(
            Defaults(
                parse_mode=ParseMode.HTML,
                link_preview_options=LinkPreviewOptions(is_disabled=True),
            )
        )
        .rate_limiter(rate_limiter or PatientRateLimiter(deadline=settings.send_deadline_seconds))
        .arbitrary_callback_data(BUTTONS_REMEMBERED)
        .concurrent_updates(True)
        .context_types(context_types)
        .post_init(_post_init)
        .post_shutdown(_post_shutdown)
    )
    persist_path = service.settings.conversation.persist_path
    if persist_path is not None:
        persist_path.parent.mkdir(parents=True, exist_ok=True)
        builder = builder.persistence(
            PicklePersistence(
                persist_path,
                store_data=PersistenceInput(bot_data=False),
                context_types=context_types,
            )
        )
    application = builder.build()
    bot_data: BotData = application.bot_data
    bot_data.service = service
    bot_data.settings = settings
    bot_data.executor = ThreadPoolExecutor(settings.workers, thread_name_prefix="qa-bot-ask")
    _add_handlers(application)
    return application


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


__all__ = ["ALLOWED_UPDATES", "build_application", "run", "serving", "webhook_options"]
