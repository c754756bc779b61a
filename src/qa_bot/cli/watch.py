"""``qa-bot watch``: keep the index in step with the seeds folder until interrupted."""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING

import typer

from qa_bot.cli.base import err, errors, print_report, state
from qa_bot.errors import SeedsError
from qa_bot.news import NewsDesk

if TYPE_CHECKING:
    from qa_bot.indexer import IndexReport
    from qa_bot.service import QAService


def news_desk(service: QAService) -> NewsDesk:
    """The service's seeds folder kept current, each build an incremental ``index``."""
    wait = service.settings.watch.lock_wait_seconds
    return NewsDesk(service.settings, lambda: service.index(lock_wait=wait))


def start_watching(
    service: QAService,
    stop: threading.Event,
    *,
    on_report: Callable[[IndexReport], None],
    on_error: Callable[[Exception], None],
) -> threading.Thread:
    """Watch the service's seeds folder in a daemon thread (``qa-bot bot --watch``): questions
    are answered meanwhile, each from the newest finished generation."""
    desk = news_desk(service)
    thread = threading.Thread(
        target=lambda: desk.watch(stop=stop, on_report=on_report, on_error=on_error),
        name="qa-bot-watch",
        daemon=True,
    )
    thread.start()
    return thread


def watch(ctx: typer.Context) -> None:
    """Watch seeds/ and re-index (incrementally) whenever files are added, changed or removed.

    Bursts of changes are built once; a file still being written is read when it holds still.
    Stop with Ctrl-C.
    """
    with errors():
        settings = state(ctx).settings()
        if not settings.seeds_dir.is_dir():
            raise SeedsError(f"seeds folder not found: {settings.seeds_dir}")

        def report(rep: IndexReport) -> None:
            print_report(rep, refreshed=True)
            sys.stderr.flush()

        def failed(exc: Exception) -> None:
            err.print(f"[bold red]error:[/] {exc} (watching goes on)")

        news_desk(state(ctx).service).watch(
            on_report=report,
            on_error=failed,
            on_ready=lambda: err.print(f"watching {settings.seeds_dir} (Ctrl-C stops)"),
        )
