"""The query adapter: its file, which model it applies to, and the passages it has the reader
read.

The plumbing runs on tiny corpora with the counting fake, adapters written by the test and a
steered reader; the packaged adapter is checked for what it claims to be, and with the real
model (its quality is in the answer tests).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from qa_bot.cli import app
from qa_bot.query_adapter import AdapterError, QueryAdapter, open_adapter
from qa_bot.ranker import LearnedRanker
from qa_bot.read_stage import reading_positions
from qa_bot.reader import ReaderSpec
from qa_bot.retrieval import Rankers, load_rankers, retrieve
from qa_bot.service import QAService
from qa_bot.settings import PACKAGED_ADAPTER, RetrievalSettings, load_settings

from .conftest import CountingEmbedder, make_settings, write_article
from .test_reader import SteeredReader, _answer, _weights

DIM = 64


def _write(path: Path, matrix: np.ndarray, model_id: str = "counting-fake") -> Path:
    QueryAdapter(model_id, matrix, {"script": "test"}).save(path)
    return path


def _swap(dimension: int, a: int, b: int) -> np.ndarray:
    """The map that, added to the identity, swaps two coordinates of a question's vector."""
    perm = np.eye(dimension, dtype=np.float32)
    perm[[a, b]] = perm[[b, a]]
    return perm - np.eye(dimension, dtype=np.float32)


