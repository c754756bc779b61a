"""``qa-bot bot``: the Telegram bot in front of the same service the CLI uses.

Start-up does the slow things once, in order, and says so in the log: check (and build or
refresh) the index, load the model and the index, then connect to the Bot API. The token comes
from ``QA_BOT_TELEGRAM__TOKEN`` only and is scrubbed from every log line; a missing or rejected
token, or an unreachable Bot API, is a one-line error.
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
import os
import re
import sys
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, Any

import typer

from qa_bot.cli.base import errors, refresh_index, report_lines, state
from qa_bot.cli.watch import news_desk, start_watching
from qa_bot.errors import QABotError
from qa_bot.runtime import quiet_store_client
from qa_bot.settings import Settings, SettingsError

if TYPE_CHECKING:
    from qa_bot.indexer import IndexReport
    from qa_bot.service import QAService

log = logging.getLogger("qa_bot.bot")


class BotStartError(QABotError):
    """The bot could not connect to the Bot API with its token."""

    exit_code = 5


class RedactingFormatter(logging.Formatter):
    """Formats like its parent, then replaces secrets (the token) wherever they appear,
    tracebacks included."""

    def __init__(self, fmt: str, secrets: list[str]):
        super().__init__(fmt)
        self._secrets = [s for s in secrets if s]

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        for secret in self._secrets:
            text = text.replace(secret, "<redacted>")
        return text


def configure_logging(secrets: list[str], *, verbose: bool = False) -> None:
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s", secrets)
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(logging.DEBUG if verbose else logging.INFO)
    # httpx logs every request at INFO, and the Bot API URL contains the token.
    for noisy in ("httpx", "httpcore", "apscheduler", "faiss", "sentence_transformers"):
        logging.getLogger(noisy).setLevel(logging.WARNING)


def pin_threads(settings: Settings) -> Settings:
    """One embedding thread per worker unless configured: answering chats in parallel beats
    splitting one question over every core, and the threads must not fight each other."""
    threads = settings.embedding.threads or 1
    # Read by OpenMP (FAISS, torch) when they are first imported, which has not happened yet.
    os.environ.setdefault("OMP_NUM_THREADS", str(threads))
    embedding = settings.embedding.model_copy(update={"threads": threads})
    return settings.model_copy(update={"embedding": embedding})


def _check_telegram(settings: Settings) -> str:
    tg = settings.telegram
    token = tg.token.get_secret_value().strip() if tg.token else ""
    if not token:
        raise SettingsError(
            "no bot token: set QA_BOT_TELEGRAM__TOKEN to the token @BotFather gave you"
        )
    if tg.mode == "webhook":
        if not tg.webhook_url:
            raise SettingsError(
                "webhook mode needs the public URL: set QA_BOT_TELEGRAM__WEBHOOK_URL"
            )
        secret = tg.webhook_secret.get_secret_value() if tg.webhook_secret else ""
        if secret and not re.fullmatch(r"[A-Za-z0-9_-]{1,256}", secret):
            raise SettingsError(
                "QA_BOT_TELEGRAM__WEBHOOK_SECRET must be 1-256 characters of A-Z, a-z, 0-9, _ and -"
            )
        if importlib.util.find_spec("tornado") is None:
            raise SettingsError(
                "webhook mode needs python-telegram-bot's webhook server: "
                "pip install 'python-telegram-bot[webhooks]', or use mode = \"polling\""
            )
    return token


def _log_report_line(kind: str, line: str) -> None:
    if kind == "info":
        log.info("%s", line)
    else:
        log.warning("%s %s", kind, line)


def _log_report(report: IndexReport) -> None:
    for kind, line in report_lines(report, refreshed=True):
        _log_report_line(kind, line)


def _log_watch_error(exc: Exception) -> None:
    log.error("re-indexing after a change failed (answers use the last good index): %s", exc)


def pull_and_index(service: QAService) -> None:
    """One scheduled pull of the feeds, then an incremental build if pages were saved; every
    failure is logged on one line and the bot goes on answering from the index it has."""
    desk = news_desk(service)
    try:
        report = desk.pull_feeds()
    except QABotError as exc:
        log.error("feeds: %s", exc)
        return
    for line in report.notes:
        log.warning("feeds: %s", line)
    for line in report.failures:
        log.warning("feeds: skipped %s", line)
    log.info("feeds: %d new pages, %d failures", len(report.stored), len(report.failures))
    if report.stored:
        try:
            _log_report(desk.index())
        except QABotError as exc:
            _log_watch_error(exc)


def schedule_feeds(application: Any, service: QAService) -> None:
    """Pull the feeds every ``telegram.feeds_interval_minutes`` on the bot's job queue."""
    minutes = service.settings.telegram.feeds_interval_minutes
    if not minutes:
        return
    if application.job_queue is None:
        raise SettingsError(
            "telegram.feeds_interval_minutes needs python-telegram-bot[job-queue] installed"
        )

    async def pull(_context: Any) -> None:
        await asyncio.to_thread(pull_and_index, service)

    application.job_queue.run_repeating(pull, interval=minutes * 60, first=1, name="feeds")
    log.info("pulling the feeds every %g minutes", minutes)


