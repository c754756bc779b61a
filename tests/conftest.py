"""Shared fixtures: a counting fake embedder, tiny corpora, and the real model loaded once."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import threading
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import numpy as np
import pytest

from qa_bot.chunking import chunk_article
from qa_bot.corpus import parse_article
from qa_bot.embedding import SentenceTransformerEmbedder
from qa_bot.models import ArticleMeta, Chunk
from qa_bot.runtime import prepare_process
from qa_bot.service import QAService
from qa_bot.settings import ChunkingSettings, Settings, load_settings
from qa_bot.text import words

REPO = Path(__file__).resolve().parents[1]
SEEDS = REPO / "seeds"
SHARED = REPO.parent / "shared"
DEV_QUESTIONS = SHARED / "eval" / "dev_questions.jsonl"

os.environ.setdefault("HF_HUB_OFFLINE", "1")
if os.environ.get("PYTEST_XDIST_WORKER"):
    # pytest -n 2: each worker embeds on one thread (torch, ONNX Runtime) instead of two
    # workers' threads fighting over the same cores.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    os.environ.setdefault("QA_BOT_EMBEDDING__THREADS", "1")
prepare_process()  # the test session is an entry point: before FAISS or torch is loaded


class CountingEmbedder:
    """A fast, deterministic stand-in for the model that records every text it embeds.

    Vectors are hashed bags of words, so texts sharing words are similar: enough for the
    plumbing tests, and it lets a test prove which texts were (not) embedded again.
    """

    def __init__(self, dimension: int = 64, model_id: str = "counting-fake"):
        self._dimension = dimension
        self._model_id = model_id
        self.calls: list[list[str]] = []

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def dimension(self) -> int:
        return self._dimension

    @property
    def embedded(self) -> list[str]:
        return [t for call in self.calls for t in call]

    def embed(
        self, texts: Sequence[str], *, progress: Callable[[int], None] | None = None
    ) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self._dimension), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in words(text) or ["<empty>"]:
                h = int.from_bytes(hashlib.blake2b(word.encode(), digest_size=8).digest(), "big")
                out[row, h % self._dimension] += 1.0
        out /= np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)
        if progress is not None:
            progress(len(texts))
        return out


def write_article(folder: Path, name: str, title: str, body: str, date: str = "") -> Path:
    """A tiny article file in the shape of the real web copies."""
    path = folder / name
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"{date}\n\n" if date else ""
    path.write_text(f"{header}{title}\n\n{body}\n", encoding="utf-8")
    return path


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    """Three short articles in ``tmp_path/seeds``."""
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "alpha.txt",
        "Drone spotted over the convoy",
        "An attack drone was registered over the convoy at an altitude of 3,600 meters. "
        "It had taken off from the Incirlik air base.\n\nThe drone left thirty minutes later.",
        date="24 Sep, 2016 01:53",
    )
    write_article(
        seeds,
        "beta.txt",
        "Ceasefire talks stall in Geneva",
        "Diplomats said the ceasefire talks in Geneva stalled on Tuesday. "
        "The next round is planned for October.",
        date="2016-09-28",
    )
    write_article(
        seeds,
        "nested/gamma.md",
        "Harvest outlook improves",
        "Rain in the cocoa zone improved the harvest outlook, traders said. "
        "Prices fell two percent.",
    )
    return seeds


def make_meta(**changes: object) -> ArticleMeta:
    """An article's metadata for tests that need one but no corpus; fields overridable."""
    fields: dict[str, object] = {
        "id": "a",
        "path": "a.txt",
        "title": "Title",
        "outlet": "RT",
        "date": None,
        "date_text": None,
        "url": None,
        "content_hash": "0" * 64,
    }
    return ArticleMeta(**{**fields, **changes})  # type: ignore[arg-type]


def windows(text: str, settings: ChunkingSettings | None = None) -> list[Chunk]:
    """The windows of one article given as its page's text."""
    article = parse_article(text, article_id="a", path="a", digest="d")
    return chunk_article(article, settings or ChunkingSettings())


def make_settings(tmp_path: Path, seeds: Path, **overrides: object) -> Settings:
    return load_settings(
        seeds_dir=seeds, index_dir=tmp_path / "index", root_dir=tmp_path, **overrides
    )


def run_with_deadline(target: Callable[[], object], seconds: float, fifo: Path) -> object:
    """Run ``target`` in a thread; a thread stuck opening the FIFO is released and fails."""
    result: list[object] = []

    def run() -> None:
        try:
            result.append(target())
        except BaseException as exc:  # handed to the test's thread below
            result.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    thread.join(seconds)
    if thread.is_alive():
        with contextlib.suppress(OSError):  # let a reader stuck on the FIFO go
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        thread.join(5)
        pytest.fail(f"still running after {seconds} s: a FIFO was opened")
    if isinstance(result[0], BaseException):
        raise result[0]
    return result[0]


