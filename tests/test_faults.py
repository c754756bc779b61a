"""Bad input and faults: each gets a clear message and loses nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import qa_bot.indexer as indexer_module
from qa_bot.errors import IndexMismatchError, InvalidQuestionError
from qa_bot.files import ARRAY_READS
from qa_bot.indexer import update_index
from qa_bot.query_adapter import QueryAdapter
from qa_bot.seed_files import SourceFile
from qa_bot.service import QAService, validate_question
from qa_bot.settings import PACKAGED_ADAPTER
from qa_bot.store import IndexStore

from .conftest import CountingEmbedder, make_settings, write_article


def test_fifty_megabyte_file_is_skipped_not_loaded(tmp_path: Path, corpus: Path) -> None:
    big = corpus / "huge.txt"
    with big.open("wb") as handle:
        handle.write(b"Huge title\n\n")
        chunk = b"All work and no play makes a very long article. " * 20_000
        while handle.tell() < 50 * 1024 * 1024:
            handle.write(chunk)
    report = update_index(make_settings(tmp_path, corpus), CountingEmbedder())
    reasons = {s.path: s.reason for s in report.skipped}
    assert "too large" in reasons["huge.txt"]
    assert report.added == ["alpha.txt", "beta.txt", "nested/gamma.md"]


def test_non_utf8_file_is_indexed_readably(tmp_path: Path, corpus: Path) -> None:
    (corpus / "latin.txt").write_bytes(
        "Café talks\n\nThe café owners met in Zürich on Monday to discuss prices.\n".encode(
            "cp1252"
        )
    )
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    titles = [s.meta.title for s in QAService(settings, embedder=CountingEmbedder()).sources()]
    assert "Café talks" in titles


def test_file_vanishing_during_indexing_is_skipped(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_discover = indexer_module.discover

    def discover_then_delete(seeds: Path, **options: bool):
        files, skipped = real_discover(seeds, **options)
        (seeds / "beta.txt").unlink()  # gone between listing and reading
        return files, skipped

    monkeypatch.setattr(indexer_module, "discover", discover_then_delete)
    report = update_index(make_settings(tmp_path, corpus), CountingEmbedder())
    assert {s.path: s.reason for s in report.skipped} == {"beta.txt": "vanished while being read"}
    assert report.added == ["alpha.txt", "nested/gamma.md"]
    assert isinstance(report.skipped[0], indexer_module.SkippedFile)
    assert SourceFile  # the type read_article takes, for readers of this test


@pytest.mark.parametrize(
    ("question", "message"),
    [
        ("", "empty"),
        (" \t\n ", "empty"),
        ("?!… — ...", "no words"),
        ("a" * 10_000, "limit is 500"),
    ],
)
def test_invalid_questions(question: str, message: str) -> None:
    with pytest.raises(InvalidQuestionError, match=message):
        validate_question(question)


def test_index_from_another_model_is_refused_at_question_time(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder(model_id="model-a"))
    service = QAService(settings, embedder=CountingEmbedder(model_id="model-b"))
    with pytest.raises(IndexMismatchError, match=r"built with model-a.*run `qa-bot index`"):
        service.ask("Where was the attack drone registered?")


def test_readers_keep_their_snapshot_and_switch_on_the_next_question(
    tmp_path: Path, corpus: Path
) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    service = QAService(settings, embedder=CountingEmbedder())
    held = service.snapshot()
    before = service.ask("Where was the attack drone registered?")
    assert before.answered

    write_article(corpus, "delta.txt", "Wheat exports", "Canadian wheat exports rose 40 percent.")
    update_index(settings, CountingEmbedder())
    # The snapshot a running question holds still answers in full...
    assert len(held.sources()) == 3
    assert held.chunks([0])
    # ...and the next question sees the new generation.
    assert service.snapshot().generation != held.generation
    assert "40 percent" in service.ask("How much did Canadian wheat exports rise?").text


def test_questions_keep_being_answered_during_a_rebuild(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    service = QAService(settings, embedder=CountingEmbedder())
    errors: list[BaseException] = []
    answered = 0
    stop = threading.Event()

    def ask_in_a_loop() -> None:
        nonlocal answered
        while not stop.is_set():
            try:
                assert service.ask("Where was the attack drone registered?").answered
                answered += 1
            except BaseException as exc:  # pragma: no cover - reported below
                errors.append(exc)
                return

    thread = threading.Thread(target=ask_in_a_loop)
    thread.start()
    try:
        for i in range(5):
            write_article(corpus, "beta.txt", "Talks", f"Round {i} of the Geneva talks ended.")
            update_index(settings, CountingEmbedder())
    finally:
        stop.set()
        thread.join(30)
    assert errors == []
    assert answered > 0


def test_array_files_are_opened_under_the_one_lock(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """numpy parses array headers with the ast module, which CPython 3.11 does not make safe
    across threads; a rebuild and a question both open array files, so every open takes the
    same lock (the race is too rare to provoke, so the lock itself is checked)."""
    import numpy as np

    real_load = np.load
    held: list[bool] = []

    def counting_load(*args: object, **kwargs: object) -> object:
        held.append(ARRAY_READS.locked())
        return real_load(*args, **kwargs)

    monkeypatch.setattr(np, "load", counting_load)
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    service = QAService(settings, embedder=CountingEmbedder())
    assert service.ask("Where was the attack drone registered?").answered
    write_article(corpus, "beta.txt", "Talks", "Round 2 of the Geneva talks ended.")
    update_index(settings, CountingEmbedder())  # opens the previous generation's arrays
    assert service.ask("When did round 2 of the Geneva talks end?").answered
    QueryAdapter.load(PACKAGED_ADAPTER)
    assert len(held) >= 3
    assert all(held)


_SLOW_BUILD = textwrap.dedent(
    """
    import signal, sys, time
    # Ctrl-C as in a terminal, whatever this test run inherited: a shell starts background
    # jobs with SIGINT ignored, and the children of such a run would ignore it too.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    sys.path.insert(0, {tests!r})
    from conftest import CountingEmbedder
    from qa_bot.indexer import update_index
    from qa_bot.settings import load_settings

    class Slow(CountingEmbedder):
        def embed(self, texts, *, progress=None):
            print("EMBEDDING", flush=True)
            time.sleep(60)
            return super().embed(texts, progress=progress)

    settings = load_settings(seeds_dir={seeds!r}, index_dir={index!r})
    update_index(settings, Slow(), force=True)
    """
)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL])
def test_killed_rebuild_leaves_the_previous_index_and_the_next_run_completes(
    tmp_path: Path, corpus: Path, sig: signal.Signals
) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    store = IndexStore(settings.index_dir)
    before = store.current()
    script = _SLOW_BUILD.format(
        tests=str(Path(__file__).parent),
        seeds=str(corpus),
        index=str(settings.index_dir),
    )
    proc = subprocess.Popen(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line.strip() == "EMBEDDING", proc.stderr.read() if proc.stderr else ""
        os.kill(proc.pid, sig)
        # A guard against a hang, not a timing: a process that ignored SIGINT would finish its
        # 60 s build and change the index, which the assertion below catches.
        proc.wait(90)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert store.current() == before
    service = QAService(settings, embedder=CountingEmbedder())
    assert len(service.sources()) == 3
    # The lock died with the process: the next run is not refused, and finishes the work.
    write_article(corpus, "delta.txt", "Wheat exports", "Canadian wheat exports rose.")
    started = time.monotonic()
    report = update_index(settings, CountingEmbedder())
    assert report.added == ["delta.txt"]
    assert time.monotonic() - started < 30


def test_an_index_without_its_seeds_folder_still_answers(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    elsewhere = make_settings(tmp_path, tmp_path / "no-seeds-here")
    service = QAService(elsewhere, embedder=CountingEmbedder())
    assert service.ensure_index() is None
    assert service.ask("Where was the attack drone registered?").answered


def test_a_model_the_exporter_refuses_still_builds_and_answers(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch, real_embedder
) -> None:
    from qa_bot.onnx_embedding import OnnxExportError

    def refuse(model: str, out_dir: Path, **kwargs: object) -> Path:
        raise OnnxExportError(f"{model}: CLS pooling is not supported")

    monkeypatch.setattr("qa_bot.onnx_export.export_onnx", refuse)
    service = QAService(make_settings(tmp_path, corpus), embedder=real_embedder)
    report = service.index()
    assert report.added and report.onnx_exported is False
    assert service.query_embedder is real_embedder
    assert service.ask("Which air base did the drone take off from?").answered
