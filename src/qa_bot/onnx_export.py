"""Exporting a sentence-transformers model for :class:`~qa_bot.onnx_embedding.OnnxEmbedder`.

Done once, at index time, with torch (already loaded for the build): the graph, the tokenizer
and the settings are written to a folder beside the index, checked against the torch model,
and moved into place whole. Kept apart from the ONNX runtime side so that answering a question
never imports what exporting needs.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from collections.abc import Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa_bot.embedding import EmbeddingError, model_fingerprint, resolve_model_path
from qa_bot.onnx_embedding import (
    CONFIG_FILE,
    FP32_FILE,
    INT8_FILE,
    INT8_RECIPE,
    TOKENIZER_FILE,
    OnnxEmbedder,
    OnnxExportConfig,
    OnnxExportError,
)

if TYPE_CHECKING:
    from sentence_transformers import SentenceTransformer

#: The export is refused below this cosine to the torch model on the check sentences.
FP32_MIN_COSINE = 0.999
#: int8 trades accuracy for speed; below this on the check sentences it is not worth having.
INT8_MIN_COSINE = 0.95

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

    _export_graph(auto_model, hf_tokenizer, input_names, folder / FP32_FILE, opset=opset)

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


def _export_graph(
    auto_model: Any, hf_tokenizer: Any, input_names: list[str], path: Path, *, opset: int
) -> None:
    """Trace the transformer on a padded batch and write its graph, with dynamic batch and
    sequence axes, to ``path``."""
    import torch

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
    trace_to_onnx(
        _LastHiddenState().eval(),
        tuple(sample[name] for name in input_names),
        path,
        input_names=input_names,
        output_names=["last_hidden_state"],
        dynamic_axes=axes,
        opset=opset,
    )


def trace_to_onnx(
    module: Any,
    inputs: tuple[Any, ...],
    path: Path,
    *,
    input_names: list[str],
    output_names: list[str],
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
) -> None:
    """Trace ``module`` on ``inputs`` with the TorchScript-based exporter (see
    :func:`export_onnx` for why that one) and write the graph to ``path``, quietly: its
    deprecation and tracing warnings say nothing about a BERT graph."""
    import torch

    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore", category=DeprecationWarning)
        warnings.simplefilter("ignore", category=torch.jit.TracerWarning)
        # Position and token-type ids are sliced with non-negative indices only.
        warnings.filterwarnings("ignore", message="Exporting aten::index operator")
        torch.onnx.export(
            module,
            inputs,
            str(path),
            dynamo=False,
            input_names=input_names,
            output_names=output_names,
            dynamic_axes=dynamic_axes,
            opset_version=opset,
        )


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


def _quantize(source: Path, target: Path, keep_float: Sequence[str] = ()) -> None:
    """Dynamic int8 quantization: weights per output channel, activations at run time; the
    nodes named in ``keep_float`` stay fp32.

    Per-tensor scales are faster but drift far more from the fp32 vectors than per-channel
    ones (benchmarks/README.md, "Embedding backends"); INT8_RECIPE says why weights keep 7 bits.
    """
    from onnxruntime.quantization import QuantType, quantize_dynamic

    recipe = dict(INT8_RECIPE, weight_type=QuantType[INT8_RECIPE["weight_type"]])
    quantize_dynamic(source, target, nodes_to_exclude=list(keep_float), **recipe)


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