def _run_keeping_seeds_current(
    application: Any, service: QAService, *, watch: bool, run: Callable[[Any], None]
) -> None:
    """Run the bot, with the seeds folder watched (``--watch``) and the feeds pulled on
    schedule; at the end a build under way is waited for, not killed with the process."""
    stop = threading.Event()
    watcher = None
    if watch:
        watcher = start_watching(service, stop, on_report=_log_report, on_error=_log_watch_error)
        log.info("watching %s for changes", service.settings.seeds_dir)
    schedule_feeds(application, service)
    try:
        run(application)
    finally:
        stop.set()
        if watcher is not None:
            watcher.join(service.settings.watch.lock_wait_seconds + 60)


def prepare_service(service: QAService) -> None:
    """Build or refresh the index if needed, then load the model and the index."""
    settings = service.settings
    log.info("checking the index in %s against %s", settings.index_dir, settings.seeds_dir)
    if refresh_index(service, say=_log_report_line) is None:
        log.info("index is up to date")
    started = time.perf_counter()
    service.query_embedder.embed(["warm up"])
    status = service.status()
    log.info(
        "loaded model %s and %d articles (%d passages) in %.1f s; %d embedding thread(s)",
        status.model_id,
        status.articles,
        status.chunks,
        time.perf_counter() - started,
        settings.embedding.threads,
    )


async def _connect(application: Any) -> Any:
    """Log in to the Bot API once (``getMe``), so a bad token or URL fails before the slow
    start-up rather than after it."""
    async with application.bot as bot:
        return bot.bot


def bot(
    ctx: typer.Context,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Log debug details.")] = False,
    watch: Annotated[
        bool, typer.Option("--watch", help="Re-index whenever files under seeds/ change.")
    ] = False,
) -> None:
    """Run the Telegram bot: long polling, or a webhook when telegram.mode = "webhook".

    The token comes from QA_BOT_TELEGRAM__TOKEN, the Bot API server from
    QA_BOT_TELEGRAM__BASE_URL (default: Telegram's). The index is built or refreshed first if
    it is missing or stale; a later `qa-bot index` is picked up without a restart.
    """
    with errors():
        settings = state(ctx).settings()
        token = _check_telegram(settings)
        tg = settings.telegram
        secret = tg.webhook_secret.get_secret_value() if tg.webhook_secret else ""
        configure_logging([token, secret], verbose=verbose)
        settings = pin_threads(settings)
        quiet_store_client(settings.store)

        from telegram.error import InvalidToken, NetworkError

        from qa_bot.service import QAService  # numpy/FAISS; keeps `qa-bot --help` fast
        from qa_bot.telegram.app import build_application, run

        service = QAService(settings)
        application = build_application(service, tg)
        origin = _origin(tg.base_url)
        try:
            me = asyncio.run(_connect(application))
            log.info("connected to the Bot API at %s as @%s", origin, me.username)
            prepare_service(service)
            log.info("answering (%s mode, %d workers)", tg.mode, tg.workers)
            if tg.mode == "webhook" and not tg.webhook_secret:
                log.warning(
                    "no QA_BOT_TELEGRAM__WEBHOOK_SECRET: anyone who learns the webhook URL "
                    "can send the bot updates"
                )
            _run_keeping_seeds_current(application, service, watch=watch, run=run)
        except InvalidToken:
            raise BotStartError(
                f"the Bot API at {origin} rejected the token; check QA_BOT_TELEGRAM__TOKEN"
            ) from None
        except NetworkError as exc:
            raise BotStartError(
                f"cannot reach the Bot API at {origin}: "
                f"{str(exc).replace(token, '<redacted>')}; check QA_BOT_TELEGRAM__BASE_URL"
            ) from None
        log.info("stopped")


def _origin(url: str) -> str:
    """Scheme, host and port of a URL: enough to recognise it, nothing secret."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}" if parts.netloc else url


__all__ = ["BotStartError", "RedactingFormatter", "bot", "configure_logging", "prepare_service"]
