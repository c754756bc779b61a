"""The query adapter: a learned linear map that moves a question's vector toward the passages
that answer questions worded like it.

MiniLM places "how many died" far from "the death toll rose to 41" when the words differ:
paraphrased questions lose their answering passage before any later stage reads it. The
adapter is trained by ``training/train_adapter.py`` on questions with known answering
passages (the seeds' realistic questions and the XQuAD and Reuters training questions): the
question's vector ``q`` becomes ``normalise(q + q @ M)``, and passages stay as the index holds
them, so the index is not rebuilt and any passage added later is found as before.

The file records the embedding model it was trained for; under another model the question's
vector is left as it is (the map means nothing in another model's space).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from qa_bot.errors import ModelError
from qa_bot.files import reading_arrays
from qa_bot.ranker import same_model


class AdapterError(ModelError):
    """The query adapter's file is missing, unreadable, or not a square map."""


@dataclass(frozen=True)
class QueryAdapter:
    """``q -> normalise(q + q @ matrix)`` for question vectors of ``model_id``."""

    model_id: str
    matrix: np.ndarray
    provenance: dict[str, Any] = field(default_factory=dict)

    def fits(self, model_id: str) -> bool:
        """Whether it was trained for this embedding model (as the learned ranker tells)."""
        return same_model(self.model_id, model_id)

    def apply(self, vectors: np.ndarray) -> np.ndarray:
        """The adapted, unit-length question vectors (one per row)."""
        v = np.asarray(vectors, dtype=np.float32)
        moved = v + v @ self.matrix
        norms = np.linalg.norm(moved, axis=-1, keepdims=True)
        return (moved / np.maximum(norms, 1e-12)).astype(np.float32)

    def save(self, path: Path) -> None:
        """Half precision keeps the file small; the map's entries are far from its limits."""
        with path.open("wb") as handle:
            np.savez_compressed(
                handle,
                matrix=self.matrix.astype(np.float16),
                model_id=np.array(self.model_id),
                provenance=np.array(json.dumps(self.provenance, sort_keys=True)),
            )

    @classmethod
    def load(cls, path: Path) -> QueryAdapter:
        try:
            with reading_arrays(), np.load(path, allow_pickle=False) as data:
                matrix = data["matrix"].astype(np.float32)
                model_id = str(data["model_id"])
                provenance = json.loads(str(data["provenance"]))
        except (OSError, KeyError, ValueError) as exc:
            raise AdapterError(
                f"cannot read the query adapter {path}: {exc}. Set "
                "QA_BOT_RETRIEVAL__QUERY_ADAPTER=none to ask without it, or to the file "
                "training/train_adapter.py wrote."
            ) from exc
        if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
            raise AdapterError(f"the query adapter {path} is not a square map: {matrix.shape}")
        return cls(model_id, matrix, provenance)


def open_adapter(path: Path | None, model_id: str, dimension: int) -> QueryAdapter | None:
    """The adapter in ``path`` when it was trained for ``model_id`` (of this ``dimension``);
    None when none is configured or it belongs to another model."""
    if path is None:
        return None
    adapter = QueryAdapter.load(path)
    if not adapter.fits(model_id) or adapter.matrix.shape[0] != dimension:
        return None
    return adapter
