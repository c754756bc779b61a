"""An embedding backend that answers questions without torch: ONNX Runtime plus ``tokenizers``.

Importing sentence-transformers costs 8-12 s on a small machine, which a question asked from a
cold process must not pay. :func:`export_onnx` turns the sentence-transformers model into a
folder (graph, tokenizer, settings) once, with torch, at index time; :class:`OnnxEmbedder` reads
that folder with nothing heavier than onnxruntime and numpy, and gives the same vectors (cosine
≥ 0.999, checked at export), under the same ``model_id``, so an index built with
sentence-transformers can be searched with it.

This module must never import torch, transformers or sentence_transformers at module level:
``export_onnx`` imports them itself, and a test holds :class:`OnnxEmbedder` to it.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa_bot.embedding import (
    EmbeddingError,
    ProgressCallback,
    model_fingerprint,
    normalize_rows,
    resolve_model_path,
)

if TYPE_CHECKING:
    import onnxruntime
    from sentence_transformers import SentenceTransformer
    from tokenizers import Encoding, Tokenizer

CONFIG_FILE = "onnx_embedding.json"
TOKENIZER_FILE = "tokenizer.json"
FP32_FILE = "model.onnx"
INT8_FILE = "model.int8.onnx"
FORMAT_VERSION = 1

#: The export is refused below this cosine to the torch model on the check sentences.
FP32_MIN_COSINE = 0.999
#: int8 trades accuracy for speed; below this on the check sentences it is not worth having.
INT8_MIN_COSINE = 0.95
#: On loading, the export must give its check sentence (nearly) the vector it gave at export.
CHECK_MIN_COSINE = 0.9999

#: Sentences the export is checked on: short, long enough to be truncated, non-ASCII, bare
#: punctuation, and together a batch of mixed lengths, so padding and masking are exercised.
_CHECK_TEXTS = (
    "?",
    "Oil prices rose.",
    "Müller’s café in Zürich raised “fair trade” coffee prices by 5%, the owner said.",
    "The central bank left interest rates unchanged on Tuesday, citing slowing inflation "
    "and a weaker labour market.",
    " ".join(["Exports of cocoa beans and soybeans fell sharply in the third quarter."] * 40),
)


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
        text = self._config.check_text or _CHECK_TEXTS[1]
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


def _load_session(model_path: Path, threads: int) -> onnxruntime.InferenceSession:
    import onnxruntime

    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    try:
        return onnxruntime.InferenceSession(
            str(model_path), sess_options=options, providers=["CPUExecutionProvider"]
        )
    except Exception as exc:  # onnxruntime's errors share no public base class
        raise _broken(model_path.parent, f"cannot load {model_path.name}: {exc}") from exc


def export_onnx(model: str, out_dir: Path, *, quantize: bool = False, opset: int = 17) -> Path:
    """Export a sentence-transformers model to ``out_dir`` for :class:`OnnxEmbedder`; return it.

    The transformer is exported with the TorchScript-based exporter (``dynamo=False``): the
    dynamo exporter, torch's default since 2.9, needs ``onnxscript``, which is not one of our
    dependencies, while the TorchScript one ships with torch and exports this BERT graph with
    dynamic batch and sequence axes exactly (it is deprecated, hence the warning we silence;
    when it is removed, switch to ``dynamo=True`` and depend on ``onnxscript``). Tracing only
    records the branches taken, so it traces a padded batch, and the result is then checked
    against the torch model on :data:`_CHECK_TEXTS` through :class:`OnnxEmbedder` itself,
    tokenizer included: below :data:`FP32_MIN_COSINE` the export is refused.

    With ``quantize`` the folder holds an int8 graph (dynamic quantization of the weights)
    instead, checked against :data:`INT8_MIN_COSINE`. Either way the folder is written
    beside ``out_dir`` and renamed into place, so a reader never sees half an export.

    Raises:
        OnnxExportError: the model has a shape we cannot run, or the export does not match.
        EmbeddingError: the model cannot be loaded.
    """
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    # Heavy imports on purpose here: see the module docstring.
    from sentence_transformers import SentenceTransformer

    try:
        st_model = SentenceTransformer(resolve_model_path(model), device="cpu")
    except Exception as exc:
        raise EmbeddingError(f"cannot load embedding model {model!r}: {exc}") from exc
    st_model.eval()

    out_dir = Path(out_dir)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        tmp.chmod(0o755)  # mkdtemp's 0o700 would make the export private to its builder
        config = _write_export(st_model, model, tmp, opset=opset)
        expected = st_model.encode(
            list(_CHECK_TEXTS), normalize_embeddings=True, convert_to_numpy=True
        )
        config = _verified(tmp, config, expected, FP32_MIN_COSINE)
        if quantize:
            _quantize(tmp / FP32_FILE, tmp / INT8_FILE)
            (tmp / FP32_FILE).unlink()
            config = replace(config, onnx_file=INT8_FILE, quantized=True)
            config = _verified(tmp, config, expected, INT8_MIN_COSINE)
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


def _write_export(
    st_model: SentenceTransformer, model: str, folder: Path, *, opset: int
) -> OnnxExportConfig:
    """Write graph and tokenizer into ``folder``; return the settings, not yet verified."""
    import inspect

    import torch
    from tokenizers import Tokenizer

    transformer, pooling, normalize = _supported_modules(st_model, model)
    hf_tokenizer = transformer.tokenizer
    if hf_tokenizer is None or not getattr(hf_tokenizer, "is_fast", False):
        raise OnnxExportError(f"model {model!r} has no fast tokenizer; cannot export it to ONNX")
    auto_model = transformer.auto_model
    accepted = inspect.signature(auto_model.forward).parameters
    input_names = ["input_ids", "attention_mask"]
    if "token_type_ids" in hf_tokenizer.model_input_names and "token_type_ids" in accepted:
        input_names.append("token_type_ids")

    class _LastHiddenState(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = auto_model

        def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(input_names, inputs, strict=True))).last_hidden_state

    sample = hf_tokenizer(
        ["a padded batch", "so that tracing takes the masked attention path"],
        padding=True,
        return_tensors="pt",
    )
    axes = {name: {0: "batch", 1: "sequence"} for name in [*input_names, "last_hidden_state"]}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        # Position and token-type ids are sliced with non-negative indices only.
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(
            _LastHiddenState().eval(),
            tuple(sample[name] for name in input_names),
            str(folder / FP32_FILE),
            dynamo=False,
            input_names=input_names,
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=opset,
        )

    backend = Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str())
    backend.no_padding()
    backend.no_truncation()
    backend.save(str(folder / TOKENIZER_FILE))

    max_seq_length = int(st_model.max_seq_length or hf_tokenizer.model_max_length)
    config = OnnxExportConfig(
        model_id=model_fingerprint(model),
        source_model=model,
        onnx_file=FP32_FILE,
        quantized=False,
        dimension=int(pooling.get_embedding_dimension()),
        max_seq_length=max_seq_length,
        pooling="mean",
        normalize=normalize,
        input_names=input_names,
        pad_id=int(hf_tokenizer.pad_token_id or 0),
        min_cosine=0.0,
        mean_cosine=0.0,
    )
    return config


def _supported_modules(st_model: SentenceTransformer, model: str) -> tuple[Any, Any, bool]:
    """Return (transformer, pooling, normalize) or refuse a pipeline we would embed wrongly."""
    modules = list(st_model)
    names = [type(module).__name__ for module in modules]
    if names not in (["Transformer", "Pooling"], ["Transformer", "Pooling", "Normalize"]):
        raise OnnxExportError(
            f"model {model!r} is {' -> '.join(names)}; the ONNX export supports only "
            "Transformer -> Pooling (-> Normalize). Use backend 'sentence-transformers'."
        )
    mode = _pooling_mode(modules[1])
    if mode != "mean":
        raise OnnxExportError(
            f"model {model!r} uses {mode!r} pooling; the ONNX export supports only mean "
            "pooling. Use backend 'sentence-transformers'."
        )
    if getattr(st_model, "default_prompt_name", None) or getattr(
        modules[0], "do_lower_case", False
    ):
        raise OnnxExportError(
            f"model {model!r} rewrites texts before tokenizing (a default prompt or "
            "lower-casing), which the ONNX export does not do. Use backend 'sentence-transformers'."
        )
    return modules[0], modules[1], len(modules) == 3


def _pooling_mode(pooling: Any) -> str:
    """The pooling mode name, from sentence-transformers 5 (legacy flags) or 6 (one string)."""
    mode = getattr(pooling, "pooling_mode", None)
    if isinstance(mode, str):
        return mode
    if isinstance(mode, (list, tuple)):
        return "+".join(mode)
    if hasattr(pooling, "get_pooling_mode_str"):
        return str(pooling.get_pooling_mode_str())
    return "unknown"


def _verified(
    folder: Path, config: OnnxExportConfig, expected: np.ndarray, floor: float
) -> OnnxExportConfig:
    """Embed the check texts from ``folder`` and refuse the export if any row drifts."""
    _write_config(folder, config)
    got = OnnxEmbedder(folder, batch_size=len(_CHECK_TEXTS)).embed(list(_CHECK_TEXTS))
    cosines = (got * expected).sum(axis=1)
    worst = float(cosines.min())
    if not worst >= floor:
        raise OnnxExportError(
            f"the ONNX export of {config.source_model!r} does not match the torch model: "
            f"cosine {worst:.4f} < {floor} on {_CHECK_TEXTS[int(cosines.argmin())][:40]!r}"
        )
    config = replace(
        config,
        min_cosine=worst,
        mean_cosine=float(cosines.mean()),
        check_text=_CHECK_TEXTS[2],
        check_vector=[float(x) for x in got[2]],
    )
    _write_config(folder, config)
    return config


def _quantize(source: Path, target: Path) -> None:
    """Dynamic int8 quantization: weights per output channel, activations at run time.

    Per-tensor scales are faster here but drift far more from the fp32 vectors (mean cosine
    about 0.95, worst 0.85, on Reuters passages); per-channel keeps about 0.99 / 0.97.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    quantize_dynamic(source, target, weight_type=QuantType.QInt8, per_channel=True)


def _write_config(folder: Path, config: OnnxExportConfig) -> None:
    text = json.dumps(asdict(config), indent=2, ensure_ascii=False)
    (folder / CONFIG_FILE).write_text(text + "\n", encoding="utf-8")


def _replace_dir(new: Path, target: Path) -> None:
    """Move ``new`` to ``target``, replacing an old export.

    A directory cannot be renamed over a non-empty one, so the old export is first renamed
    aside: a reader in that instant finds no export and is told to rebuild, never a mix.
    """
    if not target.exists():
        os.replace(new, target)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old.", dir=target.parent))
    os.replace(target, old / target.name)
    os.replace(new, target)
    shutil.rmtree(old, ignore_errors=True)
