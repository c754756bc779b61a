"""The seeds folder's upkeep, beside :class:`~qa_bot.service.QAService`: watching it, news
feeds, and where each article's metadata came from.

The fronts (``qa-bot watch | feeds | sources --origins``, ``qa-bot bot --watch``) use this
object only; it builds the index through the callable it is given (the service's ``index``),
so it never loads a model itself and ``qa-bot feeds list`` stays fast.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from qa_bot.feeds import Feed, PullReport, add_feed, load_feeds, pull_feeds, remove_feed
from qa_bot.indexer import IndexReport, field_origins
from qa_bot.settings import Settings
from qa_bot.watching import watch_seeds


class NewsDesk:
    """Keeps the seeds folder (and so the index) current for one set of settings."""

    def __init__(self, settings: Settings, index: Callable[[], IndexReport] | None = None):
        self.settings = settings
        self._index = index

    def index(self) -> IndexReport:
        if self._index is None:
            raise RuntimeError("this NewsDesk was made without an index to build")
        return self._index()

    def watch(
        self,
        *,
        stop: threading.Event | None = None,
        on_report: Callable[[IndexReport], None] | None = None,
        on_error: Callable[[Exception], None] | None = None,
        on_ready: Callable[[], None] | None = None,
    ) -> int:
        """Build, then build again after each batch of changes under seeds/, until stopped."""
        return watch_seeds(
            self.settings.seeds_dir,
            self.index,
            self.settings.watch,
            metadata_file=self.settings.metadata_file,
            stop=stop,
            on_report=on_report,
            on_error=on_error,
            on_ready=on_ready,
        )

    def feeds(self) -> list[Feed]:
        return load_feeds(self.settings.seeds_dir)

    def add_feed(self, url: str) -> Feed:
        return add_feed(self.settings.seeds_dir, url)

    def remove_feed(self, url: str) -> None:
        remove_feed(self.settings.seeds_dir, url)

    def pull_feeds(self) -> PullReport:
        """Save the feeds' new pages under seeds/feeds/ (not indexed yet: see :meth:`index`)."""
        return pull_feeds(self.settings.seeds_dir, self.settings.feeds, self.settings.metadata_file)

    def field_origins(self) -> dict[str, dict[str, str]]:
        """Where each seed file's title, outlet and date come from, by file path."""
        return field_origins(self.settings)
