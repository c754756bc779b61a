"""An embedding backend that answers questions without torch: ONNX Runtime plus ``tokenizers``.

Importing sentence-transformers takes seconds on a small machine (benchmarks/README.md,
"Embedding backends"), which a question asked from a cold process must not pay.
:func:`qa_bot.onnx_export.export_onnx` turns the model into a folder (graph, tokenizer,
settings) once, with torch, at index time; :class:`OnnxEmbedder` reads that
folder with nothing heavier than onnxruntime and numpy, and gives the same vectors (cosine
≥ 0.999, checked at export), under the same ``model_id``, so an index built with
sentence-transformers can be searched with it.

This module must never import torch, transformers or sentence_transformers: the export (in
``onnx_export``) imports them itself, and a test holds :class:`OnnxEmbedder` to it.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa_bot.embedding import EmbeddingError, ProgressCallback, normalize_rows

if TYPE_CHECKING:
    import onnxruntime
    from tokenizers import Encoding, Tokenizer

CONFIG_FILE = "onnx_embedding.json"
TOKENIZER_FILE = "tokenizer.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
FORMAT_VERSION = 1
#: How int8 graphs are made (``onnxruntime.quantization.quantize_dynamic``'s arguments). Weights
#: use 7 of their 8 bits: onnxruntime's u8s8 products saturate on x86 CPUs without VNNI, so full
#: 8-bit weights gave other answers there than on CPUs with it (benchmarks/README.md,
#: "Fourteenth round"). Part of the reader export's name, so a new recipe exports afresh.
INT8_RECIPE = {"weight_type": "QInt8", "per_channel": True, "reduce_range": True}
#: The passage reader's first encoder layers keep their products in fp32 in its int8 export:
#: the logits drift about half as far from torch's on the seeds' pairs (benchmarks/README.md,
#: "Forty-first round"). Part of the reader export's name, like INT8_RECIPE.
FLOAT_LAYERS = 2
#: The attention the reader is traced with. "eager" is plain products and a softmax; torch's
#: default traces its mask through Where and IsNaN nodes in every layer, which cost about a
#: tenth of the reading time on CPU and compute the same logits (benchmarks/README.md,
#: "Forty-fifth round"). Part of the reader export's name, like INT8_RECIPE.
READER_ATTENTION = "eager"

#: On loading, the export must give its check sentence (nearly) the vector it gave at export.
CHECK_MIN_COSINE = 0.9999
#: What an export made before check sentences existed is asked to embed when it is loaded.
_FALLBACK_CHECK_TEXT = "Oil prices rose."


class OnnxExportError(EmbeddingError):
    """The ONNX export is missing, unreadable, or cannot be made for this model."""


@dataclass(frozen=True)
class OnnxExportConfig:
    """What inference needs besides the graph and the tokenizer, stored as ``onnx_embedding.json``.

    ``normalize`` records whether the source model ends with a Normalize module; the embedder
    normalizes either way, because the :class:`~qa_bot.embedding.Embedder` contract says so.
    """

    model_id: str
    source_model: str
    onnx_file: str
    quantized: bool
    dimension: int
    max_seq_length: int
    pooling: str
    normalize: bool
    input_names: list[str]
    pad_id: int
    min_cosine: float
    mean_cosine: float
    format: int = FORMAT_VERSION
    #: A sentence and the vector this export gave it when it was made: loading the export
    #: embeds it again, so a damaged graph or tokenizer is caught before it answers anything.
    check_text: str = ""
    check_vector: list[float] = field(default_factory=list)


class OnnxEmbedder:
    """The :class:`~qa_bot.embedding.Embedder` over a folder written by :func:`export_onnx`.

    The folder's settings are read (and checked) at construction; the ONNX session is built on
    the first :meth:`embed`, so constructing one is cheap for commands that never embed.
    """

    def __init__(self, export_dir: Path | str, *, batch_size: int = 32, threads: int = 0):
        self._dir = Path(export_dir)
        self._batch_size = max(batch_size, 1)
        self._threads = threads
        self._config = load_export_config(self._dir)
        self._session: onnxruntime.InferenceSession | None = None
        self._tokenizer: Tokenizer | None = None
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self._config.model_id

    @property
    def dimension(self) -> int:
        return self._config.dimension

    @property
    def max_seq_length(self) -> int:
        return self._config.max_seq_length

    @property
    def config(self) -> OnnxExportConfig:
        return self._config

    def embed(
        self, texts: Sequence[str], *, progress: ProgressCallback | None = None
    ) -> np.ndarray:
        """Embed ``texts`` in order; batches are formed by length so short texts pad little.

        Texts are sorted by token count within windows of a few batches (which bounds the
        memory the tokenized texts take), and each row is written back to its original place.
        """
        out = np.zeros((len(texts), self.dimension), dtype=np.float32)
        if not texts:
            return out
        session, tokenizer = self._load()
        window = self._batch_size * 16
        for start in range(0, len(texts), window):
            encodings = tokenizer.encode_batch(list(texts[start : start + window]))
            order = np.argsort([len(e.ids) for e in encodings], kind="stable")
            for first in range(0, len(order), self._batch_size):
                rows = order[first : first + self._batch_size]
                out[start + rows] = self._run(session, [encodings[i] for i in rows])
                if progress is not None:
                    progress(len(rows))
        return out

    def _run(self, session: onnxruntime.InferenceSession, batch: list[Encoding]) -> np.ndarray:
        length = max(len(e.ids) for e in batch)
        ids = np.full((len(batch), length), self._config.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), length), dtype=np.int64)
        for row, encoding in enumerate(batch):
            ids[row, : len(encoding.ids)] = encoding.ids
            mask[row, : len(encoding.ids)] = 1
        feeds = {"input_ids": ids, "attention_mask": mask, "token_type_ids": np.zeros_like(ids)}
        (hidden,) = session.run(
            ["last_hidden_state"], {name: feeds[name] for name in self._config.input_names}
        )
        weights = mask.astype(np.float32)[:, :, None]
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return normalize_rows(pooled)

    def verify(self) -> None:
        """Load the export now and check it (see :meth:`_check`); raise if it is damaged."""
        self._load()

    def _load(self) -> tuple[onnxruntime.InferenceSession, Tokenizer]:
        with self._lock:
            if self._session is None or self._tokenizer is None:
                tokenizer = _load_tokenizer(self._dir, self._config)
                session = _load_session(self._dir / self._config.onnx_file, self._threads)
                self._check(session, tokenizer)
                self._session, self._tokenizer = session, tokenizer
            return self._session, self._tokenizer

    def _check(self, session: onnxruntime.InferenceSession, tokenizer: Tokenizer) -> None:
        """The export still gives its check sentence the vector it gave when it was made (an
        export without one: a finite vector of its dimension). A file damaged on disk fails
        here, once per process, instead of answering with wrong vectors."""
        text = self._config.check_text or _FALLBACK_CHECK_TEXT
        try:
            got = self._run(session, [tokenizer.encode(text)])[0]
        except Exception as exc:  # onnxruntime's errors share no public base class
            raise _broken(self._dir, f"it cannot embed: {exc}") from exc
        if got.shape != (self.dimension,) or not np.isfinite(got).all():
            raise _broken(self._dir, "it gives vectors of the wrong shape")
        if self._config.check_vector:
            expected = np.asarray(self._config.check_vector, dtype=np.float32)
            cosine = float(got @ expected) if expected.shape == got.shape else -1.0
            if not cosine >= CHECK_MIN_COSINE:
                raise _broken(
                    self._dir, f"its check sentence now embeds at cosine {cosine:.4f} (damaged?)"
                )


def load_export_config(export_dir: Path) -> OnnxExportConfig:
    """Read and check an export folder's settings; :class:`OnnxExportError` says what is wrong."""
    path = export_dir / CONFIG_FILE
    if not path.is_file():
        raise _broken(export_dir, "no export there" if not export_dir.exists() else "no settings")
    try:
        raw: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
        config = OnnxExportConfig(**raw)
    except (OSError, ValueError, TypeError) as exc:
        raise _broken(export_dir, f"unreadable {CONFIG_FILE}: {exc}") from exc
    if config.format != FORMAT_VERSION:
        raise _broken(export_dir, f"format {config.format}, this version reads {FORMAT_VERSION}")
    if config.pooling != "mean":
        raise _broken(export_dir, f"unsupported pooling {config.pooling!r}")
    for name in (config.onnx_file, TOKENIZER_FILE):
        if not (export_dir / name).is_file():
            raise _broken(export_dir, f"{name} is missing")
    return config


