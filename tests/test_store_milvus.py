"""What only the Milvus store has: rows of several generations side by side, epochs, the lock
across machines, and a server that may be down (milvus-lite's server on 127.0.0.1)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa_bot.cli import app
from qa_bot.errors import IndexLockedError, IndexWriteError, StoreUnavailableError
from qa_bot.indexer import update_index
from qa_bot.milvus_client import LOCK_KEY, literal, text_parts
from qa_bot.milvus_view import MilvusView
from qa_bot.service import QAService
from qa_bot.settings import Settings, SettingsError, load_settings
from qa_bot.store_milvus import MilvusStore
from qa_bot.stores import open_store

from .conftest import CountingEmbedder, make_settings, write_article
from .milvus_server import free_port
from .test_indexer import _new_tokenizer


@pytest.fixture
def settings(tmp_path: Path, corpus: Path, milvus_uri: str) -> Settings:
    store = {
        "backend": "milvus",
        "milvus_uri": milvus_uri,
        "milvus_collection": f"t_{uuid.uuid4().hex[:16]}",
    }
    return make_settings(tmp_path, corpus, store=store)


def _store(settings: Settings) -> MilvusStore:
    store = open_store(settings)
    assert isinstance(store, MilvusStore)
    return store


def _rows(store: MilvusStore, view: MilvusView, expr: str) -> list[dict[str, object]]:
    return store.conn.query_all(view.passages, expr, ["id", "gen", "gone"])


def test_rows_of_a_killed_build_stay_invisible_and_the_next_build_clears_them(
    settings: Settings, corpus: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    update_index(settings, CountingEmbedder())
    store = _store(settings)
    view = store.open(settings.retrieval)
    write_article(corpus, "beta.txt", "Talks resume in Vienna", "Talks resumed in Vienna.")
    from qa_bot.milvus_build import MilvusBuild

    def fail(self: object, *args: object) -> None:
        raise IndexWriteError("stopped (test)")

    monkeypatch.setattr(MilvusBuild, "_mark_retired", fail)
    monkeypatch.setattr(MilvusBuild, "abort", lambda self: None)  # killed: no clean-up
    with pytest.raises(IndexWriteError):
        update_index(settings, CountingEmbedder())
    written = _rows(store, view, f"gen > {view.number}")
    assert written, "the failed build did write the changed article's passages"
    assert store.current() == view.generation
    assert not set(view.chunks([int(r["id"]) for r in written]))  # type: ignore[call-overload]
    monkeypatch.undo()
    report = update_index(settings, CountingEmbedder())
    after = store.open(settings.retrieval)
    assert report.updated == ["beta.txt"] and after.number == view.number + 1
    live = _rows(store, after, after.visible)
    assert len(live) == after.n_chunks
    assert not _rows(store, after, f"gen > {after.number} or gone > {after.number}")


def test_retired_rows_are_kept_one_generation_then_deleted(
    settings: Settings, corpus: Path
) -> None:
    update_index(settings, CountingEmbedder())
    store = _store(settings)
    first = store.open(settings.retrieval)
    (corpus / "beta.txt").unlink()
    update_index(settings, CountingEmbedder())
    second = store.open(settings.retrieval)
    retired = _rows(store, second, f"gone == {second.number}")
    assert len(retired) == first.n_chunks - second.n_chunks > 0
    assert dict(second.summary().details)["rows_retired"] == str(len(retired))
    write_article(corpus, "delta.txt", "Floods close the port", "Floods closed the port.")
    update_index(settings, CountingEmbedder())
    third = store.open(settings.retrieval)
    assert not _rows(store, third, f"gone == {second.number}")
    assert len(_rows(store, third, "id >= 0")) == third.n_chunks


def test_another_model_rebuilds_into_a_new_epoch(settings: Settings, corpus: Path) -> None:
    update_index(settings, CountingEmbedder(dimension=64, model_id="fake-a"))
    store = _store(settings)
    first = store.open(settings.retrieval)
    report = update_index(settings, CountingEmbedder(dimension=32, model_id="fake-b"))
    assert "model changed" in (report.full_rebuild_reason or "")
    second = store.open(settings.retrieval)
    assert second.epoch == first.epoch + 1 and second.manifest.dimension == 32
    assert first.article("alpha") is not None, "the old epoch stays one generation"
    write_article(corpus, "delta.txt", "Floods close the port", "Floods closed the port.")
    update_index(settings, CountingEmbedder(dimension=32, model_id="fake-b"))
    assert not store.conn.has(first.passages)
    service = QAService(
        settings,
        embedder=CountingEmbedder(32, "fake-b"),
        query_embedder=CountingEmbedder(32, "fake-b"),
    )
    assert service.ask("At what altitude was the drone?").citations[0].article.path == "alpha.txt"


def test_a_new_tokenizer_rewrites_the_words_without_embedding(
    settings: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    update_index(settings, CountingEmbedder())
    _new_tokenizer(monkeypatch)
    fake = CountingEmbedder()
    report = update_index(settings, fake)
    assert fake.embedded == [] and "tokenizer" in (report.lexical_rebuild_reason or "")
    view = _store(settings).open(settings.retrieval)
    assert view.lexical.holds("konvoi") and not view.lexical.holds("convoy")
    service = QAService(settings, embedder=fake, query_embedder=fake)
    retrieval = service.search("Where did the drone over the convoy take off?")
    assert retrieval is not None and retrieval.hits[0].lexical > 0


def test_a_lock_left_by_a_dead_process_is_taken_over(settings: Settings) -> None:
    store = _store(settings)
    store.conn.ensure_meta()
    store.conn.client.create_alias(
        collection_name=store.conn.meta, alias=f"{store.conn.prefix}_build_lock"
    )
    import socket

    dead = {"host": socket.gethostname(), "pid": 2**22 + 12345, "at": 0}
    store.conn.put_meta({LOCK_KEY: json.dumps(dead)})
    report = update_index(settings, CountingEmbedder())
    assert report.added


def test_a_lock_held_elsewhere_is_respected(settings: Settings) -> None:
    store = _store(settings)
    store.conn.ensure_meta()
    store.conn.client.create_alias(
        collection_name=store.conn.meta, alias=f"{store.conn.prefix}_build_lock"
    )
    alive = {"host": "another-machine", "pid": 1, "at": __import__("time").time()}
    store.conn.put_meta({LOCK_KEY: json.dumps(alive)})
    with pytest.raises(IndexLockedError, match="another `qa-bot index`"):
        update_index(settings, CountingEmbedder(), lock_wait=0.3)


def test_an_unreachable_engine_is_a_clear_error_and_leaves_the_local_index_alone(
    tmp_path: Path, corpus: Path
) -> None:
    local = make_settings(tmp_path, corpus)
    update_index(local, CountingEmbedder())
    before = {p: p.stat().st_mtime_ns for p in local.index_dir.rglob("*")}
    uri = f"http://127.0.0.1:{free_port()}"
    runner = CliRunner()
    env = {"QA_BOT_STORE__BACKEND": "milvus", "QA_BOT_STORE__MILVUS_URI": uri}
    opts = ["--seeds", str(corpus), "--index", str(local.index_dir)]
    for command in (["index"], ["ask", "At what altitude was the drone?"], ["status"]):
        result = runner.invoke(app, [*opts, *command], env=env, catch_exceptions=False)
        assert result.exit_code == 4, result.output
        assert f"cannot reach Milvus at {uri}" in result.output
        assert "Traceback" not in result.output
    assert {p: p.stat().st_mtime_ns for p in local.index_dir.rglob("*")} == before
    service = QAService(local, embedder=CountingEmbedder(), query_embedder=CountingEmbedder())
    assert service.ask("At what altitude was the drone?").answered
    with pytest.raises(StoreUnavailableError) as failed:
        update_index(
            make_settings(tmp_path, corpus, store={"backend": "milvus", "milvus_uri": uri}),
            CountingEmbedder(),
        )
    assert failed.value.exit_code == 4


def test_status_says_what_is_in_the_collections(settings: Settings, corpus: Path) -> None:
    update_index(settings, CountingEmbedder())
    env = {
        "QA_BOT_STORE__BACKEND": "milvus",
        "QA_BOT_STORE__MILVUS_URI": settings.store.milvus_uri,
        "QA_BOT_STORE__MILVUS_COLLECTION": settings.store.milvus_collection,
    }
    result = CliRunner().invoke(
        app,
        ["--seeds", str(corpus), "--index", str(settings.index_dir), "status", "--json"],
        env=env,
    )
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["store"] == "milvus" and data["articles"] == 3
    assert data["collections"].startswith(f"{settings.store.milvus_collection}_e1_passages")
    assert data["passage_rows"] == str(data["chunks"]) and data["rows_retired"] == "0"
    local = sorted(p.name for p in settings.index_dir.glob("*"))
    assert local in ([], ["skipped.json"]), "no FAISS generation is written beside Milvus"


def test_a_local_milvus_lite_file(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(
        tmp_path, corpus, store={"backend": "milvus", "milvus_uri": str(tmp_path / "local.db")}
    )
    update_index(settings, CountingEmbedder())
    service = QAService(settings, embedder=CountingEmbedder(), query_embedder=CountingEmbedder())
    assert (
        service.ask("Where did the ceasefire talks stall?").citations[0].article.path == "beta.txt"
    )


def test_the_token_comes_from_the_environment_only(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('[store]\nbackend = "milvus"\nmilvus_token = "root:Milvus"\n')
    monkeypatch.setenv("QA_BOT_CONFIG", str(config))
    with pytest.raises(SettingsError, match="QA_BOT_STORE__MILVUS_TOKEN"):
        load_settings()


def test_long_texts_are_stored_in_parts_cut_at_characters() -> None:
    text = "é" * 50_000 + "a" * 70_000
    parts = text_parts(text)
    assert "".join(parts) == text and all(len(p.encode()) <= 60_000 for p in parts)
    assert text_parts("") == [""]
    assert literal('Ag"ence \\ X') == '"Ag\\"ence \\\\ X"'


def test_collections_released_by_a_restart_are_loaded_again(settings: Settings) -> None:
    update_index(settings, CountingEmbedder())
    store = _store(settings)
    view = store.open(settings.retrieval)
    for name in (store.conn.meta, view.passages, view.articles):
        store.conn.client.release_collection(name)
    service = QAService(settings, embedder=CountingEmbedder(), query_embedder=CountingEmbedder())
    assert service.ask("At what altitude was the drone?").citations[0].article.path == "alpha.txt"


def test_an_idle_connection_does_not_ping_the_engine(settings: Settings) -> None:
    """gRPC's default server policy closes a connection pinged while idle ("too_many_pings"),
    after a few quiet minutes: the store's client pings only while a call runs."""
    client = _store(settings).conn.client
    client.has_collection("anything")
    options = client._handler._grpc_options  # the options its channel was made with
    assert options.get("grpc.keepalive_permit_without_calls") == 0
