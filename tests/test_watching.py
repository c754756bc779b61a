"""A watched seeds folder: the index follows added, changed and deleted files, bursts are
coalesced, and a file still being written is not read half-way."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from qa_bot.indexer import IndexReport, update_index
from qa_bot.settings import WatchSettings
from qa_bot.store import IndexStore
from qa_bot.watching import relevant, wait_until_settled, watch_seeds

from .conftest import CountingEmbedder, make_settings, write_article

FAST = WatchSettings(debounce_ms=100, settle_seconds=0.15, settle_max_seconds=5.0)


class Watcher:
    """``watch_seeds`` in a thread, with every build's report kept."""

    def __init__(self, tmp_path: Path, seeds: Path, before_build: Callable[[], None] | None):
        self.settings = make_settings(tmp_path, seeds)
        self.embedder = CountingEmbedder()
        self.reports: list[IndexReport] = []
        self.stop = threading.Event()
        ready = threading.Event()

        def build() -> IndexReport:
            if before_build is not None:
                before_build()
            return update_index(self.settings, self.embedder, lock_wait=5)

        self.thread = threading.Thread(
            target=watch_seeds,
            args=(seeds, build, FAST),
            kwargs={"stop": self.stop, "on_report": self.reports.append, "on_ready": ready.set},
            daemon=True,
        )
        self.thread.start()
        assert ready.wait(20), "the first build did not finish"

    def files(self) -> set[str]:
        return set(IndexStore(self.settings.index_dir).read_manifest().files)

    def wait_for(self, check: Callable[[], bool], seconds: float = 10.0) -> None:
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if check():
                return
            time.sleep(0.05)
        raise AssertionError(f"the index did not follow: {sorted(self.files())}")


@pytest.fixture
def watcher(tmp_path: Path, corpus: Path) -> Iterator[Watcher]:
    w = Watcher(tmp_path, corpus, None)
    yield w
    w.stop.set()
    w.thread.join(10)
    assert not w.thread.is_alive()


def test_the_index_follows_adds_changes_and_deletes(watcher: Watcher, corpus: Path) -> None:
    assert watcher.files() == {"alpha.txt", "beta.txt", "nested/gamma.md"}
    write_article(corpus, "delta.txt", "Port reopens", "The port reopened on Monday after repairs.")
    watcher.wait_for(lambda: "delta.txt" in watcher.files())
    builds = len(watcher.reports)
    write_article(corpus, "beta.txt", "Talks resume", "The talks in Geneva resumed on Friday.")
    watcher.wait_for(lambda: any(r.updated == ["beta.txt"] for r in watcher.reports[builds:]))
    (corpus / "alpha.txt").unlink()
    watcher.wait_for(lambda: "alpha.txt" not in watcher.files())
    assert watcher.files() == {"beta.txt", "delta.txt", "nested/gamma.md"}


def test_a_burst_of_writes_makes_few_builds(watcher: Watcher, corpus: Path) -> None:
    before = len(watcher.reports)
    for i in range(100):
        write_article(corpus, f"burst/{i:03}.txt", f"Story {i}", f"Story number {i} happened.")
    watcher.wait_for(lambda: len([f for f in watcher.files() if f.startswith("burst/")]) == 100)
    time.sleep(0.5)  # any build still to come
    assert len(watcher.reports) - before <= 4


def test_a_file_being_written_is_read_when_it_holds_still(tmp_path: Path, corpus: Path) -> None:
    target = corpus / "slow.txt"
    sizes_seen: list[int] = []

    def before_build() -> None:
        if target.exists():
            sizes_seen.append(target.stat().st_size)

    w = Watcher(tmp_path, corpus, before_build)
    try:
        with target.open("w", encoding="utf-8") as f:
            f.write("Slow download\n\n")
            for i in range(12):  # 0.6 s of writing, a piece every 50 ms
                f.write(f"Paragraph {i} of a page that arrives slowly over the network.\n\n")
                f.flush()
                time.sleep(0.05)
        final = target.stat().st_size
        w.wait_for(lambda: "slow.txt" in w.files())
        assert sizes_seen and all(size == final for size in sizes_seen)
    finally:
        w.stop.set()
        w.thread.join(10)


def test_wait_until_settled_gives_up_on_a_file_that_never_holds_still(tmp_path: Path) -> None:
    path = tmp_path / "growing.txt"
    path.write_text("x")
    stop_writing = threading.Event()

    def grow() -> None:
        while not stop_writing.wait(0.02):
            with path.open("a") as f:
                f.write("x")

    thread = threading.Thread(target=grow, daemon=True)
    thread.start()
    try:
        started = time.monotonic()
        settled = wait_until_settled(
            [str(path)], WatchSettings(settle_seconds=0.1, settle_max_seconds=0.5)
        )
        assert not settled and time.monotonic() - started < 2
    finally:
        stop_writing.set()
        thread.join()
    assert wait_until_settled([str(path)], WatchSettings(settle_seconds=0.05))


@pytest.mark.parametrize(
    ("name", "watched"),
    [
        ("a.txt", True),
        ("page.HTML", True),
        ("metadata.toml", True),
        ("subfolder", True),
        (".a.txt.swp", False),
        ("page.html.part", False),
        ("notes.pdf", False),
    ],
)
def test_which_changes_matter(name: str, watched: bool) -> None:
    assert relevant(os.path.join("/seeds", name), "metadata.toml") is watched


def test_watch_without_a_seeds_folder_is_a_one_line_error(tmp_path: Path) -> None:
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "qa_bot",
            "--seeds",
            str(tmp_path / "none"),
            "--index",
            str(tmp_path / "index"),
            "watch",
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        cwd=tmp_path,
    )
    assert done.returncode == 3, done.stderr
    assert "seeds folder not found" in done.stderr and "Traceback" not in done.stderr
