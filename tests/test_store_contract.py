"""The store contract, on both backends: the embedded FAISS index and Milvus.

Milvus is milvus-lite's gRPC server, started once for the session on 127.0.0.1 (conftest);
each test writes collections of its own. The counting fake embedder proves what was embedded.
"""

from __future__ import annotations

import datetime as dt
import os
import threading
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa_bot.chunking import embedding_text
from qa_bot.errors import IndexLockedError, IndexWriteError
from qa_bot.filters import SearchFilters
from qa_bot.indexer import stale_files, update_index
from qa_bot.models import Answer
from qa_bot.service import QAService
from qa_bot.settings import Settings
from qa_bot.store_api import IndexView
from qa_bot.stores import open_store

from .conftest import CountingEmbedder, make_settings, write_article

MakeSettings = Callable[..., Settings]


@pytest.fixture(params=["faiss", "milvus"])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def settings_for(backend: str, tmp_path: Path, request: pytest.FixtureRequest) -> MakeSettings:
    """Settings for a corpus on this test's backend (one Milvus collection prefix per test)."""
    store: dict[str, object] = {"backend": backend}
    if backend == "milvus":
        store |= {
            "milvus_uri": request.getfixturevalue("milvus_uri"),
            "milvus_collection": f"t_{uuid.uuid4().hex[:16]}",
        }

    def make(seeds: Path, **overrides: object) -> Settings:
        return make_settings(tmp_path, seeds, store=store, **overrides)

    return make


def _index(settings: Settings, embedder: CountingEmbedder | None = None, **kw: object):
    return update_index(settings, embedder or CountingEmbedder(), **kw)  # type: ignore[arg-type]


def _service(settings: Settings) -> QAService:
    fake = CountingEmbedder()
    return QAService(settings, embedder=fake, query_embedder=fake)


def _paths(service: QAService) -> list[str]:
    return [s.meta.path for s in service.sources()]


def _cited(service: QAService, question: str, **kw: object) -> list[str]:
    answer = service.ask(question, **kw)  # type: ignore[arg-type]
    return [c.article.path for c in answer.citations]


def test_add_embeds_only_the_new_article(settings_for: MakeSettings, corpus: Path) -> None:
    settings = settings_for(corpus)
    _index(settings)
    service = _service(settings)
    first = service.snapshot().generation
    write_article(corpus, "delta.txt", "Floods close the port", "Floods closed the port of Basra.")
    fake = CountingEmbedder()
    report = _index(settings, fake)
    assert report.added == ["delta.txt"] and report.unchanged == [
        "alpha.txt",
        "beta.txt",
        "nested/gamma.md",
    ]
    assert fake.embedded and all("Basra" in t or "Floods" in t for t in fake.embedded)
    view = service.snapshot()
    assert view.generation != first and view.n_chunks == report.chunks_total
    assert "delta.txt" in _paths(service)
    assert _cited(service, "What closed the port of Basra?")[0] == "delta.txt"
    assert service.status().articles == 4


def test_the_stated_date_line_is_stored_with_the_article(
    settings_for: MakeSettings, corpus: Path
) -> None:
    """Where a page states its date is found at index time and read back from either store,
    also for an article kept from the previous build."""
    settings = settings_for(corpus)
    _index(settings)
    write_article(corpus, "delta.txt", "Floods close the port", "Floods closed the port of Basra.")
    _index(settings)
    view = _service(settings).snapshot()
    metas = view.articles_by_id(["alpha", "beta", "nested/gamma", "delta"])
    stated = {}
    for article_id, meta in metas.items():
        span = meta.stated_span
        stated[article_id] = None if span is None else view.article_text(article_id)[slice(*span)]
    assert stated == {
        "alpha": "24 Sep, 2016 01:53",
        "beta": "2016-09-28",
        "nested/gamma": None,
        "delta": None,
    }
    assert {s.meta.id: s.meta.stated_span for s in view.sources()} == {
        m.id: m.stated_span for m in metas.values()
    }