def _broken(export_dir: Path, reason: str) -> OnnxExportError:
    return OnnxExportError(
        f"no usable ONNX embedding export in {export_dir} ({reason}); "
        "run `qa-bot index` to rebuild it"
    )


def _load_tokenizer(export_dir: Path, config: OnnxExportConfig) -> Tokenizer:
    from tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.from_file(str(export_dir / TOKENIZER_FILE))
    except Exception as exc:  # tokenizers raises a bare Exception on a bad file
        raise _broken(export_dir, f"unreadable {TOKENIZER_FILE}: {exc}") from exc
    # Padding is done per batch in _run; the file's own settings are ignored on purpose.
    tokenizer.no_padding()
    tokenizer.enable_truncation(max_length=config.max_seq_length)
    return tokenizer


def cpu_session(model_path: Path, threads: int) -> onnxruntime.InferenceSession:
    """An onnxruntime session on the CPU, ``threads`` within an operator (0: all cores), one
    across, quiet; onnxruntime's own error when the graph cannot load."""
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    # Threads sleep between runs instead of spinning: a question runs the query model and
    # then the reader, and two pools spinning for the same two cores slowed the reader by
    # half (benchmarks/README.md, "Fifth round").
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    return onnxruntime.InferenceSession(
        str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
    )


def _load_session(model_path: Path, threads: int) -> onnxruntime.InferenceSession:
    try:
        return cpu_session(model_path, threads)
    except Exception as exc:  # onnxruntime's errors share no public base class
        raise _broken(model_path.parent, f"cannot load {model_path.name}: {exc}") from exc
