"""The passage reader: a cross-encoder that reads the question and a passage together.

The learned ranker scores passages from features (cosine, BM25, coverage, ...); it cannot
tell "how many trucks were in the convoy" (not stated) from "how many trucks were destroyed"
(stated) in a passage holding both sets of words. The reader reads each of the best few
passages with the question and gives a logit that it answers; the learned stages combine it
with theirs (:class:`ReaderSpec`: a weight for the order, a small model for the decision).

It is the packaged MiniLM fine-tuned by ``training/train_reader.py`` and then, on the seeds'
realistic questions, by ``training/tune_reader.py``, which writes a folder (``reader.json``, and
``reader_weights.npz``: the differences from the packaged weights); the one shipped is
``qa_bot/trained_reader``, and ``retrieval.reader`` may name another.
:mod:`qa_bot.reader_export` exports it to ONNX at index time. This module must never import
torch: a question asked from a cold process reads the export with onnxruntime and
``tokenizers`` alone.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa_bot.errors import ModelError
from qa_bot.features import QUESTION_FEATURES
from qa_bot.onnx_embedding import FLOAT_LAYERS, INT8_RECIPE, READER_ATTENTION, cpu_session
from qa_bot.ranker import LinearModel
from qa_bot.reader_spans import SPAN_FIT_INPUTS, read_spans
from qa_bot.trees import DecisionModel, decision_from_json

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Tokenizer

logger = logging.getLogger(__name__)

#: In a trained reader's folder: how to rebuild it, and how its score is used...
SPEC_FILE = "reader.json"
#: ... and the differences from the packaged MiniLM that make it the reader.
WEIGHTS_FILE = "reader_weights.npz"
CONFIG_FILE = "reader.json"
GRAPH_FILE = "reader.int8.onnx"
TOKENIZER_FILE = "tokenizer.json"
#: A pair the export scores when made and again when loaded: a damaged file is caught.
CHECK_PAIR = (
    "how many people died in the flood",
    "At least 41 people were killed when the river burst its banks, officials said.",
)
#: Loading refuses an export whose check pair drifted more than this from when it was made.
CHECK_TOLERANCE = 1e-3
#: The graph's output of each token's start and end logits, in a reader with a span head.
SPAN_OUTPUT = "span"
#: What the reader gives the decision: the answer model's logit it joins, and its own.
READER_INPUTS = ("answer_logit", "reader_best", "span_best")
#: What it gives of the passages it read, as the joined order ranks them: its logit and span
#: margin where the order puts the passage it quotes, its second logit, its mean logit and how
#: many passages it reads as answering (logit above 0), and the best of the ranker's logits and
#: of the cosines with the adapted question. A decision over the best logit alone cannot tell a
#: question answered by the quoted passage from one where some other passage looks likelier.
PASSAGE_INPUTS = (
    "reader_first",
    "span_first",
    "reader_second",
    "reader_mean",
    "reader_positive",
    "ranker_best",
    "near_best",
)
#: Inputs that need a span head: its margins, and what the span in the first passage holds.
SPAN_INPUTS = ("span_best", "span_first", *SPAN_FIT_INPUTS)
#: What the decision of a reader's spec may read (``ReaderSpec.answer.names``): the reader's
#: inputs, and the question features the answer model reads (:mod:`qa_bot.features`), so that
#: their weights are fitted again beside the reader's rather than through one fixed logit.
DECISION_INPUTS = (*READER_INPUTS, *PASSAGE_INPUTS, *SPAN_FIT_INPUTS, *QUESTION_FEATURES)


class ReaderError(ModelError):
    """The reader's weights or export are missing, unreadable, or do not match."""


