from __future__ import annotations

import json
import os
import sqlite3
import threading
from pathlib import Path

import numpy as np
import pytest

from qa_bot.errors import (
    IndexCorruptError,
    IndexLockedError,
    IndexMismatchError,
    IndexMissingError,
    IndexWriteError,
    SeedsError,
)
from qa_bot.indexer import stale_files, update_index
from qa_bot.lexical import LexicalIndex
from qa_bot.service import QAService
from qa_bot.store import IndexStore

from .conftest import CountingEmbedder, make_settings, write_article


def _build(tmp_path: Path, seeds: Path, embedder: CountingEmbedder, **kw):
    return update_index(make_settings(tmp_path, seeds), embedder, **kw)


def test_first_build_embeds_everything(tmp_path: Path, corpus: Path) -> None:
    fake = CountingEmbedder()
    report = _build(tmp_path, corpus, fake)
    assert report.added == ["alpha.txt", "beta.txt", "nested/gamma.md"]
    assert report.chunks_embedded == len(fake.embedded) == report.chunks_total > 0
    assert report.full_rebuild_reason == "no index yet"


def test_unchanged_files_are_not_embedded_again(tmp_path: Path, corpus: Path) -> None:
    _build(tmp_path, corpus, CountingEmbedder())
    fake = CountingEmbedder()
    report = _build(tmp_path, corpus, fake)
    assert fake.calls == []
    assert not report.changed
    assert report.unchanged == ["alpha.txt", "beta.txt", "nested/gamma.md"]


def test_touched_but_identical_file_is_not_embedded(tmp_path: Path, corpus: Path) -> None:
    _build(tmp_path, corpus, CountingEmbedder())
    path = corpus / "beta.txt"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    fake = CountingEmbedder()
    report = _build(tmp_path, corpus, fake)
    assert fake.calls == [] and not report.changed
    # The new mtime was recorded: the next run does not even read the file.
    manifest = IndexStore(tmp_path / "index").read_manifest()
    assert manifest.files["beta.txt"].mtime_ns == path.stat().st_mtime_ns


def test_add_modify_delete_embed_only_what_changed(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path, corpus)
    first = update_index(settings, CountingEmbedder())
    write_article(corpus, "delta.txt", "New story", "A brand new story about wheat exports.")
    write_article(
        corpus, "beta.txt", "Ceasefire talks resume", "The talks resumed in Geneva on Friday."
    )
    (corpus / "nested" / "gamma.md").unlink()
    fake = CountingEmbedder()
    report = update_index(settings, fake)
    assert report.added == ["delta.txt"]
    assert report.updated == ["beta.txt"]
    assert report.removed == ["nested/gamma.md"]
    assert report.unchanged == ["alpha.txt"]
    assert all("wheat" in t or "resumed" in t for t in fake.embedded)
    assert report.chunks_embedded == len(fake.embedded) == 2
    assert report.generation != first.generation

    service = QAService(settings, embedder=CountingEmbedder())
    files = [s.meta.path for s in service.sources()]
    assert files == ["alpha.txt", "beta.txt", "delta.txt"]
    # Kept vectors are the very vectors embedded the first time.
    snap = service.snapshot()
    ids = snap.chunk_ids_of(["alpha"])
    expected = CountingEmbedder().embed(
        [
            f"Drone spotted over the convoy. {' '.join(c.text.split())}"
            for c in snap.chunks(ids.tolist()).values()
        ]
    )
    np.testing.assert_allclose(np.asarray(snap.vectors[ids]), expected, atol=1e-6)


def test_model_change_and_force_rebuild_everything(tmp_path: Path, corpus: Path) -> None:
    _build(tmp_path, corpus, CountingEmbedder())
    other = CountingEmbedder(model_id="another-model")
    report = _build(tmp_path, corpus, other)
    assert "embedding model changed" in (report.full_rebuild_reason or "")
    assert len(other.embedded) == report.chunks_total
    forced = CountingEmbedder(model_id="another-model")
    report = _build(tmp_path, corpus, forced, force=True)
    assert report.full_rebuild_reason == "--force"
    assert len(forced.embedded) == report.chunks_total


def test_chunker_setting_change_rebuilds(tmp_path: Path, corpus: Path) -> None:
    update_index(make_settings(tmp_path, corpus), CountingEmbedder())
    settings = make_settings(tmp_path, corpus, chunking={"max_chars": 120, "max_sentences": 2})
    report = update_index(settings, CountingEmbedder())
    assert report.full_rebuild_reason == "chunker settings changed"


