"""Boosted regression trees read without the library that fitted them: the reader's decision
for the articles it was tuned on.

A linear decision over the reader's outputs weighs each input the same whatever the others
say; on the articles the reader read people's questions over, how much a span margin means
depends on how much of the question the passage holds, and trees learn such interactions from
the rows alone (benchmarks/README.md, "Twenty-sixth round"). The trees are stored flat, as
plain lists in ``reader.json``, and walked with numpy: serving needs no pickle and no
scikit-learn, and a row is decided in a few array steps however many trees there are.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from qa_bot.ranker import LinearModel

#: What ``kind`` a decision's JSON names for :class:`BoostedTrees` (a linear one names none).
KIND = "boosted_trees"


@dataclass(frozen=True)
class BoostedTrees:
    """``logit = baseline + sum of each tree's leaf value`` for the row.

    The nodes of every tree are stored in one set of arrays; ``roots`` are the trees' first
    nodes. A split node sends a row left when its input ``feature`` is at most ``threshold``
    (a missing input, NaN, goes where ``missing_left`` says); a leaf points to itself on both
    sides, so that walking ``depth`` steps (the deepest leaf's, found from the nodes) from
    every root ends on each tree's leaf.
    """

    names: tuple[str, ...]
    baseline: float
    roots: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    missing_left: np.ndarray
    left: np.ndarray
    right: np.ndarray
    value: np.ndarray

    def __post_init__(self) -> None:
        nodes = len(self.feature)
        sizes = {
            len(a) for a in (self.threshold, self.missing_left, self.left, self.right, self.value)
        }
        inside = all(np.all((a >= 0) & (a < nodes)) for a in (self.roots, self.left, self.right))
        reads = np.all((self.feature >= 0) & (self.feature < len(self.names)))
        if sizes != {nodes} or not inside or not reads or self.depth is None:
            raise ValueError("the trees' nodes do not fit together")

    @functools.cached_property
    def depth(self) -> int | None:
        """Steps from the roots to the deepest leaf; None when a walk never ends on a leaf (a
        cycle through split nodes)."""
        leaf = (self.left == np.arange(len(self.left))) & (self.right == np.arange(len(self.right)))
        at, steps = np.unique(self.roots), 0
        while not leaf[at].all():
            split = at[~leaf[at]]
            at, steps = np.unique(np.concatenate([self.left[split], self.right[split]])), steps + 1
            if steps > len(self.left):
                return None
        return steps

    def logits(self, rows: np.ndarray) -> np.ndarray:
        x = np.atleast_2d(np.asarray(rows, dtype=np.float64))
        node = np.broadcast_to(self.roots, (len(x), len(self.roots))).copy()
        at = np.arange(len(x))[:, None]
        for _ in range(self.depth or 0):
            seen = x[at, self.feature[node]]
            go_left = np.where(
                np.isnan(seen), self.missing_left[node], seen <= self.threshold[node]
            )
            node = np.where(go_left, self.left[node], self.right[node])
        return self.baseline + self.value[node].sum(axis=1)

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": KIND,
            "names": list(self.names),
            "baseline": float(self.baseline),
            "roots": self.roots.tolist(),
            "feature": self.feature.tolist(),
            "threshold": [float(t) for t in self.threshold],
            "missing_left": [bool(m) for m in self.missing_left],
            "left": self.left.tolist(),
            "right": self.right.tolist(),
            "value": [float(v) for v in self.value],
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> BoostedTrees:
        def ints(key: str) -> np.ndarray:
            return np.asarray(data[key], dtype=np.int64)

        return cls(
            tuple(data["names"]),
            float(data["baseline"]),
            ints("roots"),
            ints("feature"),
            np.asarray(data["threshold"], dtype=np.float64),
            np.asarray(data["missing_left"], dtype=bool),
            ints("left"),
            ints("right"),
            np.asarray(data["value"], dtype=np.float64),
        )


#: A decision the reader's spec can hold: both give ``names``, ``logits`` and ``to_json``.
DecisionModel = LinearModel | BoostedTrees


def decision_from_json(data: dict[str, Any]) -> DecisionModel:
    """The decision ``data`` describes: boosted trees when it names their ``kind``, else the
    logistic regression every earlier ``reader.json`` holds."""
    if data.get("kind") == KIND:
        return BoostedTrees.from_json(data)
    if "kind" in data:
        raise ValueError(f"unknown kind of decision {data['kind']!r}")
    return LinearModel.from_json(data)