@pytest.fixture
def fake_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The CLI's service embeds with the counting fake instead of loading the model."""
    import qa_bot.service as service_module

    class FakeModelService(QAService):
        def __init__(self, settings: Settings, **kwargs: object):
            super().__init__(settings, embedder=CountingEmbedder(), **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(service_module, "QAService", FakeModelService)


@pytest.fixture(scope="session")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The address of a milvus-lite server started for this test session on 127.0.0.1."""
    from tests.milvus_server import MilvusLiteServer

    server = MilvusLiteServer(tmp_path_factory.mktemp("milvus"))
    server.start()
    try:
        yield server.uri
    finally:
        server.stop()


@pytest.fixture(scope="session")
def model_embedder() -> SentenceTransformerEmbedder:
    """The real all-MiniLM-L6-v2 for the whole test session, loaded when first used (a
    pytest-xdist worker that only reads a shared index may never need it)."""
    return SentenceTransformerEmbedder(threads=int(os.environ.get("QA_BOT_EMBEDDING__THREADS", 0)))


@pytest.fixture(scope="session")
def real_embedder(model_embedder: SentenceTransformerEmbedder) -> SentenceTransformerEmbedder:
    """The real all-MiniLM-L6-v2, loaded once for the whole test session."""
    model_embedder.embed(["warm up"])
    return model_embedder


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """With ``pytest -n 2``, the tests that read the seeds index run first: pytest-xdist gives
    each worker a run of consecutive tests to start with, so one worker builds the index and
    answers from it while the other runs other tests, rather than both waiting for the build.
    Those runs are uneven (the realistic sets take minutes each), so the suite distributes by
    ``worksteal`` (pyproject.toml): a worker that runs out takes half of the other's queue."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: "seeds_service" not in getattr(item, "fixturenames", ()))


def shared_folder(tmp_path_factory: pytest.TempPathFactory, name: str) -> Path:
    """A folder for the whole test run: with pytest-xdist, the same one for every worker."""
    base = tmp_path_factory.getbasetemp()
    if os.environ.get("PYTEST_XDIST_WORKER"):
        base = base.parent  # the run's folder, above each worker's own
    return base / name


def build_once(folder: Path, build: Callable[[Path], None]) -> Path:
    """``folder`` built by ``build`` once for the run: the first worker that needs it builds
    it under a file lock, the others wait and read it (tests never change it)."""
    from filelock import FileLock

    built = folder.with_name(folder.name + ".built")
    with FileLock(str(folder) + ".lock"):
        if not built.is_file():
            shutil.rmtree(folder, ignore_errors=True)
            folder.mkdir(parents=True)
            build(folder)
            built.touch()
    return folder


@pytest.fixture(scope="session")
def seeds_service(
    tmp_path_factory: pytest.TempPathFactory, model_embedder: SentenceTransformerEmbedder
) -> QAService:
    """A service over a copy of the repository's seeds, indexed once with the real model (and
    its ONNX export made), for the whole run."""

    def build(root: Path) -> None:
        shutil.copytree(SEEDS, root / "seeds")
        QAService(_project_settings(root), embedder=model_embedder).index()

    root = build_once(shared_folder(tmp_path_factory, "seeds-project"), build)
    return QAService(_project_settings(root), embedder=model_embedder)


@pytest.fixture(scope="session")
def export_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The packaged model's ONNX export, made once for the run."""
    from qa_bot.embedding import PACKAGED_MODEL
    from qa_bot.onnx_export import export_onnx

    folder = build_once(
        shared_folder(tmp_path_factory, "onnx"),
        lambda folder: export_onnx(PACKAGED_MODEL, folder / "export"),
    )
    return folder / "export"


def _project_settings(root: Path) -> Settings:
    return load_settings(seeds_dir=root / "seeds", index_dir=root / "embeddings", root_dir=root)


def copy_project(service: QAService, root: Path) -> Path:
    """A copy of an indexed project in ``root`` (seeds and index), for tests that change it.
    The ONNX exports (most of the index's bytes) are linked one by one rather than copied:
    nothing changes them, and an export the copy makes (another reader) stays in the copy."""
    settings = service.settings
    shutil.copytree(settings.seeds_dir, root / "seeds")
    shutil.copytree(settings.index_dir, root / "embeddings", ignore=shutil.ignore_patterns("onnx"))
    if (settings.index_dir / "onnx").is_dir():
        (root / "embeddings" / "onnx").mkdir()
        for export in (settings.index_dir / "onnx").iterdir():
            (root / "embeddings" / "onnx" / export.name).symlink_to(export)
    return root
