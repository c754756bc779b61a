"""VectorIndex: exact search against a numpy reference, ANN recall, persistence and errors."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import faiss
import numpy as np
import pytest

from qa_bot.errors import (
    IndexCorruptError,
    IndexMismatchError,
    IndexMissingError,
    IndexWriteError,
)
from qa_bot.settings import RetrievalSettings
from qa_bot.vector_index import VectorIndex


def unit_rows(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def random_unit(n: int, dim: int, seed: int = 0) -> np.ndarray:
    return unit_rows(np.random.default_rng(seed).standard_normal((n, dim)))


def clustered(n: int, dim: int, n_queries: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors around 200 centres, and queries that are perturbed data points.

    Random unit vectors would be a pathological case for approximate search (all nearly
    equidistant); clusters give neighbours that mean something, as real embeddings do.
    """
    rng = np.random.default_rng(seed)
    centres = unit_rows(rng.standard_normal((200, dim)))
    labels = rng.integers(len(centres), size=n)
    data = unit_rows(centres[labels] + rng.standard_normal((n, dim)) / np.sqrt(dim))
    sources = rng.choice(n, size=n_queries, replace=False)
    noise = 0.5 * rng.standard_normal((n_queries, dim)) / np.sqrt(dim)
    return data, unit_rows(data[sources] + noise)