def test_a_saved_adapter_loads_as_written_and_keeps_vectors_unit_length(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    matrix = rng.normal(0, 0.05, (DIM, DIM)).astype(np.float32)
    loaded = QueryAdapter.load(_write(tmp_path / "a.npz", matrix))
    assert loaded.model_id == "counting-fake" and loaded.provenance == {"script": "test"}
    np.testing.assert_allclose(loaded.matrix, matrix, atol=1e-3)  # stored in half precision
    vectors = rng.normal(size=(3, DIM)).astype(np.float32)
    moved = loaded.apply(vectors)
    np.testing.assert_allclose(np.linalg.norm(moved, axis=1), 1.0, rtol=1e-5)
    expected = vectors + vectors @ loaded.matrix
    expected /= np.linalg.norm(expected, axis=1, keepdims=True)
    np.testing.assert_allclose(moved, expected, rtol=1e-5, atol=1e-6)


def test_an_adapter_applies_only_to_its_own_model_and_size(tmp_path: Path) -> None:
    path = _write(tmp_path / "a.npz", np.zeros((DIM, DIM), dtype=np.float32))
    assert open_adapter(None, "counting-fake", DIM) is None
    assert open_adapter(path, "counting-fake", DIM) is not None
    assert open_adapter(path, "/models/counting-fake", DIM) is not None  # named by a path
    assert open_adapter(path, "other-model", DIM) is None
    assert open_adapter(path, "counting-fake", DIM * 2) is None


@pytest.mark.parametrize(
    ("content", "says"),
    [(None, "No such file"), (b"not a numpy archive", "cannot read"), ("flat", "not a square")],
)
def test_an_unreadable_adapter_is_refused_with_the_setting_to_change(
    tmp_path: Path, content: object, says: str
) -> None:
    path = tmp_path / "adapter.npz"
    if isinstance(content, bytes):
        path.write_bytes(content)
    elif content == "flat":
        _write(path, np.zeros((DIM, DIM + 1), dtype=np.float32))
    with pytest.raises(AdapterError) as caught:
        QueryAdapter.load(path)
    assert says in str(caught.value) and str(path) in str(caught.value)


def test_settings_name_the_packaged_adapter_a_file_or_none(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert load_settings().retrieval.query_adapter == PACKAGED_ADAPTER
    monkeypatch.setenv("QA_BOT_RETRIEVAL__QUERY_ADAPTER", "none")
    assert load_settings().retrieval.query_adapter is None
    monkeypatch.setenv("QA_BOT_RETRIEVAL__QUERY_ADAPTER", "packaged")
    assert load_settings().retrieval.query_adapter == PACKAGED_ADAPTER
    monkeypatch.setenv("QA_BOT_RETRIEVAL__QUERY_ADAPTER", str(tmp_path / "mine.npz"))
    assert load_settings().retrieval.query_adapter == tmp_path / "mine.npz"


def test_the_packaged_adapter_is_for_the_packaged_model() -> None:
    adapter = QueryAdapter.load(PACKAGED_ADAPTER)
    assert adapter.matrix.shape == (384, 384)
    assert adapter.fits(LearnedRanker.load().model_id)  # the packaged model's id
    assert adapter.provenance["script"] == "training/train_adapter.py"
    assert np.abs(adapter.matrix).max() > 0  # trained, not the identity


TEXTS = [
    "A drone flew over the convoy at dawn, officials said.",
    "The convoy left the city at noon with 31 trucks.",
    "Troops guarded the convoy near the air base at Incirlik.",
    "The convoy carried flour and medicine for the city.",
]
QUESTION = "what was near the convoy"


def _service(tmp_path: Path, depth: int, reads: int, **more: object) -> QAService:
    """The learned stages over four passages, reading ``depth`` of them plus ``reads`` (and
    ``more`` retrieval settings)."""
    seeds = tmp_path / "seeds"
    for i, text in enumerate(TEXTS):
        write_article(seeds, f"{i}.txt", f"Convoy report {i}", text)
    path = tmp_path / "r.json"
    path.write_text(_weights("counting-fake", 3.0).to_json(), encoding="utf-8")
    retrieval = {"ranker_path": path, "reader_depth": depth, "adapter_reads": reads, **more}
    settings = make_settings(tmp_path, seeds, retrieval=retrieval)
    service = QAService(settings, embedder=CountingEmbedder())
    service.index()
    return service


def _towards(service: QAService, word: str) -> QueryAdapter:
    """An adapter that moves the question onto the passage holding ``word``."""
    snapshot = service.snapshot()
    chunks = snapshot.chunks(list(range(snapshot.n_chunks)))
    target = next(i for i, c in chunks.items() if word in c.text)
    p = snapshot.vectors_of([target])[0]
    q = service.query_embedder.embed([QUESTION])[0]
    return QueryAdapter("counting-fake", np.outer(q, p - q) / float(q @ q))


def _steer(service: QAService, reader: SteeredReader, adapter: QueryAdapter | None) -> None:
    learned = service.rankers.learned
    assert learned is not None
    service.__dict__["rankers"] = Rankers(learned, None, reader, adapter)  # type: ignore[arg-type]


def test_the_reader_also_reads_the_passages_nearest_the_adapted_question(tmp_path: Path) -> None:
    service = _service(tmp_path, depth=1, reads=1)
    plain = service.search(QUESTION)
    assert plain is not None and "Incirlik" not in plain.hits[0].chunk.text
    spec = ReaderSpec("m", 6, 128, 1.0, _answer(0.0))
    without = SteeredReader("Incirlik", spec)
    _steer(service, without, None)
    assert "Incirlik" not in service.search(QUESTION).hits[0].chunk.text  # type: ignore[union-attr]
    assert len(without.passages) == 1
    reader = SteeredReader("Incirlik", spec)
    _steer(service, reader, _towards(service, "Incirlik"))
    found = service.search(QUESTION)
    assert found is not None and "Incirlik" in found.hits[0].chunk.text
    assert len(reader.passages) == 2 and "Incirlik" in reader.passages[1]
    assert {h.chunk_id for h in found.hits} == {h.chunk_id for h in plain.hits}  # none lost


def test_the_adapted_cosine_joins_the_order_as_fitted(tmp_path: Path) -> None:
    """A reader that likes nothing leaves the order to the ranker, unless the spec weighs the
    cosine with the adapted question."""
    service = _service(tmp_path, depth=1, reads=1)
    first = service.search(QUESTION).hits[0].chunk.text  # type: ignore[union-attr]
    word = next(w for w in ("Incirlik", "noon", "dawn") if w not in first)
    adapter = _towards(service, word)
    target = next(t for t in TEXTS if word in t)
    for weight, expected in ((0.0, first), (100.0, target)):
        spec = replace(ReaderSpec("m", 6, 128, 1.0, _answer(0.0)), adapter_weight=weight)
        _steer(service, SteeredReader("nothing", spec), adapter)
        assert service.search(QUESTION).hits[0].chunk.text == expected  # type: ignore[union-attr]


def test_a_reader_spec_keeps_its_adapter_weight(tmp_path: Path) -> None:
    spec = replace(ReaderSpec("m", 6, 128, 1.5, _answer(0.0)), adapter_weight=10.0)
    assert ReaderSpec.from_json(spec.to_json()).adapter_weight == 10.0
    older = {k: v for k, v in spec.to_json().items() if k != "adapter_weight"}
    assert ReaderSpec.from_json(older).adapter_weight == 0.0  # fitted before the adapter


def test_the_real_model_gets_the_packaged_adapter(seeds_service: QAService) -> None:
    rankers = seeds_service.rankers
    assert rankers.adapter is not None and rankers.reader is not None
    assert rankers.adapter.fits(seeds_service.query_embedder.model_id)
    assert rankers.reader.spec.adapter_weight >= 0.0


def test_a_missing_adapter_file_stops_the_cli_with_a_clear_message(
    tmp_path: Path, corpus: Path, fake_model: None, monkeypatch: pytest.MonkeyPatch
) -> None:
    runner = CliRunner()
    opts = ["--seeds", str(corpus), "--index", str(tmp_path / "index")]
    assert runner.invoke(app, [*opts, "index"]).exit_code == 0
    missing = tmp_path / "nowhere.npz"
    monkeypatch.setenv("QA_BOT_RETRIEVAL__QUERY_ADAPTER", str(missing))
    asked = runner.invoke(app, [*opts, "ask", "Where did the ceasefire talks stall?"])
    assert asked.exit_code != 0
    assert str(missing) in asked.output and "QA_BOT_RETRIEVAL__QUERY_ADAPTER" in asked.output


def test_the_adapter_is_loaded_for_its_model_and_only_when_it_has_passages_to_name(
    tmp_path: Path,
) -> None:
    path = _write(tmp_path / "a.npz", np.zeros((DIM, DIM), dtype=np.float32))
    fake = CountingEmbedder(DIM)
    for reads, model, expected in (
        (2, "counting-fake", True),
        (0, "counting-fake", False),
        (2, "other-model", False),
    ):
        settings = RetrievalSettings(query_adapter=path, adapter_reads=reads)
        embedder = CountingEmbedder(DIM, model_id=model) if model != "counting-fake" else fake
        assert (load_rankers(settings, embedder).adapter is not None) is expected
    with pytest.raises(AdapterError):  # a wrong file is reported even when nothing reads it
        load_rankers(RetrievalSettings(query_adapter=tmp_path / "no.npz", adapter_reads=0), fake)


def test_the_reader_reads_the_first_passages_then_the_nearest_of_the_rest() -> None:
    cosines = np.array([0.1, 0.9, 0.2, 0.8, 0.3, 0.8])
    assert reading_positions(cosines, 2, 0) == [0, 1]
    assert reading_positions(cosines, 2, 2) == [0, 1, 3, 5]  # a tie keeps the ranked order
    assert reading_positions(cosines, 2, 9) == [0, 1, 3, 5, 4, 2]
    assert reading_positions(cosines[:1], 3, 2) == [0]


def test_the_adapter_reads_among_all_the_ranker_reorders_not_only_the_hand_limit(
    tmp_path: Path,
) -> None:
    """The adapter was trained over all the first stage's candidates: its reads are picked
    among the ``rerank_depth`` passages the learned stages re-order, even past the ``limit``
    best by hand (fifty-first round)."""
    service = _service(tmp_path, depth=1, reads=1)
    snapshot = service.snapshot()
    qv = service.query_embedder.embed([QUESTION])[0]
    learned = service.rankers.learned
    base = service.settings.retrieval
    alone = base.model_copy(update={"rerank_depth": 1})
    best = retrieve(snapshot, QUESTION, qv, alone, limit=1, rankers=Rankers(learned))
    word = next(
        w for w in ("Incirlik", "noon", "dawn", "flour") if w not in best.hits[0].chunk.text
    )
    spec = ReaderSpec("m", 6, 128, 1.0, _answer(0.0))
    found = {}
    for depth in (1, len(TEXTS)):
        settings = base.model_copy(update={"rerank_depth": depth})
        reader = SteeredReader(word, spec)
        rankers = Rankers(learned, None, reader, _towards(service, word))  # type: ignore[arg-type]
        got = retrieve(snapshot, QUESTION, qv, settings, limit=1, rankers=rankers)
        found[depth] = word in got.hits[0].chunk.text
    assert found == {1: False, len(TEXTS): True}
