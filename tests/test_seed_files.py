"""Only regular files inside the seeds folder are read: links out of it, pipes, sockets and
devices are skipped with a reason, and nothing of an outside file reaches the index."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

from qa_bot.corpus import read_article
from qa_bot.indexer import IndexReport, update_index
from qa_bot.seed_files import discover
from qa_bot.service import QAService
from qa_bot.settings import Settings, load_settings
from qa_bot.sidecar import Sidecar, load_sidecar

from .conftest import CountingEmbedder, make_settings, run_with_deadline, write_article

MARKER = "Xylophonequartz"


def _outside(tmp_path: Path) -> Path:
    """A folder beside the seeds holding articles that must never be read."""
    outside = tmp_path / "private"
    write_article(
        outside,
        "secret.txt",
        f"{MARKER} drone convoy report",
        f"The {MARKER} drone flew over the convoy at an altitude of 3,600 meters. "
        f"The secret {MARKER} code is 4471.",
    )
    write_article(
        outside,
        "folder/inner.txt",
        f"{MARKER} ceasefire memo",
        f"The {MARKER} ceasefire talks in Geneva stalled on Tuesday, said the memo.",
    )
    return outside


def _link_out(corpus: Path, outside: Path) -> None:
    (corpus / "leak.txt").symlink_to(outside / "secret.txt")
    (corpus / "nested" / "linked").symlink_to(outside / "folder", target_is_directory=True)
    (corpus / "hop.txt").symlink_to(corpus / "nested" / "linked" / "inner.txt")


def _following(tmp_path: Path, corpus: Path, follow: bool) -> Settings:
    return load_settings(
        seeds_dir=corpus,
        index_dir=tmp_path / "index",
        root_dir=tmp_path,
        seeds={"follow_symlinks_outside": follow},
    )


def _index_bytes(index_dir: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(index_dir.rglob("*")) if p.is_file())


def test_links_out_of_the_seeds_folder_leak_nothing(tmp_path: Path, corpus: Path) -> None:
    outside = _outside(tmp_path)
    _link_out(corpus, outside)
    embedder = CountingEmbedder()
    service = QAService(make_settings(tmp_path, corpus), embedder=embedder)
    report = service.index()
    reasons = {s.path: s.reason for s in report.skipped}
    assert "outside the seeds folder" in reasons["leak.txt"]
    assert "outside the seeds folder" in reasons["nested/linked"]
    assert "outside the seeds folder" in reasons["hop.txt"]
    assert report.added == ["alpha.txt", "beta.txt", "nested/gamma.md"]
    assert report.outside == []
    assert not any(MARKER in text for text in embedder.embedded)
    assert MARKER.encode() not in _index_bytes(service.settings.index_dir)

    for question in (
        f"What is the secret {MARKER} code?",
        "At what altitude did the drone fly over the convoy?",
        "Where did the ceasefire talks stall?",
    ):
        answer = service.ask(question)
        assert MARKER not in answer.text
        for citation in answer.citations:
            assert MARKER not in citation.quote and MARKER not in citation.article.title
            passage = service.passage(citation.article.id, citation.start, citation.end)
            assert passage is not None and MARKER not in passage.text
            assert "private" not in service.display_path(citation.article)
    listed = [(s.meta.title, s.meta.path) for s in service.sources()]
    assert all(MARKER not in title and "leak" not in path for title, path in listed)


def test_following_links_outside_is_an_operator_choice_and_is_reported(
    tmp_path: Path, corpus: Path
) -> None:
    _link_out(corpus, _outside(tmp_path))
    settings = _following(tmp_path, corpus, True)
    report = update_index(settings, CountingEmbedder())
    # hop.txt leads out through a link inside the folder: outside too
    assert report.outside == ["hop.txt", "leak.txt", "nested/linked/inner.txt"]
    assert {"hop.txt", "leak.txt"} <= set(report.added)


def test_links_inside_the_folder_are_followed(tmp_path: Path, corpus: Path) -> None:
    (corpus / "alias.txt").symlink_to("nested/gamma.md")
    files, skipped = discover(corpus)
    assert [f.rel for f in files] == ["alias.txt", "alpha.txt", "beta.txt", "nested/gamma.md"]
    assert skipped == [] and not any(f.outside for f in files)


def test_dangling_links_and_loops_are_skipped_with_reasons(corpus: Path) -> None:
    (corpus / "gone.txt").symlink_to(corpus / "nowhere.txt")
    (corpus / "self.txt").symlink_to(corpus / "self.txt")
    (corpus / "ping.txt").symlink_to(corpus / "pong.txt")
    (corpus / "pong.txt").symlink_to(corpus / "ping.txt")
    (corpus / "nested" / "up").symlink_to(corpus, target_is_directory=True)
    files, skipped = discover(corpus)
    assert [f.rel for f in files] == ["alpha.txt", "beta.txt", "nested/gamma.md"]
    reasons = {s.path: s.reason for s in skipped}
    assert "dangling symlink" in reasons["gone.txt"]
    assert "loop" in reasons["self.txt"] and "loop" in reasons["ping.txt"]
    assert "loop" in reasons["nested/up"]


def test_pipes_sockets_and_devices_are_skipped_without_opening(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fifo = corpus / "pipe.txt"
    os.mkfifo(fifo)
    monkeypatch.chdir(corpus)  # a socket's path must be short
    server = socket.socket(socket.AF_UNIX)
    server.bind("sock.txt")
    (corpus / "null.txt").symlink_to(os.devnull)
    (corpus / "fifo-link.txt").symlink_to(fifo)
    try:
        for follow in (False, True):
            settings = _following(tmp_path, corpus, follow)
            report = run_with_deadline(
                lambda s=settings: update_index(s, CountingEmbedder(), force=True), 10, fifo
            )
            assert isinstance(report, IndexReport)
            reasons = {s.path: s.reason for s in report.skipped}
            assert "named pipe (FIFO), not a regular file: not opened" in reasons["pipe.txt"]
            assert "a link to a named pipe" in reasons["fifo-link.txt"]
            assert "a socket, not a regular file" in reasons["sock.txt"]
            device = "a link to a device" + (", not a regular" if follow else " outside")
            assert device in reasons["null.txt"]
            assert report.chunks_total > 0
    finally:
        server.close()


def test_a_file_swapped_for_a_link_after_listing_is_not_read(tmp_path: Path, corpus: Path) -> None:
    outside = _outside(tmp_path)
    files, _ = discover(corpus)
    beta = next(f for f in files if f.rel == "beta.txt")
    beta.path.unlink()
    beta.path.symlink_to(outside / "secret.txt")
    article, why = read_article(beta, None, 10**6)
    assert article is None and why is not None and "replaced" in why


@pytest.mark.parametrize("kind", ["outside", "fifo", "dangling"])
def test_the_metadata_file_is_read_only_inside_the_folder(
    tmp_path: Path, corpus: Path, kind: str
) -> None:
    sidecar = corpus / "metadata.toml"
    if kind == "outside":
        secret = tmp_path / "elsewhere.toml"
        secret.write_text(f'["alpha.txt"]\ntitle = "{MARKER}"\n')
        sidecar.symlink_to(secret)
    elif kind == "fifo":
        os.mkfifo(sidecar)
    else:
        sidecar.symlink_to(tmp_path / "missing.toml")
    sidecar = run_with_deadline(
        lambda: load_sidecar(corpus, "metadata.toml"),
        10,
        sidecar if kind == "fifo" else corpus,
    )
    assert isinstance(sidecar, Sidecar)
    assert sidecar.entries == {} and sidecar.all_held
    (problem,) = sidecar.errors
    assert any(w in problem.message for w in ("not read", "not opened", "dangling"))
    assert MARKER not in problem.describe()
