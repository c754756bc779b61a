"""Dense vector index: FAISS behind one small class whose type follows the corpus size.

Vectors are L2-normalized float32, so the inner product FAISS computes *is* the cosine
similarity; every index here uses inner product and every score returned is a cosine.

Up to ``RetrievalSettings.exact_search_limit`` vectors the index is exact (``IndexFlatIP``);
beyond it, an approximate one: HNSW (``IndexHNSWFlat``) or IVF (``IndexIVFFlat``), as
``RetrievalSettings.ann`` says. Search-time knobs (HNSW ``efSearch``, IVF ``nprobe``) are not
part of the file: they come from the settings at build and load time, so they can be tuned
without a rebuild.

Ids are row numbers of the array given to :meth:`VectorIndex.build`. This module never reads
chunks or manifests; the caller keeps the row -> chunk mapping.
FAISS is imported where it is used: its OpenMP runtime reads ``OMP_WAIT_POLICY`` once, when
loaded, after the entry point has set it (:func:`qa_bot.runtime.prepare_process`).
"""

from __future__ import annotations

import contextlib
import math
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Literal

import numpy as np

from qa_bot.errors import IndexCorruptError, IndexMismatchError, IndexMissingError, IndexWriteError

if TYPE_CHECKING:
    import faiss

    from qa_bot.settings import RetrievalSettings

Kind = Literal["flat", "hnsw", "ivf"]

#: HNSW graph quality at build time: candidates kept while linking a new vector. Higher means
#: better recall at a given efSearch and a slower build; 200 is where recall stopped rising
#: (benchmarks/README.md, "Vector index at scale").
EF_CONSTRUCTION = 200

#: Below this many queries a flat search runs on one thread: FAISS's multi-threaded scan of a
#: single query was several times slower than the single-threaded one on few cores
#: (benchmarks/README.md, "Vector index at scale"), and approximate indexes only parallelize
#: over queries anyway.
SINGLE_THREAD_BELOW = 20

#: IVF k-means: training points per list. FAISS warns below 39; more costs training time.
IVF_TRAIN_POINTS_PER_LIST = 64
#: Lists per sqrt(N): nlist = 4 * sqrt(N) keeps a list at ~sqrt(N)/4 vectors.
IVF_LISTS_PER_SQRT_N = 4
#: Below this many vectors per list k-means is pointless; small corpora get fewer lists.
IVF_MIN_POINTS_PER_LIST = 39

_SEED = 1234


