"""A watched seeds folder: every change under it becomes an incremental build, soon.

The operating system reports changes (watchfiles); changes closer together than the debounce
are one batch, and changes that arrive while a build runs are kept and make the next batch, so
a burst of a hundred writes triggers a few builds, not a hundred. Before a batch is built, the
changed files must hold still (same size and mtime for ``settle_seconds``): a page still being
downloaded or copied is not read half-way. The build itself is the ordinary incremental one
(only new and changed files are embedded), and a question asked meanwhile is answered from the
previous generation.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from qa_bot.errors import QABotError
from qa_bot.indexer import IndexReport
from qa_bot.seed_files import ARTICLE_SUFFIXES
from qa_bot.settings import WatchSettings

log = logging.getLogger(__name__)

Build = Callable[[], IndexReport]


def relevant(path: str, metadata_file: str) -> bool:
    """A path whose change can change the index: an article file, the metadata sidecar, or a
    deleted folder; never a hidden file (editors' swap files, partial downloads)."""
    name = os.path.basename(path)
    if name.startswith(".") or name.endswith(("~", ".part", ".crdownload", ".tmp")):
        return False
    return name.lower().endswith(ARTICLE_SUFFIXES) or name == metadata_file or "." not in name


def _fingerprint(paths: Iterable[str]) -> dict[str, tuple[int, int] | None]:
    prints: dict[str, tuple[int, int] | None] = {}
    for path in paths:
        try:
            st = os.stat(path)
            prints[path] = (st.st_size, st.st_mtime_ns)
        except OSError:
            prints[path] = None
    return prints


def wait_until_settled(
    paths: Iterable[str], settings: WatchSettings, stop: threading.Event | None = None
) -> bool:
    """Wait until no path changed size or mtime for ``settle_seconds``; False when it gave up
    after ``settle_max_seconds`` (or was stopped) with something still changing."""
    paths = list(paths)
    deadline = time.monotonic() + settings.settle_max_seconds
    before = _fingerprint(paths)
    while True:
        if stop is not None and stop.wait(settings.settle_seconds):
            return False
        if stop is None:
            time.sleep(settings.settle_seconds)
        after = _fingerprint(paths)
        if after == before:
            return True
        if time.monotonic() >= deadline:
            return False
        before = after


def watch_seeds(
    seeds_dir: Path,
    build: Build,
    settings: WatchSettings,
    *,
    metadata_file: str = "metadata.toml",
    stop: threading.Event | None = None,
    on_report: Callable[[IndexReport], None] | None = None,
    on_error: Callable[[Exception], None] | None = None,
    on_ready: Callable[[], None] | None = None,
) -> int:
    """Build once, then again after every batch of changes, until ``stop`` is set (or the
    process is interrupted); returns the number of builds. A failed build is handed to
    ``on_error`` and watching goes on: the index on disk stays the last good one."""
    # Imported here: only the watching commands need the file-system notifier.
    from watchfiles import watch

    builds = 0

    def run_build() -> None:
        nonlocal builds
        builds += 1
        try:
            report = build()
        except QABotError as exc:
            if on_error is None:
                raise
            on_error(exc)
            return
        if on_report is not None:
            on_report(report)

    run_build()
    if on_ready is not None:
        on_ready()
    for changes in watch(
        seeds_dir,
        watch_filter=lambda _change, path: relevant(path, metadata_file),
        debounce=settings.debounce_ms,
        step=min(50, settings.debounce_ms),
        stop_event=stop,
        yield_on_timeout=False,
        raise_interrupt=False,
    ):
        log.debug("changes: %s", sorted(path for _, path in changes))
        if not wait_until_settled({path for _, path in changes}, settings, stop):
            if stop is not None and stop.is_set():
                break
            log.warning("files under %s are still changing; indexing them as they are", seeds_dir)
        run_build()
    return builds