def test_change_replaces_the_article_and_nothing_else(
    settings_for: MakeSettings, corpus: Path
) -> None:
    settings = settings_for(corpus)
    _index(settings)
    service = _service(settings)
    before = service.snapshot()
    old_ids = before.chunk_ids_of(["beta"]).tolist()
    write_article(
        corpus, "beta.txt", "Ceasefire talks resume in Vienna", "The talks resumed in Vienna."
    )
    fake = CountingEmbedder()
    report = _index(settings, fake)
    assert report.updated == ["beta.txt"] and fake.embedded
    assert all("Vienna" in t for t in fake.embedded)
    after = service.snapshot()
    assert after.generation != before.generation
    assert "Vienna" in (after.article_text("beta") or "")
    assert after.article("beta") is not None and after.article("beta").title.endswith("Vienna")
    new_ids = after.chunk_ids_of(["beta"]).tolist()
    assert all(c.article_id == "beta" for c in after.chunks(new_ids).values())
    assert len(after.chunks(new_ids)) == len(new_ids)
    # The generation opened before the build still reads the old article, whole.
    assert "Geneva" in (before.article_text("beta") or "")
    assert {c.article_id for c in before.chunks(old_ids).values()} == {"beta"}
    assert _cited(service, "Where did the ceasefire talks resume?")[0] == "beta.txt"
    assert service.status().chunks == report.chunks_total


def test_delete_drops_the_article(settings_for: MakeSettings, corpus: Path) -> None:
    settings = settings_for(corpus)
    _index(settings)
    (corpus / "nested" / "gamma.md").unlink()
    fake = CountingEmbedder()
    report = _index(settings, fake)
    assert report.removed == ["nested/gamma.md"] and fake.calls == []
    service = _service(settings)
    assert _paths(service) == ["alpha.txt", "beta.txt"]
    view = service.snapshot()
    assert view.article("nested/gamma") is None and view.article_text("nested/gamma") is None
    assert view.chunk_ids_of(["nested/gamma"]).size == 0
    assert "nested/gamma.md" not in _cited(service, "What improved the harvest outlook?")
    assert not view.lexical.holds("cocoa")


def test_unchanged_seeds_build_nothing(settings_for: MakeSettings, corpus: Path) -> None:
    settings = settings_for(corpus)
    first = _index(settings)
    fake = CountingEmbedder()
    again = _index(settings, fake)
    assert fake.calls == [] and not again.changed and again.generation == first.generation
    assert open_store(settings).current() == first.generation


def test_a_touched_file_is_recorded_not_embedded(settings_for: MakeSettings, corpus: Path) -> None:
    settings = settings_for(corpus)
    first = _index(settings)
    path = corpus / "beta.txt"
    os.utime(path, ns=(path.stat().st_atime_ns, path.stat().st_mtime_ns + 10**9))
    fake = CountingEmbedder()
    report = _index(settings, fake)
    assert fake.calls == [] and not report.changed and report.generation == first.generation
    manifest = open_store(settings).read_manifest()
    assert manifest.files["beta.txt"].mtime_ns == path.stat().st_mtime_ns
    assert stale_files(settings, manifest) == []


def _outlets_corpus(seeds: Path) -> None:
    for name, outlet, date, body in [
        ("a.txt", "TASS", "2016-09-22", "Smoke rose near the convoy, TASS reported."),
        ("b.txt", "RT", "2016-09-24", "Witnesses saw smoke near the convoy, RT said."),
        ("c.txt", "RT", "", "An RT crew filmed smoke near the convoy."),
        ("d.txt", "Reuters", "2016-10-02", "Smoke near the convoy was seen, Reuters said."),
    ]:
        write_article(seeds, name, f"Convoy report {name[0]}", body, date=date)
        (seeds / "metadata.toml").open("a").write(f'["{name}"]\noutlet = "{outlet}"\n')


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (SearchFilters(outlets=("rt",)), {"b.txt", "c.txt"}),
        (SearchFilters(outlets=("TASS", "Reuters")), {"a.txt", "d.txt"}),
        (SearchFilters(since=dt.date(2016, 9, 23)), {"b.txt", "d.txt"}),
        (SearchFilters(outlets=("RT",), until=dt.date(2016, 9, 30)), {"b.txt"}),
        (SearchFilters(outlets=("AP",)), set()),
        (SearchFilters(since=dt.date(2020, 1, 1)), set()),
    ],
)
def test_filters_admit_what_they_say(
    settings_for: MakeSettings, tmp_path: Path, filters: SearchFilters, expected: set[str]
) -> None:
    seeds = tmp_path / "seeds"
    _outlets_corpus(seeds)
    settings = settings_for(seeds)
    _index(settings)
    service = _service(settings)
    view = service.snapshot()
    vector = CountingEmbedder().embed(["smoke near the convoy"])[0]
    found = view.candidates(vector, ["smoke", "convoy"], 50, filters=filters)
    paths = {view.article(c.article_id).path for c in view.chunks(found.ids.tolist()).values()}  # type: ignore[union-attr]
    assert paths == expected
    retrieval = service.search("Who saw smoke near the convoy?", filters=filters)
    assert retrieval is not None
    assert {h.article.path for h in retrieval.hits} == expected
    if not expected:
        assert retrieval.reason == "no article matches the filters"
    assert view.undated_articles() == 1 and view.outlets() == ["RT", "Reuters", "TASS"]