def brute_force(data: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    sims = queries @ data.T
    ids = np.argsort(-sims, axis=1, kind="stable")[:, :k]
    return np.take_along_axis(sims, ids, axis=1), ids


def recall_at_k(found: np.ndarray, truth: np.ndarray) -> float:
    hits = sum(len(set(f) & set(t)) for f, t in zip(found, truth, strict=True))
    return hits / truth.size


EXACT = RetrievalSettings(exact_search_limit=1_000_000)
HNSW = RetrievalSettings(exact_search_limit=0, ann="hnsw")
IVF = RetrievalSettings(exact_search_limit=0, ann="ivf")


@pytest.fixture(scope="module")
def clustered_20k() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    # Hard enough to matter: efSearch 16 or nprobe 4 fall below 0.95 on this data.
    data, queries = clustered(20_000, 32, 200)
    _, truth = brute_force(data, queries, 10)
    return data, queries, truth


@pytest.fixture(scope="module")
def index_20k(
    clustered_20k: tuple[np.ndarray, np.ndarray, np.ndarray],
) -> Callable[[RetrievalSettings], VectorIndex]:
    """The index of ``clustered_20k`` for given settings, built once for the module (searching
    does not change it)."""
    built: dict[str, VectorIndex] = {}

    def index(settings: RetrievalSettings) -> VectorIndex:
        key = settings.model_dump_json()
        if key not in built:
            built[key] = VectorIndex.build(clustered_20k[0], settings)
        return built[key]

    return index


# -- search -----------------------------------------------------------------------------------


def test_flat_search_matches_numpy_brute_force() -> None:
    data = random_unit(2_000, 48, seed=1)
    queries = random_unit(30, 48, seed=2)
    index = VectorIndex.build(data, EXACT)
    scores, ids = index.search(queries, 10)
    ref_scores, ref_ids = brute_force(data, queries, 10)
    assert index.kind == "flat"
    assert ids.dtype == np.int64 and scores.dtype == np.float32
    np.testing.assert_array_equal(ids, ref_ids)
    np.testing.assert_allclose(scores, ref_scores, atol=1e-5)
    assert np.all(np.diff(scores, axis=1) <= 0), "best first"


def test_single_query_as_a_vector() -> None:
    data = random_unit(100, 16)
    index = VectorIndex.build(data, EXACT)
    scores, ids = index.search(data[7], 3)
    assert ids.shape == (1, 3) and ids[0, 0] == 7
    assert scores[0, 0] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(("settings", "kind"), [(HNSW, "hnsw"), (IVF, "ivf")])
def test_approximate_recall_at_10(
    clustered_20k: tuple[np.ndarray, np.ndarray, np.ndarray],
    index_20k: Callable[[RetrievalSettings], VectorIndex],
    settings: RetrievalSettings,
    kind: str,
) -> None:
    data, queries, truth = clustered_20k
    index = index_20k(settings)
    assert index.kind == kind and index.ntotal == len(data)
    _, found = index.search(queries, 10)
    assert recall_at_k(found, truth) >= 0.95


@pytest.mark.parametrize(("settings", "floor"), [(EXACT, 1.0), (HNSW, 0.95), (IVF, 0.95)])
def test_search_restricted_to_allowed_rows(
    clustered_20k: tuple[np.ndarray, np.ndarray, np.ndarray],
    index_20k: Callable[[RetrievalSettings], VectorIndex],
    settings: RetrievalSettings,
    floor: float,
) -> None:
    """A filtered search (one outlet, a date range) only returns allowed rows, and finds the
    same neighbours as an exact search over those rows alone."""
    data, queries, _ = clustered_20k
    allowed = np.flatnonzero(np.random.default_rng(3).uniform(size=len(data)) < 0.3)
    index = index_20k(settings)
    _, found = index.search(queries, 10, allowed=allowed)
    real = found[found >= 0]
    assert np.isin(real, allowed).all()
    _, sub = brute_force(data[allowed], queries, 10)
    truth = allowed[sub]
    assert recall_at_k(found, truth) >= floor
    if floor == 1.0:
        np.testing.assert_array_equal(found, truth)
    unrestricted = index.search(queries, 10)[1]
    assert not np.isin(unrestricted, allowed).all(), "the restriction must change something"


def test_search_restricted_to_no_rows_finds_nothing() -> None:
    index = VectorIndex.build(random_unit(50, 8), EXACT)
    scores, ids = index.search(random_unit(2, 8, seed=5), 5, allowed=np.zeros(0, np.int64))
    assert (ids == -1).all() and np.isneginf(scores).all()


@pytest.mark.parametrize(
    ("n", "limit", "ann", "kind"),
    [
        (100, 100, "hnsw", "flat"),
        (101, 100, "hnsw", "hnsw"),
        (101, 100, "ivf", "ivf"),
        (0, 0, "hnsw", "flat"),
    ],
)
def test_type_follows_size(n: int, limit: int, ann: str, kind: str) -> None:
    settings = RetrievalSettings(exact_search_limit=limit, ann=ann)
    index = VectorIndex.build(random_unit(n, 8) if n else np.zeros((0, 8)), settings)
    assert (index.kind, index.ntotal, index.dimension) == (kind, n, 8)


def test_k_above_ntotal_is_clipped() -> None:
    index = VectorIndex.build(random_unit(5, 8), EXACT)
    scores, ids = index.search(random_unit(2, 8, seed=3), 10)
    assert ids.shape == scores.shape == (2, 5)
    assert sorted(ids[0]) == [0, 1, 2, 3, 4]


def test_missing_neighbours_are_minus_one_after_the_hits() -> None:
    # 200 vectors in 5 IVF lists, probing one: fewer than k vectors can be reached.
    settings = RetrievalSettings(exact_search_limit=0, ann="ivf", ivf_nprobe=1)
    index = VectorIndex.build(random_unit(200, 16), settings)
    scores, ids = index.search(random_unit(4, 16, seed=5), 150)
    assert ids.shape == (4, 150)
    for row_ids, row_scores in zip(ids, scores, strict=True):
        found = row_ids >= 0
        assert not found.all()
        assert found[: found.sum()].all(), "-1 slots come after the real hits"
        assert np.isneginf(row_scores[~found]).all()


def test_empty_index_returns_nothing() -> None:
    index = VectorIndex.build(np.zeros((0, 16), np.float32), EXACT)
    scores, ids = index.search(random_unit(3, 16), 5)
    assert ids.shape == scores.shape == (3, 0)
    assert index.ntotal == 0 and len(index) == 0


@pytest.mark.parametrize("settings", [EXACT, HNSW, IVF], ids=["flat", "hnsw", "ivf"])
def test_query_dimension_mismatch_is_a_clear_error(settings: RetrievalSettings) -> None:
    index = VectorIndex.build(random_unit(300, 16), settings)
    with pytest.raises(IndexMismatchError, match=r"dimension 32 .* 16-dimensional"):
        index.search(random_unit(1, 32), 3)


@pytest.mark.parametrize(
    ("queries", "k", "message"),
    [
        (np.zeros((1, 8), np.float32), 0, "k must be at least 1"),
        (np.zeros((1, 1, 8), np.float32), 3, "2-D array"),
        (np.array([["a"] * 8]), 3, "numeric"),
    ],
)
def test_bad_search_arguments(queries: np.ndarray, k: int, message: str) -> None:
    index = VectorIndex.build(random_unit(10, 8), EXACT)
    with pytest.raises(ValueError, match=message):
        index.search(queries, k)


def test_non_finite_vectors_are_refused() -> None:
    data = random_unit(10, 8)
    data[3, 2] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        VectorIndex.build(data, EXACT)


def test_thread_count_is_restored() -> None:
    before = faiss.omp_get_max_threads()
    index = VectorIndex.build(random_unit(300, 8), HNSW)
    index.search(random_unit(1, 8), 3)
    assert faiss.omp_get_max_threads() == before


# -- persistence ------------------------------------------------------------------------------


@pytest.mark.parametrize("settings", [EXACT, HNSW, IVF], ids=["flat", "hnsw", "ivf"])
def test_save_load_round_trip(tmp_path: Path, settings: RetrievalSettings) -> None:
    data = random_unit(2_000, 32)
    queries = random_unit(20, 32, seed=9)
    index = VectorIndex.build(data, settings)
    path = tmp_path / "vectors.faiss"
    index.save(path)
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.faiss"], "no temporary file left"

    loaded = VectorIndex.load(path, settings, dimension=32)
    assert (loaded.kind, loaded.ntotal, loaded.dimension) == (
        index.kind,
        index.ntotal,
        index.dimension,
    )
    for got, want in zip(loaded.search(queries, 10), index.search(queries, 10), strict=True):
        np.testing.assert_array_equal(got, want)


def test_load_applies_search_settings(tmp_path: Path) -> None:
    data = random_unit(2_000, 16)
    VectorIndex.build(data, HNSW).save(tmp_path / "h.faiss")
    VectorIndex.build(data, IVF).save(tmp_path / "i.faiss")
    hnsw = VectorIndex.load(tmp_path / "h.faiss", HNSW.model_copy(update={"hnsw_ef_search": 77}))
    ivf = VectorIndex.load(tmp_path / "i.faiss", IVF.model_copy(update={"ivf_nprobe": 5}))
    assert hnsw.faiss_index.hnsw.efSearch == 77
    assert ivf.faiss_index.nprobe == 5


def test_flat_index_can_be_memory_mapped(tmp_path: Path) -> None:
    data = random_unit(1_000, 32)
    path = tmp_path / "flat.faiss"
    VectorIndex.build(data, EXACT).save(path)
    mapped = VectorIndex.load(path, EXACT, mmap=True)
    _, ids = mapped.search(data[:5], 1)
    assert ids[:, 0].tolist() == [0, 1, 2, 3, 4]


def test_empty_index_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "empty.faiss"
    VectorIndex.build(np.zeros((0, 8), np.float32), EXACT).save(path)
    loaded = VectorIndex.load(path, EXACT)
    assert loaded.ntotal == 0
    assert loaded.search(random_unit(1, 8), 3)[1].shape == (1, 0)


def test_save_replaces_atomically(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "vectors.faiss"
    VectorIndex.build(random_unit(10, 8), EXACT).save(path)
    before = path.read_bytes()

    def disk_full(index: object, name: str) -> None:
        Path(name).write_bytes(b"partial")
        raise RuntimeError("Error in write_index: No space left on device")

    monkeypatch.setattr(faiss, "write_index", disk_full)
    with pytest.raises(IndexWriteError, match="previous index, if any, is intact"):
        VectorIndex.build(random_unit(20, 8), EXACT).save(path)
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["vectors.faiss"]


def test_save_into_missing_folder(tmp_path: Path) -> None:
    with pytest.raises(IndexWriteError):
        VectorIndex.build(random_unit(10, 8), EXACT).save(tmp_path / "nope" / "v.faiss")


@pytest.mark.parametrize("settings", [EXACT, HNSW, IVF], ids=["flat", "hnsw", "ivf"])
@pytest.mark.parametrize("keep", [0.0, 0.001, 0.5, 0.999])
def test_truncated_file_is_corrupt(
    tmp_path: Path, settings: RetrievalSettings, keep: float
) -> None:
    path = tmp_path / "vectors.faiss"
    VectorIndex.build(random_unit(500, 16), settings).save(path)
    data = path.read_bytes()
    path.write_bytes(data[: int(len(data) * keep)])
    for mmap in (False, True):
        with pytest.raises(IndexCorruptError, match=r"truncated or corrupted.*rebuild"):
            VectorIndex.load(path, settings, mmap=mmap)


@pytest.mark.parametrize(
    "content",
    [
        np.random.default_rng(0).bytes(10_000),
        b"IxFI" + np.random.default_rng(1).bytes(10_000),  # a flat index's magic, then noise
        b"not an index\n" * 100,
    ],
    ids=["random", "magic-then-noise", "text"],
)
def test_garbage_file_is_corrupt(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "vectors.faiss"
    path.write_bytes(content)
    with pytest.raises(IndexCorruptError, match=str(path)):
        VectorIndex.load(path, EXACT)


def test_foreign_index_type_is_corrupt(tmp_path: Path) -> None:
    path = tmp_path / "l2.faiss"
    faiss.write_index(faiss.IndexFlatL2(8), str(path))
    with pytest.raises(IndexCorruptError, match="inner product"):
        VectorIndex.load(path, EXACT)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(IndexMissingError, match="build the index"):
        VectorIndex.load(tmp_path / "absent.faiss", EXACT)


def test_load_checks_the_expected_dimension(tmp_path: Path) -> None:
    path = tmp_path / "vectors.faiss"
    VectorIndex.build(random_unit(10, 8), EXACT).save(path)
    with pytest.raises(IndexMismatchError, match=r"8-dimensional .* 384-dimensional"):
        VectorIndex.load(path, EXACT, dimension=384)