def test_ask_recuts_windows_made_by_other_chunker_settings(tmp_path: Path, corpus: Path) -> None:
    """After a chunker change (a setting, or an upgrade that cuts windows differently) the
    next question is answered from windows cut the new way, not the ones on disk."""
    QAService(make_settings(tmp_path, corpus), embedder=CountingEmbedder()).index()
    settings = make_settings(tmp_path, corpus, chunking={"max_chars": 120, "max_sentences": 1})
    service = QAService(settings, embedder=CountingEmbedder())
    report = service.ensure_index()
    assert report is not None and report.full_rebuild_reason == "chunker settings changed"
    assert service.ensure_index() is None


def _holds(lexical: LexicalIndex, term: str) -> bool:
    return float(lexical.scores([term]).max(initial=0.0)) > 0


def _new_tokenizer(monkeypatch: pytest.MonkeyPatch) -> None:
    """A tokenizer release that splits words differently: "convoy" becomes "konvoi"."""
    import qa_bot.text as text

    old_stem = text._stem
    monkeypatch.setattr(text, "TOKENIZER_VERSION", text.TOKENIZER_VERSION + 1)
    monkeypatch.setattr(text, "_stem", lambda w: "konvoi" if w == "convoy" else old_stem(w))


def test_tokenizer_change_rebuilds_the_word_index_without_embedding(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, corpus)
    first = update_index(settings, CountingEmbedder())
    _new_tokenizer(monkeypatch)
    fake = CountingEmbedder()
    report = update_index(settings, fake)
    assert fake.embedded == [] and report.chunks_embedded == 0
    assert report.full_rebuild_reason is None
    assert "tokenizer" in (report.lexical_rebuild_reason or "")
    assert report.generation != first.generation
    snapshot = IndexStore(settings.index_dir).open(settings.retrieval)
    assert _holds(snapshot.lexical, "konvoi") and not _holds(snapshot.lexical, "convoy")
    again = update_index(settings, CountingEmbedder())
    assert not again.changed and again.lexical_rebuild_reason is None


def test_ask_refreshes_postings_made_by_an_older_tokenizer(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, corpus)
    QAService(settings, embedder=CountingEmbedder()).index()
    _new_tokenizer(monkeypatch)
    fake = CountingEmbedder()
    service = QAService(settings, embedder=fake, query_embedder=CountingEmbedder())
    report = service.ensure_index()
    assert report is not None and report.lexical_rebuild_reason and fake.embedded == []
    retrieval = service.search("Where did the drone over the convoy take off?")
    assert retrieval is not None and retrieval.hits[0].lexical > 0