@pytest.fixture
def broken_writes(backend: str, monkeypatch: pytest.MonkeyPatch) -> Callable[[], None]:
    """Makes the next build fail part-way through writing: after the passages of new and
    changed articles are written (Milvus), or while the generation is saved (FAISS)."""

    def arm() -> None:
        if backend == "milvus":
            from qa_bot.milvus_build import MilvusBuild

            def fail(self: object, *args: object) -> None:
                raise IndexWriteError("the engine stopped accepting writes (test)")

            monkeypatch.setattr(MilvusBuild, "_mark_retired", fail)
        else:
            from qa_bot.vector_index import VectorIndex

            def fail_save(self: object, path: Path) -> None:
                raise OSError(28, "No space left on device")

            monkeypatch.setattr(VectorIndex, "save", fail_save)

    return arm


def test_a_failed_build_leaves_the_previous_generation_whole(
    settings_for: MakeSettings,
    corpus: Path,
    broken_writes: Callable[[], None],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    settings = settings_for(corpus)
    _index(settings)
    service = _service(settings)
    before = service.snapshot()
    sources, n_chunks = _paths(service), before.n_chunks
    answer = service.ask("Where did the ceasefire talks stall?")
    write_article(
        corpus, "beta.txt", "Ceasefire talks resume in Vienna", "Talks resumed in Vienna."
    )
    write_article(corpus, "delta.txt", "Floods close the port", "Floods closed the port of Basra.")
    broken_writes()
    with pytest.raises(IndexWriteError, match="previous index"):
        _index(settings)
    fresh = _service(settings)  # a reader arriving after the failure
    view = fresh.snapshot()
    assert view.generation == before.generation and view.n_chunks == n_chunks
    assert _paths(fresh) == sources and view.article("delta") is None
    assert "Vienna" not in (view.article_text("beta") or "")
    assert fresh.ask("Where did the ceasefire talks stall?") == answer
    assert fresh.search("What closed the port of Basra?").hits[0].article.path != "delta.txt"  # type: ignore[union-attr]
    monkeypatch.undo()
    report = _index(settings)
    assert report.updated == ["beta.txt"] and report.added == ["delta.txt"]
    after = fresh.snapshot()
    assert after.n_chunks == report.chunks_total
    assert _cited(fresh, "What closed the port of Basra?")[0] == "delta.txt"
    every = after.chunks(after.chunk_ids_of(sorted(s.meta.id for s in after.sources())).tolist())
    assert len(every) == after.n_chunks  # nothing left over, nothing missing


class SlowEmbedder(CountingEmbedder):
    def embed(self, texts, *, progress=None):  # type: ignore[no-untyped-def]
        time.sleep(0.5)
        return super().embed(texts, progress=progress)


def test_two_builders_at_once(settings_for: MakeSettings, corpus: Path) -> None:
    settings = settings_for(corpus)
    _index(settings)
    write_article(corpus, "delta.txt", "Floods close the port", "Floods closed the port of Basra.")
    store = open_store(settings)
    with store.lock():
        with pytest.raises(IndexLockedError, match="another `qa-bot index`") as refused:
            _index(settings)
        assert refused.value.exit_code == 4
    results: list[object] = []

    def build() -> None:
        try:
            results.append(_index(settings, SlowEmbedder(), lock_wait=60))
        except Exception as exc:  # pragma: no cover - reported by the assertion below
            results.append(exc)

    threads = [threading.Thread(target=build) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    reports = sorted(results, key=lambda r: bool(getattr(r, "changed", True)))
    assert [r.added for r in reports] == [[], ["delta.txt"]]  # type: ignore[union-attr]
    service = _service(settings)
    assert "delta.txt" in _paths(service)
    assert service.snapshot().n_chunks == reports[1].chunks_total  # type: ignore[union-attr]


def test_a_running_question_keeps_its_generation(settings_for: MakeSettings, corpus: Path) -> None:
    settings = settings_for(corpus)
    _index(settings)
    service = _service(settings)
    view = service.snapshot()
    ids = view.chunk_ids_of(["alpha"]).tolist()
    (corpus / "alpha.txt").unlink()
    _index(settings)
    assert service.snapshot().generation != view.generation
    assert service.snapshot().article("alpha") is None
    assert view.article("alpha") is not None and len(view.chunks(ids)) == len(ids)
    found = view.candidates(CountingEmbedder().embed(["drone"])[0], ["drone"], 10)
    assert found.ids.size and set(found.ids.tolist()) & set(ids)


def test_both_backends_rank_alike(tmp_path: Path, corpus: Path, milvus_uri: str) -> None:
    """The same corpus and questions give the same candidates, scores and answers."""
    faiss = make_settings(tmp_path / "f", corpus)
    milvus = make_settings(
        tmp_path / "m",
        corpus,
        store={"backend": "milvus", "milvus_uri": milvus_uri, "milvus_collection": "t_alike"},
    )
    services = []
    for settings in (faiss, milvus):
        _index(settings)
        services.append(_service(settings))
    for question in [
        "At what altitude was the drone?",
        "Where did the ceasefire talks stall?",
        "What happened to prices?",
        "Who filmed the convoy in Aleppo?",
    ]:
        a, b = (s.search(question) for s in services)
        assert a is not None and b is not None
        assert [h.chunk_id for h in a.hits] == [h.chunk_id for h in b.hits]
        np.testing.assert_allclose([h.score for h in a.hits], [h.score for h in b.hits], atol=1e-5)
        assert a.answerable == b.answerable
        assert _same(services[0].ask(question), services[1].ask(question))


@pytest.mark.model
class RecordedEmbedder:
    """The real model's vectors of a FAISS generation, replayed by text: another store built
    with it holds exactly the vectors the FAISS index holds, without embedding the seeds again
    (a text the generation does not hold fails the test)."""

    def __init__(self, view: IndexView, model_id: str) -> None:
        ids = list(range(view.n_chunks))
        chunks = view.chunks(ids)
        titles = {s.meta.id: s.meta.title for s in view.sources()}
        vectors = view.vectors_of(ids)
        self._by_text = {
            embedding_text(titles[chunks[i].article_id], chunks[i].text): vectors[i] for i in ids
        }
        self.model_id = model_id
        self.dimension = int(vectors.shape[1])

    def embed(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        if progress is not None:
            progress(len(texts))
        return np.stack([self._by_text[t] for t in texts]).astype(np.float32)


#: How many held-out questions at most both stores are asked for the same answers.
ASKED_ALIKE = 1200


def test_the_seeds_are_answered_alike_on_milvus(seeds_service: QAService, milvus_uri: str) -> None:
    """With the real model's vectors, the held-out questions get the same answers from both
    stores."""
    import json

    from .conftest import REPO

    recorded = RecordedEmbedder(seeds_service.snapshot(), seeds_service.embedder.model_id)
    base = seeds_service.settings
    milvus = QAService(
        base.model_copy(
            update={
                "store": base.store.model_copy(
                    update={
                        "backend": "milvus",
                        "milvus_uri": milvus_uri,
                        "milvus_collection": "t_seeds_real",
                    }
                )
            }
        ),
        embedder=recorded,
        query_embedder=seeds_service.query_embedder,
    )
    # Built with the vectors the model gave the FAISS index (an index refreshed later embeds
    # with the ONNX export, whose cosines differ in the fourth decimal).
    update_index(milvus.settings, recorded)
    lines = (REPO / "tests" / "heldout_questions.jsonl").read_text().splitlines()
    # Every sixth question, and no more than ASKED_ALIKE spread over the file: the file grows
    # by each round's sets, and this test's time (two stores, every question) grew with it.
    for line in lines[:: max(6, -(-len(lines) // ASKED_ALIKE))]:
        question = json.loads(line)["question"]
        assert _same(milvus.ask(question), seeds_service.ask(question)), question


def _same(a: Answer, b: Answer) -> bool:
    """The same answer: text, notes and quotes; scores equal to float rounding (the engine
    sums the cosine's products in another order)."""
    quotes = [[(c.article.path, c.start, c.end, c.quote) for c in x.citations] for x in (a, b)]
    scores = [[c.score for c in x.citations] for x in (a, b)]
    return (
        (a.answered, a.text, a.notes) == (b.answered, b.text, b.notes)
        and quotes[0] == quotes[1]
        and np.allclose(scores[0], scores[1], atol=1e-5)
    )