@dataclass(frozen=True)
class ReaderSpec:
    """The reader as trained: its base model, size, input length, and how its logit is used.

    ``rank_weight`` scales the reader's logit added to the learned ranker's for the order of
    the best passages; ``answer`` is a logistic regression for the decision over what its
    names say of DECISION_INPUTS: the answer model's logit, the reader's best logit, and the
    question features the answer model reads, weighed again beside the reader. Both are
    fitted by ``train_reader.py`` (and again by ``tune_reader.py``) on questions the reader
    was not trained on. ``adapter_weight`` scales the cosine of each passage read
    with the adapted question (:mod:`qa_bot.query_adapter`), added to the order too; it is
    fitted with the other two by ``tune_reader.py``, 0 for a reader fitted without adapter.

    ``topic``, when there is one, is a second logistic regression over the same inputs: how
    likely the question is about what the articles cover at all. It is fitted apart, with
    questions on other subjects asked of the articles as its negatives, because one linear
    decision cannot learn both that an on-topic question whose answer is missing sits close to
    the passages and that an off-topic one sits far from them (it extrapolates the first to
    the second, and answers "how fast is light?" with a drone's speed).

    ``answer_tuned``, when there is one, is the decision for a question whose passages read
    all come from ``tuned_articles``, the articles whose people's questions the reader was
    tuned on (their ``ArticleMeta.content_hash``). The reader is far surer there, of what a
    passage holds and of what it lacks, than on articles it never read; one decision fitted
    over both had to trust it as little on the first as on the second. It is a logistic
    regression or, as shipped, boosted trees (:class:`qa_bot.trees.BoostedTrees`), fitted on
    the many more people's questions asked of those articles than of any other.

    A reader with ``span`` also marks where the answer starts and ends in each passage (or
    that it is not there: the first token, as in SQuAD 2.0 readers); how much its best span of
    at most ``max_span`` tokens beats "not there" (:func:`span_margins`) is the decision's
    ``span_best``. Learning to point at the answer teaches the reader what a passage lacks.
    """

    base_model: str
    layers: int
    max_length: int
    rank_weight: float
    answer: LinearModel
    provenance: dict[str, Any] = field(default_factory=dict)
    adapter_weight: float = 0.0
    span: bool = False
    max_span: int = 30
    topic: LinearModel | None = None
    answer_tuned: DecisionModel | None = None
    tuned_articles: frozenset[str] = frozenset()

    def __post_init__(self) -> None:
        for model in (self.answer, self.topic, self.answer_tuned):
            names = () if model is None else model.names
            unknown = [n for n in names if n not in DECISION_INPUTS]
            if unknown or (set(SPAN_INPUTS) & set(names) and not self.span):
                raise ValueError(f"the reader's decision reads {list(names)}")

    def to_json(self) -> dict[str, Any]:
        return {
            "base_model": self.base_model,
            "layers": self.layers,
            "max_length": self.max_length,
            "rank_weight": self.rank_weight,
            "adapter_weight": self.adapter_weight,
            "span": self.span,
            "max_span": self.max_span,
            "answer": self.answer.to_json(),
            **({} if self.topic is None else {"topic": self.topic.to_json()}),
            **(
                {}
                if self.answer_tuned is None
                else {
                    "answer_tuned": self.answer_tuned.to_json(),
                    "tuned_articles": sorted(self.tuned_articles),
                }
            ),
            "provenance": self.provenance,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ReaderSpec:
        return cls(
            str(data["base_model"]),
            int(data["layers"]),
            int(data["max_length"]),
            float(data["rank_weight"]),
            LinearModel.from_json(data["answer"]),
            dict(data.get("provenance", {})),
            float(data.get("adapter_weight", 0.0)),
            bool(data.get("span", False)),
            int(data.get("max_span", 30)),
            LinearModel.from_json(data["topic"]) if "topic" in data else None,
            decision_from_json(data["answer_tuned"]) if "answer_tuned" in data else None,
            frozenset(map(str, data.get("tuned_articles", ()))),
        )

    @property
    def order(self) -> tuple[float, float]:
        """The weights of the reader's logit and of the adapted cosine in the joined order."""
        return (self.rank_weight, self.adapter_weight)

    def answer_logit(self, answer_logit: float, reading: Reading, asked: np.ndarray) -> float:
        """The decision's logit once the reader has read the best passages (``asked``: the
        question's features, in the order of QUESTION_FEATURES)."""
        decision = self.decision_for(reading)
        row = decision_row(answer_logit, reading, asked, decision.names, self.order)
        return float(decision.logits(np.array([row]))[0])

    def tuned_reading(self, reading: Reading) -> bool:
        """Whether every passage read is from an article the reader was tuned on, and it has a
        decision of their own: a mixed reading is weighed as the articles it never read."""
        return self.answer_tuned is not None and reading.all_tuned

    def decision_for(self, reading: Reading) -> DecisionModel:
        """The decision that weighs ``reading``: ``answer_tuned`` on the tuned articles."""
        if self.answer_tuned is not None and self.tuned_reading(reading):
            return self.answer_tuned
        return self.answer

    def topic_logit(self, answer_logit: float, reading: Reading, asked: np.ndarray) -> float | None:
        """The topic model's logit that the question is about what the articles cover (None
        without one), from the same inputs as :meth:`answer_logit`."""
        if self.topic is None:
            return None
        row = decision_row(answer_logit, reading, asked, self.topic.names, self.order)
        return float(self.topic.logits(np.array([row]))[0])


@dataclass(frozen=True)
class Reading:
    """What the reader made of the passages it read: a logit each that it answers, and with
    a span head, how much its best span beats "not there" (zeros without one) and where in
    the passage that span starts (characters; -1 without a span head) and what it holds
    (``fits``: a row of :data:`qa_bot.reader_spans.SPAN_FIT_INPUTS` per passage)."""

    logits: np.ndarray
    spans: np.ndarray
    starts: np.ndarray | None = None
    fits: np.ndarray | None = None
    #: The learned ranker's logits of the passages read, and their cosines with the adapted
    #: question (zeros without adapter): set by the reading stage, which joins them.
    ranker: np.ndarray | None = None
    near: np.ndarray | None = None
    #: Whether each passage read is from one of ``ReaderSpec.tuned_articles`` (None: not
    #: known, or not asked): set by the reading stage, read by ``ReaderSpec.decision_for``.
    tuned: np.ndarray | None = None

    def start_of(self, row: int) -> int:
        """Where the best span of passage ``row`` starts in it, or -1 when unknown."""
        return -1 if self.starts is None else int(self.starts[row])

    def joined(self, order: tuple[float, float]) -> np.ndarray:
        """The joined order's score of each passage read: the ranker's logit plus the reader's
        and the adapted cosine, weighted by ``order`` (``ReaderSpec.order``)."""
        if self.ranker is None:
            raise ValueError("the reading does not say how the ranker scored its passages")
        near = np.zeros(len(self.logits)) if self.near is None else self.near
        return self.ranker + order[0] * self.logits + order[1] * near

    @property
    def all_tuned(self) -> bool:
        """Whether every passage read is from one of ``ReaderSpec.tuned_articles``."""
        return self.tuned is not None and bool(len(self.tuned) and self.tuned.all())

    def first(self, order: tuple[float, float]) -> int:
        """The row of the passage the joined order puts first."""
        return int(np.argmax(self.joined(order)))


def decision_row(
    answer_logit: float,
    reading: Reading,
    asked: np.ndarray,
    names: Sequence[str],
    order: tuple[float, float] = (0.0, 0.0),
) -> list[float]:
    """The decision's inputs named ``names`` (of DECISION_INPUTS), in that order: what serving
    and ``training/train_reader.py``'s fitting both read (``order``: ``ReaderSpec.order``)."""
    inputs = {
        "answer_logit": answer_logit,
        "reader_best": float(reading.logits.max()),
        "span_best": float(reading.spans.max()),
    }
    if set(PASSAGE_INPUTS + SPAN_FIT_INPUTS) & set(names):
        inputs.update(_passage_inputs(reading, order))
    inputs.update(zip(QUESTION_FEATURES, map(float, asked), strict=True))
    return [inputs[name] for name in names]


def _passage_inputs(reading: Reading, order: tuple[float, float]) -> dict[str, float]:
    """PASSAGE_INPUTS and SPAN_FIT_INPUTS of a reading (at least one passage read)."""
    first = reading.first(order)
    ranked = np.sort(reading.logits)[::-1]
    near = reading.near if reading.near is not None else np.zeros(1)
    fits = np.zeros(len(SPAN_FIT_INPUTS)) if reading.fits is None else reading.fits[first]
    return {
        **dict(zip(SPAN_FIT_INPUTS, map(float, fits), strict=True)),
        "reader_first": float(reading.logits[first]),
        "span_first": float(reading.spans[first]),
        "reader_second": float(ranked[min(1, len(ranked) - 1)]),
        "reader_mean": float(ranked.mean()),
        "reader_positive": float(np.sum(ranked > 0)),
        "ranker_best": float(np.max(reading.ranker)),  # joined() has checked it is there
        "near_best": float(np.max(near)),
    }


def load_spec(folder: Path) -> ReaderSpec:
    """The spec of the trained reader in ``folder``. Raises ReaderError when it is unreadable
    or its weights are missing."""
    try:
        spec = ReaderSpec.from_json(json.loads((folder / SPEC_FILE).read_text(encoding="utf-8")))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ReaderError(f"no usable reader in {folder}: {exc}") from exc
    if not (folder / WEIGHTS_FILE).is_file():
        raise ReaderError(f"no usable reader in {folder}: {WEIGHTS_FILE} is missing")
    return spec


def encode_pairs(
    tokenizer: Tokenizer, spec: ReaderSpec, question: str, passages: Sequence[str]
) -> dict[str, np.ndarray]:
    """The model's inputs for (question, passage) pairs: the passage is cut, never the
    question, at ``spec.max_length`` tokens, and the batch padded to its longest pair."""
    return encoded_pairs(tokenizer, spec, question, passages)[0]


def encoded_pairs(
    tokenizer: Tokenizer, spec: ReaderSpec, question: str, passages: Sequence[str]
) -> tuple[dict[str, np.ndarray], list[Any]]:
    """``encode_pairs``'s batch and the encodings it came from (their character offsets)."""
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=spec.max_length, strategy="only_second")
    encodings = tokenizer.encode_batch([(question, p) for p in passages])
    length = max(len(e.ids) for e in encodings)
    batch = {
        name: np.zeros((len(encodings), length), dtype=np.int64)
        for name in ("input_ids", "attention_mask", "token_type_ids")
    }
    for row, e in enumerate(encodings):
        batch["input_ids"][row, : len(e.ids)] = e.ids
        batch["attention_mask"][row, : len(e.ids)] = e.attention_mask
        batch["token_type_ids"][row, : len(e.ids)] = e.type_ids
    return batch, encodings


