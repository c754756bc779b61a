"""A skipped file is remembered (size, time, reason): it is not "changed" again until it
changes, so questions do not refresh the index for it and `status` does not list it."""

from __future__ import annotations

import os
from pathlib import Path

from qa_bot.indexer import stale_files
from qa_bot.service import QAService
from qa_bot.skip_state import STATE_FILE

from .conftest import CountingEmbedder, make_settings, write_article


def _unusable(corpus: Path) -> None:
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "blob.txt").write_bytes(b"\x00\x01binary" * 50)
    (corpus / "headline.txt").write_text("Only a headline\n")
    (corpus / "copy.txt").write_bytes((corpus / "alpha.txt").read_bytes())


def test_skipped_files_are_not_changed_until_they_change(tmp_path: Path, corpus: Path) -> None:
    _unusable(corpus)
    embedder = CountingEmbedder()
    service = QAService(make_settings(tmp_path, corpus), embedder=embedder)
    first = service.index()
    assert {s.path for s in first.skipped} == {"empty.txt", "blob.txt", "headline.txt", "copy.txt"}
    assert (service.settings.index_dir / STATE_FILE).is_file()

    assert stale_files(service.settings, service.store.read_manifest()) == []
    assert service.status().stale == ()
    calls = len(embedder.calls)
    for _ in range(3):
        assert service.ensure_index() is None  # no refresh before each question
    assert len(embedder.calls) == calls

    write_article(corpus, "empty.txt", "Cocoa exports", "Cocoa exports rose in May, traders said.")
    os.utime(corpus / "blob.txt")  # touched: looked at again, skipped again
    assert stale_files(service.settings, service.store.read_manifest()) == [
        "blob.txt",
        "empty.txt",
    ]
    report = service.ensure_index()
    assert report is not None and report.added == ["empty.txt"]
    assert service.status().stale == ()


def test_a_copy_is_looked_at_again_when_its_original_changes(tmp_path: Path, corpus: Path) -> None:
    _unusable(corpus)
    service = QAService(make_settings(tmp_path, corpus), embedder=CountingEmbedder())
    service.index()
    write_article(corpus, "alpha.txt", "Drone story, corrected", "The drone left at noon.")
    assert stale_files(service.settings, service.store.read_manifest()) == ["alpha.txt"]
    report = service.ensure_index()
    assert report is not None and report.added == ["copy.txt"]
    assert report.updated == ["alpha.txt"]


def test_another_size_limit_looks_at_skipped_files_again(tmp_path: Path, corpus: Path) -> None:
    write_article(corpus, "long.txt", "A long one", "Many words follow here. " * 40)
    small = make_settings(tmp_path, corpus, max_file_bytes=500)
    QAService(small, embedder=CountingEmbedder()).index()
    assert stale_files(small, QAService(small).store.read_manifest()) == []
    large = make_settings(tmp_path, corpus, max_file_bytes=10_000)
    assert stale_files(large, QAService(large).store.read_manifest()) == ["long.txt"]


def test_a_copy_added_later_is_skipped_as_a_copy(tmp_path: Path, corpus: Path) -> None:
    service = QAService(make_settings(tmp_path, corpus), embedder=CountingEmbedder())
    service.index()
    (corpus / "aaa-copy.txt").write_bytes((corpus / "beta.txt").read_bytes())
    report = service.index()
    assert report.added == []
    assert {s.path: s.reason for s in report.skipped} == {
        "aaa-copy.txt": "same text as beta.txt: indexed once"
    }
