"""Whether a question asks about the article itself, and for which part of it.

"On what date was the RT report on the US ultimatum published?", "which wire service carried
the story about the convoy", "What is the headline of the article quoting Samantha Power?":
the answer is the page's own date line, outlet or headline, which no passage of the story
holds, so ranking passages (and deciding whether they answer) is the wrong question to ask of
them. People word these in more ways than a pattern can list, so the reading is a small
logistic regression over the question's words, word pairs and word pieces, trained by
``training/train_about.py`` on questions written blind over the seeds and Reuters stories,
labelled by where their gold answer lies. It needs no embedding, so every question is read
by it before retrieval starts.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from qa_bot.text import SURFACE_WORD, fold

#: What a question can ask of the article itself; "none" asks about its story.
ASKED_PARTS = ("none", "date", "outlet", "headline")
#: Word pieces are read at this length: "publishd" still shares "publ", "ubli", "blis".
PIECE = 4


def question_features(question: str) -> list[str]:
    """The features the model reads: each word, each pair of neighbouring words, and each
    word's pieces of ``PIECE`` letters (so a typo keeps most of them), over casefolded text."""
    found = [fold(w) for w in SURFACE_WORD.findall(question)]
    out = [f"w:{w}" for w in found]
    out += [f"b:{a}_{b}" for a, b in zip(["^", *found], [*found, "$"], strict=True)]
    for word in found:
        marked = f"<{word}>"
        out += [f"c:{marked[i : i + PIECE]}" for i in range(max(1, len(marked) - PIECE + 1))]
    return out


@dataclass(frozen=True)
class ArticleAskedModel:
    """The trained reading: one weight per feature and part asked for, and a bias."""

    parts: tuple[str, ...]
    bias: np.ndarray
    weights: dict[str, np.ndarray]

    @classmethod
    def load(cls, path: Path) -> ArticleAskedModel:
        """The model ``training/train_about.py`` wrote."""
        data = json.loads(path.read_text(encoding="utf-8"))
        parts = tuple(data["parts"])
        weights = {k: np.asarray(v, dtype=np.float64) for k, v in data["weights"].items()}
        return cls(parts, np.asarray(data["bias"], dtype=np.float64), weights)

    def probabilities(self, question: str) -> np.ndarray:
        """The probability of each part in ``parts`` (softmax over the summed weights)."""
        logits = self.bias + _summed(self.weights, question_features(question), len(self.parts))
        shifted = np.exp(logits - logits.max())
        return shifted / shifted.sum()

    def asked(self, question: str, threshold: float) -> str | None:
        """The part of the article the question asks for, when the model gives it at least
        ``threshold``; None for a question about the story."""
        probabilities = self.probabilities(question)
        best = int(np.argmax(probabilities))
        part = self.parts[best]
        if part == "none" or probabilities[best] < threshold:
            return None
        return part


def _summed(weights: dict[str, np.ndarray], features: Iterable[str], width: int) -> np.ndarray:
    total = np.zeros(width)
    for feature in features:
        row = weights.get(feature)
        if row is not None:
            total += row
    return total