def run_session(
    graph: Path | onnxruntime.InferenceSession, batch: dict[str, np.ndarray]
) -> np.ndarray:
    """The graph's logits for an encoded batch (a path is loaded for this one call)."""
    session = _session(graph, threads=0) if isinstance(graph, Path) else graph
    (logits,) = session.run(["logit"], batch)
    return np.asarray(logits, dtype=np.float64).reshape(-1)


class PassageReader:
    """The reader over an export folder, loaded on first use and checked when loaded."""

    def __init__(self, export_dir: Path, *, threads: int = 0):
        self._dir = Path(export_dir)
        self._threads = threads
        try:
            data = json.loads((self._dir / CONFIG_FILE).read_text(encoding="utf-8"))
            self.spec = ReaderSpec.from_json(data)
            self._check_logit = float(data["check_logit"])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise ReaderError(f"no usable reader export in {self._dir}: {exc}") from exc
        self._loaded: tuple[onnxruntime.InferenceSession, Tokenizer] | None = None
        self._lock = threading.Lock()

    def scores(self, question: str, passages: Sequence[str]) -> np.ndarray:
        """One logit per passage that it answers the question."""
        return self.read(question, passages).logits

    def read(self, question: str, passages: Sequence[str]) -> Reading:
        """The logits, and with a span head the span margins, of the passages."""
        if not passages:
            return Reading(np.zeros(0), np.zeros(0))
        session, tokenizer = self._load()
        encoded = encoded_pairs(tokenizer, self.spec, question, passages)
        if not self.spec.span:
            logits = run_session(session, encoded[0])
            return Reading(logits, np.zeros(len(logits)))
        logits, span = session.run(["logit", SPAN_OUTPUT], encoded[0])
        span = np.asarray(span, dtype=np.float64)
        margins, starts, fits = read_spans(question, passages, span, encoded, self.spec.max_span)
        return Reading(np.asarray(logits, dtype=np.float64).reshape(-1), margins, starts, fits)

    def verify(self) -> None:
        """Load the export now; raise ReaderError if it is damaged."""
        self._load()

    def _load(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        with self._lock:
            if self._loaded is None:
                from tokenizers import Tokenizer

                try:
                    tokenizer = Tokenizer.from_file(str(self._dir / TOKENIZER_FILE))
                    session = _session(self._dir / GRAPH_FILE, self._threads)
                    got = run_session(
                        session, encode_pairs(tokenizer, self.spec, CHECK_PAIR[0], [CHECK_PAIR[1]])
                    )
                except ReaderError:
                    raise
                except Exception as exc:  # tokenizers and onnxruntime share no error base
                    raise ReaderError(f"the reader export in {self._dir} fails: {exc}") from exc
                if not abs(float(got[0]) - self._check_logit) <= CHECK_TOLERANCE:
                    raise ReaderError(
                        f"the reader export in {self._dir} scores its check pair "
                        f"{float(got[0]):.4f}, not {self._check_logit:.4f} (damaged?); "
                        "run `qa-bot index` to rebuild it"
                    )
                self._loaded = (session, tokenizer)
            return self._loaded


def _session(path: Path, threads: int) -> onnxruntime.InferenceSession:
    try:
        return cpu_session(path, threads)
    except Exception as exc:  # onnxruntime's errors share no public base class
        raise ReaderError(f"cannot load the reader graph {path}: {exc}") from exc


def reader_dir(index_dir: Path, trained: Path) -> Path:
    """Where the export of the reader trained in ``trained`` lives: beside the generations (a
    rebuild keeps it), named by its spec and weights, so a retrained reader is exported afresh."""
    stamps = tuple(_stamp(Path(trained) / name) for name in (SPEC_FILE, WEIGHTS_FILE))
    return Path(index_dir) / "onnx" / f"reader-{_digest(Path(trained), stamps)}"


def _stamp(path: Path) -> tuple[int, int]:
    """A file's size and modification time: what tells that it changed without reading it."""
    try:
        stat = path.stat()
    except OSError:
        return (-1, -1)
    return (stat.st_size, stat.st_mtime_ns)


@functools.lru_cache(maxsize=8)
def _digest(trained: Path, stamps: tuple[tuple[int, int], ...]) -> str:
    """The folder's files and how it is exported (INT8_RECIPE, FLOAT_LAYERS, READER_ATTENTION),
    hashed once per process while the stamps stay (every question's start asks for it)."""
    recipe = [INT8_RECIPE, FLOAT_LAYERS, READER_ATTENTION]
    digest = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode())
    for name in (SPEC_FILE, WEIGHTS_FILE):
        path = trained / name
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:12]


def open_reader(index_dir: Path, trained: Path, *, threads: int = 0) -> PassageReader | None:
    """The export of the reader in ``trained``, checked; None when there is none yet or it is
    damaged (``qa-bot index`` makes it again), so questions are still answered."""
    folder = reader_dir(index_dir, trained)
    if not folder.is_dir():
        return None
    try:
        reader = PassageReader(folder, threads=threads)
        reader.verify()
    except ReaderError as exc:
        logger.warning("%s; questions are answered without the reader meanwhile", exc)
        return None
    return reader
