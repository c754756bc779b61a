"""The learned stages: a first-quote ranker and an answer decision, and a pluggable reranker.

Both learned stages are logistic regressions over :mod:`qa_bot.features`, trained by
``training/train_ranker.py`` from XQuAD, news questions written blind over Reuters stories and
the seeds' question sets, with answer-removed passages as hard negatives (see
benchmarks/README.md for the data, the split and what they measure). A linear model over the
features keeps a question's ranking under a millisecond and the weights a few kilobytes that
ship inside the package, and can be reproduced exactly from the data with a fixed seed.

The weights file records the embedding model it was trained with: cosines are spread
differently under another model, so the service falls back to the hand-made stages then.

People whose machines can download models may also name any sentence-transformers
``CrossEncoder`` (``retrieval.reranker``): it re-orders the best candidates by reading the
question and each passage together, before the answer decision.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, TypeVar

import numpy as np

from qa_bot.errors import ModelError

T = TypeVar("T")

#: The weights shipped with the package (``training/train_ranker.py`` writes them).
PACKAGED = "ranker.json"


def read_model_json(
    path: Path | None,
    packaged: str,
    build: Callable[[dict[str, Any]], T],
    unreadable: str,
) -> T:
    """``build`` of the JSON file at ``path``, or of the file ``packaged`` shipped inside the
    package. A file that cannot be read, is not JSON or lacks what ``build`` reads raises
    ModelError: ``unreadable`` with the file's place in its ``{}``, and the cause."""
    try:
        if path is None:
            text = resources.files("qa_bot").joinpath(packaged).read_text(encoding="utf-8")
        else:
            text = Path(path).read_text(encoding="utf-8")
        return build(json.loads(text))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        where = path or f"the packaged {packaged}"
        raise ModelError(f"{unreadable.format(where)}: {exc}") from exc


@dataclass(frozen=True)
class LinearModel:
    """A standardised logistic regression: ``logit = ((x - mean) / scale) @ coef + intercept``.

    ``low`` and ``high``, when the fit recorded them, are the smallest and largest value of
    each input among the rows it was fitted on; an input outside them is read at the bound. A
    linear model knows nothing past its data and must not extrapolate: an input the rows held
    at 0 or 1 once reads 3 for an acronym spelt out, 80 of its deviations away, and its tiny
    weight then outvoted every other input.
    """

    names: tuple[str, ...]
    mean: np.ndarray
    scale: np.ndarray
    coef: np.ndarray
    intercept: float
    low: np.ndarray | None = None
    high: np.ndarray | None = None

    def logits(self, rows: np.ndarray) -> np.ndarray:
        x = np.asarray(rows, dtype=np.float64)
        if self.low is not None and self.high is not None:
            x = np.clip(x, self.low, self.high)
        return ((x - self.mean) / self.scale) @ self.coef + self.intercept

    def to_json(self) -> dict[str, Any]:
        bounds = (
            {}
            if self.low is None or self.high is None
            else {
                "low": _rounded(self.low),
                "high": _rounded(self.high),
            }
        )
        return {
            "names": list(self.names),
            "mean": _rounded(self.mean),
            "scale": _rounded(self.scale),
            "coef": _rounded(self.coef),
            "intercept": round(float(self.intercept), 6),
            **bounds,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> LinearModel:
        def bound(key: str) -> np.ndarray | None:
            return np.asarray(data[key], dtype=np.float64) if key in data else None

        return cls(
            tuple(data["names"]),
            np.asarray(data["mean"], dtype=np.float64),
            np.asarray(data["scale"], dtype=np.float64),
            np.asarray(data["coef"], dtype=np.float64),
            float(data["intercept"]),
            bound("low"),
            bound("high"),
        )


def _rounded(values: np.ndarray) -> list[float]:
    return [round(float(v), 6) for v in values]


@dataclass(frozen=True)
class LearnedRanker:
    """The candidate model and the answer model, and what they were trained for."""

    model_id: str
    candidates: LinearModel
    answer: LinearModel
    #: How the weights were made (data, split, seed), for ``qa-bot status``.
    provenance: dict[str, Any]

    def fits(self, model_id: str) -> bool:
        """Whether the cosines mean what they meant in training (the same embedding model)."""
        return same_model(self.model_id, model_id)

    def to_json(self) -> str:
        return json.dumps(
            {
                "model_id": self.model_id,
                "candidates": self.candidates.to_json(),
                "answer": self.answer.to_json(),
                "provenance": self.provenance,
            },
            indent=1,
        )

    @classmethod
    def load(cls, path: Path | None = None) -> LearnedRanker:
        """The weights at ``path``, or the packaged ones. Raises ModelError when unreadable."""

        def build(data: dict[str, Any]) -> LearnedRanker:
            return cls(
                data["model_id"],
                LinearModel.from_json(data["candidates"]),
                LinearModel.from_json(data["answer"]),
                dict(data.get("provenance", {})),
            )

        return read_model_json(path, PACKAGED, build, "the ranker weights in {} are unreadable")


def same_model(trained: str, used: str) -> bool:
    """Model ids compare by their last path part: the packaged model is found at another
    path on every machine."""
    return Path(trained.rstrip("/")).name == Path(used.rstrip("/")).name


class CrossEncoderReranker:
    """Any sentence-transformers CrossEncoder, by name or path, loaded on first use.

    sentence-transformers takes seconds to import, so it is imported here, not at the top.
    """

    def __init__(self, name: str, *, max_length: int = 256):
        self.name = name
        self._max_length = max_length
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import CrossEncoder
            except ImportError as exc:  # pragma: no cover - a dependency of the package
                raise ModelError(f"sentence-transformers is needed for {self.name}") from exc
            try:
                self._model = CrossEncoder(self.name, max_length=self._max_length)
            except (OSError, ValueError) as exc:
                raise ModelError(f"cannot load the reranker {self.name}: {exc}") from exc
        return self._model

    def scores(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """One relevance score per passage (higher is better)."""
        if not passages:
            return np.zeros(0)
        pairs = [(question, p) for p in passages]
        return np.asarray(self._load().predict(pairs, show_progress_bar=False), dtype=np.float64)