def test_index_without_its_seeds_rebuilds_old_postings_in_memory(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    generation = IndexStore(settings.index_dir).current()
    _new_tokenizer(monkeypatch)
    elsewhere = make_settings(tmp_path, tmp_path / "no-seeds-here")
    service = QAService(elsewhere, embedder=CountingEmbedder())
    assert service.ensure_index() is None
    snapshot = service.snapshot()
    assert snapshot.generation == generation
    assert _holds(snapshot.lexical, "konvoi") and not _holds(snapshot.lexical, "convoy")
    on_disk = LexicalIndex.load(snapshot.path / "lexical")
    assert _holds(on_disk, "convoy"), "the index on disk is left as it was"


def test_sidecar_edit_reindexes_only_that_file(tmp_path: Path, corpus: Path) -> None:
    _build(tmp_path, corpus, CountingEmbedder())
    (corpus / "metadata.toml").write_text('["beta.txt"]\noutlet = "Example Wire"\n')
    settings = make_settings(tmp_path, corpus)
    assert stale_files(settings, IndexStore(settings.index_dir).read_manifest()) == ["beta.txt"]
    fake = CountingEmbedder()
    report = update_index(settings, fake)
    assert report.updated == ["beta.txt"]
    service = QAService(settings, embedder=fake)
    outlets = {s.meta.path: s.meta.outlet for s in service.sources()}
    assert outlets["beta.txt"] == "Example Wire"


def test_duplicates_and_bad_files_are_skipped_with_reasons(tmp_path: Path, corpus: Path) -> None:
    (corpus / "copy.txt").write_bytes((corpus / "alpha.txt").read_bytes())
    (corpus / "empty.txt").write_text("")
    (corpus / "blob.txt").write_bytes(b"\x00\xff" * 100)
    report = _build(tmp_path, corpus, CountingEmbedder())
    reasons = {s.path: s.reason for s in report.skipped}
    assert "same text as alpha.txt" in reasons["copy.txt"]
    assert reasons["empty.txt"] == "empty file (0 bytes)"
    assert "binary" in reasons["blob.txt"]
    assert report.added == ["alpha.txt", "beta.txt", "nested/gamma.md"]


def test_empty_corpus_is_a_clear_error(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    with pytest.raises(SeedsError, match="no usable article"):
        _build(tmp_path, seeds, CountingEmbedder())
    (seeds / "empty.txt").write_text("")
    with pytest.raises(SeedsError, match=r"empty\.txt: empty file"):
        _build(tmp_path, seeds, CountingEmbedder())


class Boom(RuntimeError):
    pass


class FailingEmbedder(CountingEmbedder):
    def embed(self, texts, *, progress=None):
        raise Boom("model crashed")


@pytest.mark.parametrize("failure", ["embed", "write", "interrupt"])
def test_failed_rebuild_leaves_the_old_index_usable(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch, failure: str
) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    store = IndexStore(settings.index_dir)
    before = store.current()
    write_article(corpus, "delta.txt", "New story", "A new story about wheat.")
    if failure == "embed":
        with pytest.raises(Boom):
            update_index(settings, FailingEmbedder())
    else:
        import qa_bot.store_build as store_module

        def fail(*args, **kwargs):
            if failure == "write":
                raise OSError(28, "No space left on device")
            raise KeyboardInterrupt

        monkeypatch.setattr(store_module.LexicalIndex, "build", fail)
        with pytest.raises(IndexWriteError if failure == "write" else KeyboardInterrupt) as info:
            update_index(settings, CountingEmbedder())
        if failure == "write":
            assert "previous index is unchanged" in str(info.value)
        monkeypatch.undo()
    assert store.current() == before
    assert not list(settings.index_dir.glob(".tmp-*"))
    service = QAService(settings, embedder=CountingEmbedder())
    assert [s.meta.path for s in service.sources()] == ["alpha.txt", "beta.txt", "nested/gamma.md"]
    # The next run completes the work.
    report = update_index(settings, CountingEmbedder())
    assert report.added == ["delta.txt"]


def test_second_writer_is_refused_while_one_runs(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path, corpus)
    store = IndexStore(settings.index_dir)
    entered, release = threading.Event(), threading.Event()

    def hold() -> None:
        with store.lock():
            entered.set()
            release.wait(10)

    thread = threading.Thread(target=hold)
    thread.start()
    try:
        assert entered.wait(10)
        with pytest.raises(IndexLockedError, match="another `qa-bot index`"):
            update_index(settings, CountingEmbedder())
    finally:
        release.set()
        thread.join()
    assert update_index(settings, CountingEmbedder()).added


@pytest.mark.parametrize(
    ("damage", "error"),
    [
        ("truncate-faiss", IndexCorruptError),
        ("garbage-manifest", IndexCorruptError),
        ("format-version", IndexMismatchError),
        ("drop-vectors", IndexCorruptError),
        ("out-of-step", IndexCorruptError),
        ("out-of-step-chunks", IndexCorruptError),
        ("garbage-sqlite", IndexCorruptError),
    ],
)
def test_damaged_index_is_detected_and_rebuilt(
    tmp_path: Path, corpus: Path, damage: str, error: type[Exception]
) -> None:
    # vectors.npy exists only beside an IVF index (flat and HNSW hold the vectors themselves)
    ivf = damage in {"drop-vectors", "out-of-step"}
    retrieval = {"exact_search_limit": 0, "ann": "ivf"} if ivf else {}
    settings = make_settings(tmp_path, corpus, retrieval=retrieval)
    update_index(settings, CountingEmbedder())
    store = IndexStore(settings.index_dir)
    gen = settings.index_dir / (store.current() or "")
    if damage == "truncate-faiss":
        data = (gen / "dense.faiss").read_bytes()
        (gen / "dense.faiss").write_bytes(data[: len(data) // 2])
    elif damage == "garbage-manifest":
        (gen / "manifest.json").write_text("{not json")
    elif damage == "format-version":
        manifest = json.loads((gen / "manifest.json").read_text())
        manifest["format_version"] = 999
        (gen / "manifest.json").write_text(json.dumps(manifest))
    elif damage == "drop-vectors":
        (gen / "vectors.npy").unlink()
    elif damage == "out-of-step":
        vectors = np.load(gen / "vectors.npy")
        np.save(gen / "vectors.npy", vectors[:-1])
    elif damage == "out-of-step-chunks":
        with sqlite3.connect(gen / "meta.sqlite") as db:
            db.execute("DELETE FROM chunks WHERE id = (SELECT MAX(id) FROM chunks)")
    elif damage == "garbage-sqlite":
        (gen / "meta.sqlite").write_bytes(b"this is not a database" * 100)
    with pytest.raises(error, match="qa-bot index"):
        QAService(settings, embedder=CountingEmbedder()).sources()
    report = update_index(settings, CountingEmbedder())
    assert "unusable" in (report.full_rebuild_reason or "")
    assert len(QAService(settings, embedder=CountingEmbedder()).sources()) == 3


def test_an_index_in_the_previous_format_is_rebuilt_by_the_next_question(
    tmp_path: Path, corpus: Path
) -> None:
    """Format 1 had no stated date lines: read alone it is refused with what to do, and the
    next question with the seeds at hand rebuilds it and says why."""
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    gen = settings.index_dir / (IndexStore(settings.index_dir).current() or "")
    manifest = json.loads((gen / "manifest.json").read_text())
    manifest["format_version"] = 1
    (gen / "manifest.json").write_text(json.dumps(manifest))
    with sqlite3.connect(gen / "meta.sqlite") as db:
        db.execute("ALTER TABLE articles DROP COLUMN stated_start")
        db.execute("ALTER TABLE articles DROP COLUMN stated_end")
    with pytest.raises(IndexMismatchError, match=r"format 1.*run `qa-bot index` to rebuild"):
        QAService(settings, embedder=CountingEmbedder()).sources()
    report = QAService(settings, embedder=CountingEmbedder()).ensure_index()
    assert report is not None and "format 1" in (report.full_rebuild_reason or "")
    alpha = QAService(settings, embedder=CountingEmbedder()).snapshot().article("alpha")
    assert alpha is not None and alpha.stated_span is not None


@pytest.mark.parametrize(
    ("retrieval", "kind", "separate_file"),
    [
        ({}, "flat", False),
        ({"exact_search_limit": 0, "ann": "hnsw"}, "hnsw", False),
        ({"exact_search_limit": 0, "ann": "ivf"}, "ivf", True),
    ],
)
def test_vectors_are_stored_once(
    tmp_path: Path, corpus: Path, retrieval: dict, kind: str, separate_file: bool
) -> None:
    """Flat and HNSW index files hold every vector: no second copy on disk, and the
    snapshot's vectors are the index's, row for row."""
    settings = make_settings(tmp_path, corpus, retrieval=retrieval)
    fake = CountingEmbedder()
    update_index(settings, fake)
    snapshot = IndexStore(settings.index_dir).open(settings.retrieval)
    assert snapshot.dense.kind == kind
    assert (snapshot.path / "vectors.npy").is_file() == separate_file
    expected = CountingEmbedder().embed(list(fake.embedded))
    np.testing.assert_allclose(np.asarray(snapshot.vectors), expected, atol=1e-6)
    assert not snapshot.vectors.flags.writeable


def test_generations_with_a_separate_vectors_file_still_open(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    store = IndexStore(settings.index_dir)
    snapshot = store.open(settings.retrieval)
    old_layout = np.asarray(snapshot.vectors) * 1.0
    np.save(snapshot.path / "vectors.npy", old_layout)  # as generations were written before
    reopened = store.open(settings.retrieval)
    np.testing.assert_array_equal(np.asarray(reopened.vectors), old_layout)
    write_article(corpus, "delta.txt", "New story", "A new story about wheat harvests.")
    report = update_index(settings, CountingEmbedder())
    assert report.added == ["delta.txt"] and report.full_rebuild_reason is None
    assert not (store.open(settings.retrieval).path / "vectors.npy").exists()


def test_missing_index_is_a_clear_error(tmp_path: Path, corpus: Path) -> None:
    with pytest.raises(IndexMissingError, match="run `qa-bot index`"):
        QAService(make_settings(tmp_path, corpus)).sources()


def test_read_only_index_folder_is_a_clear_error(
    tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    write_article(corpus, "delta.txt", "New story", "A new story about wheat.")
    if os.geteuid() == 0:  # root ignores permissions: make the folder refuse writes instead

        def refuse(*args: object, **kwargs: object) -> str:
            raise PermissionError(13, "Permission denied")

        monkeypatch.setattr("qa_bot.store_build.tempfile.mkdtemp", refuse)
    else:
        settings.index_dir.chmod(0o500)
    try:
        with pytest.raises(IndexWriteError, match="Permission denied"):
            update_index(settings, CountingEmbedder())
    finally:
        settings.index_dir.chmod(0o700)
        monkeypatch.undo()
    assert len(QAService(settings, embedder=CountingEmbedder()).sources()) == 3


def test_old_generations_are_collected(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path, corpus)
    for i in range(4):
        write_article(corpus, "beta.txt", "Talks", f"Round {i} of talks ended.")
        update_index(settings, CountingEmbedder())
    gens = sorted(p.name for p in settings.index_dir.glob("gen-*"))
    assert len(gens) == 2  # the live one and the one a running reader may still hold
    assert IndexStore(settings.index_dir).current() == gens[-1]