class VectorIndex:
    """A FAISS inner-product index over L2-normalized vectors.

    Build with :meth:`build`, reopen with :meth:`load`; the constructor wraps an index that
    already exists and is mostly for those two.
    """

    def __init__(self, index: faiss.Index) -> None:
        self._index = index
        self._kind = _kind_of(index)

    # -- construction -------------------------------------------------------------------------

    @classmethod
    def build(cls, vectors: np.ndarray, settings: RetrievalSettings) -> VectorIndex:
        """Index ``vectors`` (one L2-normalized row per chunk); ids are their row numbers.

        Args:
            vectors: float array of shape (N, dimension); N may be 0.
            settings: picks the type: flat up to ``exact_search_limit`` vectors, else
                ``ann`` ("hnsw" or "ivf") with ``hnsw_m`` / ``hnsw_ef_search`` /
                ``ivf_nprobe``.

        Building uses every core this process may run on, then restores FAISS's thread count.

        Raises:
            ValueError: ``vectors`` is not a 2-D array or holds NaN/inf.
        """
        import faiss

        data = _as_matrix(vectors, "vectors")
        if not _all_finite(data):
            raise ValueError("vectors hold NaN or infinite values; embed them again")
        n, dim = data.shape
        if dim == 0:
            raise ValueError("vectors have dimension 0")
        with _threads(_available_cores()):
            if n <= settings.exact_search_limit:
                index: faiss.Index = faiss.IndexFlatIP(dim)
            elif settings.ann == "hnsw":
                index = faiss.IndexHNSWFlat(dim, settings.hnsw_m, faiss.METRIC_INNER_PRODUCT)
                index.hnsw.efConstruction = ef_construction(settings.hnsw_m)
            else:
                index = _train_ivf(data, ivf_nlist(n))
            if n:
                index.add(data)
        result = cls(index)
        result.configure(settings)
        return result

    @classmethod
    def load(
        cls,
        path: Path,
        settings: RetrievalSettings,
        *,
        dimension: int | None = None,
        mmap: bool = False,
    ) -> VectorIndex:
        """Read an index written by :meth:`save` and apply the search knobs of ``settings``.

        Args:
            path: the index file.
            settings: ``hnsw_ef_search`` and ``ivf_nprobe`` are applied.
            dimension: when given, the index must hold vectors of this dimension.
            mmap: map a flat index's vectors from the file instead of reading them into memory
                (``IO_FLAG_MMAP_IFC``): loading is instant and the page cache is shared between
                processes. Ignored for HNSW and IVF, whose mapped reads FAISS does not check
                against the file's size.

        Raises:
            IndexMissingError: no file at ``path``.
            IndexCorruptError: the file is truncated, garbage, or not an index of this module.
            IndexMismatchError: the index's dimension is not ``dimension``.
        """
        import faiss

        path = Path(path)
        if not path.is_file():
            raise IndexMissingError(f"{path}: no vector index here; build the index first")
        try:
            index = faiss.read_index(str(path), _read_flags(path, mmap))
        except (RuntimeError, MemoryError) as exc:
            raise IndexCorruptError(
                f"{path}: the vector index file is truncated or corrupted "
                f"({_faiss_reason(exc)}); rebuild the index"
            ) from exc
        try:
            result = cls(index)
        except ValueError as exc:
            raise IndexCorruptError(f"{path}: {exc}; rebuild the index") from exc
        if dimension is not None and result.dimension != dimension:
            raise IndexMismatchError(
                f"{path}: the vector index holds {result.dimension}-dimensional vectors but "
                f"the embedding model makes {dimension}-dimensional ones; rebuild the index"
            )
        result.configure(settings)
        return result

    def configure(self, settings: RetrievalSettings) -> None:
        """Apply the search-time knobs (HNSW ``efSearch``, IVF ``nprobe``) of ``settings``."""
        if self._kind == "hnsw":
            self._index.hnsw.efSearch = settings.hnsw_ef_search
        elif self._kind == "ivf":
            self._index.nprobe = min(settings.ivf_nprobe, self._index.nlist)

    # -- properties ---------------------------------------------------------------------------

    @property
    def kind(self) -> Kind:
        return self._kind

    @property
    def ntotal(self) -> int:
        return int(self._index.ntotal)

    @property
    def dimension(self) -> int:
        return int(self._index.d)

    @property
    def faiss_index(self) -> faiss.Index:
        """The wrapped FAISS index, for benchmarks and diagnostics."""
        return self._index

    def __len__(self) -> int:
        return self.ntotal

    def __repr__(self) -> str:
        return f"VectorIndex(kind={self.kind!r}, ntotal={self.ntotal}, dimension={self.dimension})"

    # -- search -------------------------------------------------------------------------------

    def search(
        self, queries: np.ndarray, k: int, *, allowed: np.ndarray | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` most similar vectors to each query, best first.

        Args:
            queries: L2-normalized float array of shape (Q, dimension), or one query of shape
                (dimension,), treated as Q = 1.
            k: how many neighbours per query; at most ``ntotal`` are returned.
            allowed: when given, only these row numbers may be returned (a search filtered
                by outlet or date). FAISS skips the other rows while it searches, so a large
                allowed set costs no copy of its vectors; with a small one an approximate
                index may find fewer than ``k`` (the caller searches a small set exactly).

        Returns:
            ``(scores, ids)``, both of shape (Q, min(k, ntotal)): cosine similarities (float32)
            and row numbers (int64). An approximate index can find fewer than asked for
            (an IVF probe over lists holding too few vectors, rarely HNSW); such slots hold
            id -1 and score -inf, always after the real hits. An empty index returns arrays
            of shape (Q, 0).

        Raises:
            IndexMismatchError: the queries' dimension is not the index's.
            ValueError: ``k`` < 1 or ``queries`` is not a 1-D or 2-D array.
        """
        if k < 1:
            raise ValueError(f"k must be at least 1, got {k}")
        q = np.asarray(queries)
        if q.ndim == 1:
            q = q.reshape(1, -1)
        q = _as_matrix(q, "queries")
        if q.shape[1] != self.dimension:
            raise IndexMismatchError(
                f"the query vectors have dimension {q.shape[1]} but the index holds "
                f"{self.dimension}-dimensional vectors: the index was built with another "
                "embedding model; rebuild the index"
            )
        k = min(k, self.ntotal)
        if k == 0 or q.shape[0] == 0:
            return np.empty((q.shape[0], k), np.float32), np.empty((q.shape[0], k), np.int64)
        small = q.shape[0] == 1 or (self._kind == "flat" and q.shape[0] < SINGLE_THREAD_BELOW)
        # omp_set_num_threads is per calling thread, so this does not affect other searches.
        params, keep_alive = self._restricted(allowed)
        with _threads(1) if small else contextlib.nullcontext():
            scores, ids = self._index.search(q, k, params=params)
        del keep_alive
        missing = ids < 0
        if missing.any():
            scores[missing] = -np.inf
        return scores, ids

    def stored_vectors(self) -> np.ndarray | None:
        """The indexed vectors as a read-only (ntotal, dimension) array, without a copy.

        Flat and HNSW indexes keep every vector whole, in row order, so the index file can
        be the only copy on disk; IVF keeps them in per-list storage (None: store them apart).
        The array points into the index's memory: it keeps this object alive.
        """
        import faiss

        if self._kind == "ivf":
            return None
        storage = self._index if self._kind == "flat" else faiss.downcast_index(self._index.storage)
        n, d = self.ntotal, self.dimension
        if n == 0:
            return np.zeros((0, d), dtype=np.float32)
        raw = faiss.rev_swig_ptr(storage.get_xb(), n * d).reshape(n, d)
        view = raw.view(_OwnedArray)
        view.owner = self
        view.flags.writeable = False
        return view

    def _restricted(
        self, allowed: np.ndarray | None
    ) -> tuple[faiss.SearchParameters | None, object]:
        """Search parameters that admit only ``allowed`` rows, and the selector they point to:
        FAISS holds a bare pointer, so the caller keeps the selector alive during the search."""
        import faiss

        if allowed is None:
            return None, None
        ids = np.ascontiguousarray(allowed, dtype=np.int64)
        selector = faiss.IDSelectorBatch(len(ids), faiss.swig_ptr(ids))
        params: faiss.SearchParameters
        if self._kind == "hnsw":
            params = faiss.SearchParametersHNSW()
            params.efSearch = int(self._index.hnsw.efSearch)
        elif self._kind == "ivf":
            params = faiss.SearchParametersIVF()
            params.nprobe = int(self._index.nprobe)
        else:
            params = faiss.SearchParameters()
        params.sel = selector
        return params, (selector, ids)

    # -- persistence --------------------------------------------------------------------------

    def save(self, path: Path) -> None:
        """Write the index to ``path`` atomically: readers see the old file or the new one.

        The index is written to a temporary file in the same folder, flushed to disk, and
        renamed over ``path``; the folder is then synced so the rename survives a crash.

        Raises:
            IndexWriteError: the folder is missing or read-only, or the disk is full; any
                previous file at ``path`` is left intact.
        """
        import faiss

        path = Path(path)
        folder = path.parent
        tmp: Path | None = None
        try:
            fd, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=folder)
            os.close(fd)
            tmp = Path(name)
            faiss.write_index(self._index, str(tmp))
            with open(tmp, "rb+") as fh:
                os.fsync(fh.fileno())
            os.replace(tmp, path)
            tmp = None
            _fsync_dir(folder)
        except (OSError, RuntimeError) as exc:
            raise IndexWriteError(
                f"{path}: could not write the vector index ({_faiss_reason(exc)}); "
                "the previous index, if any, is intact"
            ) from exc
        finally:
            if tmp is not None:
                with contextlib.suppress(OSError):
                    tmp.unlink()


# -- sizing rules -----------------------------------------------------------------------------


class _OwnedArray(np.ndarray):
    """A view into memory FAISS owns, holding the index that owns it: slices of it keep it
    alive through their ``base``, so the memory cannot be freed under them."""

    owner: object = None


def ef_construction(m: int) -> int:
    """HNSW build-time beam width for ``M`` links per node."""
    return max(EF_CONSTRUCTION, 2 * m)


def ivf_nlist(n: int) -> int:
    """IVF list count for ``n`` vectors: 4*sqrt(n), with at least 39 vectors per list."""
    by_size = IVF_LISTS_PER_SQRT_N * math.isqrt(n)
    return max(1, min(by_size, n // IVF_MIN_POINTS_PER_LIST))


# -- helpers ----------------------------------------------------------------------------------


def _train_ivf(data: np.ndarray, nlist: int) -> faiss.Index:
    """An IVF-flat inner-product index whose k-means ran on a random sample of ``data``."""
    import faiss

    dim = data.shape[1]
    quantizer = faiss.IndexFlatIP(dim)
    index = faiss.IndexIVFFlat(quantizer, dim, nlist, faiss.METRIC_INNER_PRODUCT)
    index.cp.spherical = True  # centroids on the unit sphere, like the data (FAISS's default)
    index.cp.seed = _SEED
    sample_size = min(len(data), nlist * IVF_TRAIN_POINTS_PER_LIST)
    if sample_size < len(data):
        rng = np.random.default_rng(_SEED)
        rows = np.sort(rng.choice(len(data), size=sample_size, replace=False))
        sample = data[rows]
    else:
        sample = data
    index.train(sample)
    return index  # FAISS's wrapper keeps ``quantizer`` alive as long as ``index``


def _kind_of(index: faiss.Index) -> Kind:
    """Name the index's type, refusing types and metrics this module never writes."""
    import faiss

    if isinstance(index, faiss.IndexFlat):
        kind: Kind = "flat"
    elif isinstance(index, faiss.IndexHNSWFlat):
        kind = "hnsw"
    elif isinstance(index, faiss.IndexIVFFlat):
        kind = "ivf"
    else:
        raise ValueError(f"unexpected FAISS index type {type(index).__name__}")
    if index.metric_type != faiss.METRIC_INNER_PRODUCT:
        raise ValueError("the vector index does not use inner product")
    return kind


def _as_matrix(array: np.ndarray, what: str) -> np.ndarray:
    """A C-contiguous float32 2-D view or copy of ``array``."""
    matrix = np.asarray(array)
    if matrix.ndim != 2:
        raise ValueError(f"{what} must be a 2-D array, got shape {matrix.shape}")
    if matrix.dtype.kind not in "fiu":
        raise ValueError(f"{what} must be numeric, got dtype {matrix.dtype}")
    return np.ascontiguousarray(matrix, dtype=np.float32)


def _all_finite(matrix: np.ndarray, rows: int = 65_536) -> bool:
    """Whether every value is finite, checked by blocks to keep the temporary arrays small."""
    return all(np.isfinite(matrix[i : i + rows]).all() for i in range(0, len(matrix), rows))


def _read_flags(path: Path, mmap: bool) -> int:
    """``IO_FLAG_MMAP_IFC`` for a flat index when asked, else 0 (read into memory)."""
    import faiss

    if not mmap:
        return 0
    with open(path, "rb") as fh:
        fourcc = fh.read(4)
    # Only flat indexes ("IxFI" for inner product): FAISS checks their mapped size.
    return faiss.IO_FLAG_MMAP_IFC if fourcc == b"IxFI" else 0


def _faiss_reason(exc: BaseException) -> str:
    """The last line of a FAISS error ("Error: 'ret == (size)' failed: read error"), short."""
    text = str(exc).strip()
    line = text.splitlines()[-1] if text else type(exc).__name__
    return line[:200]


def _available_cores() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


@contextlib.contextmanager
def _threads(count: int) -> Iterator[None]:
    """Run FAISS with ``count`` OpenMP threads, then restore the previous count."""
    import faiss

    previous = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(count)
    try:
        yield
    finally:
        faiss.omp_set_num_threads(previous)


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # pragma: no cover - e.g. Windows cannot open folders
        return
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
