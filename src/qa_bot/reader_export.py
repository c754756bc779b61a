"""Making the passage reader: its weights as shipped, and its ONNX export.

The reader is the packaged MiniLM fine-tuned as a cross-encoder by
``training/train_reader.py``. Its word embeddings were frozen in training, so training
writes only what it changed, as differences from the packaged weights (int8 per row,
compressed), and a head over the mean of the last hidden states. :func:`assemble` rebuilds
the torch model from the two; :func:`export_reader` exports it, once, at index time (torch is
loaded then anyway), to a folder :class:`~qa_bot.reader.PassageReader` reads with
onnxruntime alone. Torch is imported inside the functions: answering never needs it.
"""

from __future__ import annotations

import json
import logging
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from qa_bot.embedding import resolve_model_path
from qa_bot.errors import QABotError
from qa_bot.files import reading_arrays
from qa_bot.onnx_embedding import FLOAT_LAYERS, READER_ATTENTION
from qa_bot.onnx_export import _quantize, _replace_dir, trace_to_onnx
from qa_bot.reader import (
    CHECK_PAIR,
    CONFIG_FILE,
    GRAPH_FILE,
    SPAN_OUTPUT,
    TOKENIZER_FILE,
    ReaderError,
    ReaderSpec,
    encode_pairs,
)

logger = logging.getLogger(__name__)

#: int8 rows are stored as ``round(delta / scale)`` with ``scale = max|delta| / INT8_MAX``.
INT8_MAX = 127.0
#: The int8 export may differ from torch by this much on average over the export check's pairs
#: (a logit). One pair alone is not a fair test: int8 moves a few pairs by up to a logit while
#: the mean moves by about 0.15 (benchmarks/README.md, "Fifth round").
EXPORT_TOLERANCE = 0.5
#: Pairs the export is checked on against torch: the load check's pair, and a few more kinds of
#: question (who said, when, yes or no) with a passage that answers and one that does not.
EXPORT_CHECK_PAIRS = (
    CHECK_PAIR,
    ("who said the talks would resume", "The minister said talks would resume next week."),
    ("who said the talks would resume", "Fighting continued in the north of the country."),
    ("when did the ceasefire start", "The ceasefire began at sunset on Monday, officials said."),
    ("did the convoy reach the city", "The convoy was turned back at the checkpoint."),
    ("did the convoy reach the city", "Prices of bread rose sharply in the capital."),
)


def pack_deltas(tuned: dict[str, np.ndarray], base: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """What training changed, small: matrices as int8 rows with a scale each, vectors fp16."""
    packed: dict[str, np.ndarray] = {}
    for name, value in tuned.items():
        delta = value.astype(np.float32) - base.get(name, np.zeros_like(value)).astype(np.float32)
        if delta.ndim == 2:
            scale = np.abs(delta).max(axis=1) / INT8_MAX
            scale[scale == 0] = 1.0
            packed[f"{name}:q"] = np.round(delta / scale[:, None]).astype(np.int8)
            packed[f"{name}:s"] = scale.astype(np.float32)
        else:
            packed[f"{name}:h"] = delta.astype(np.float16)
    return packed


def unpack_deltas(packed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The differences :func:`pack_deltas` stored, as float32 arrays by parameter name."""
    out: dict[str, np.ndarray] = {}
    for key, value in packed.items():
        name, kind = key.rsplit(":", 1)
        if kind == "q":
            out[name] = value.astype(np.float32) * packed[f"{name}:s"][:, None]
        elif kind == "h":
            out[name] = value.astype(np.float32)
    return out


#: Heads trained from nothing: their stored differences are from zero, not from MiniLM.
FRESH_HEADS = ("head.", "span_head.")


def reader_module(base_model: str, layers: int, *, span: bool = False) -> Any:
    """The packaged encoder cut to ``layers`` layers, with a fresh head (and with ``span``, a
    fresh span head): what training tunes."""
    import torch
    from transformers import AutoModel

    class MeanHeadReader(torch.nn.Module):
        """Mean of the last hidden states (what the embedder was trained to pool), to a logit;
        with a span head, also each token's logits of starting and of ending the answer."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = AutoModel.from_pretrained(resolve_model_path(base_model))
            self.bert.encoder.layer = self.bert.encoder.layer[:layers]
            self.bert.config.num_hidden_layers = layers
            self.head = torch.nn.Linear(self.bert.config.hidden_size, 1)
            self.span_head = torch.nn.Linear(self.bert.config.hidden_size, 2) if span else None

        def forward(self, input_ids: Any, attention_mask: Any, token_type_ids: Any) -> Any:
            hidden = self.bert(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state
            weights = attention_mask.unsqueeze(-1).to(hidden.dtype)
            pooled = (hidden * weights).sum(1) / weights.sum(1).clamp(min=1e-9)
            logit = self.head(pooled).squeeze(-1)
            if self.span_head is None:
                return logit
            return logit, self.span_head(hidden)

    return MeanHeadReader()


def assemble(spec: ReaderSpec, weights: Path) -> Any:
    """The trained reader as a torch module: the packaged weights plus the stored differences."""
    import torch

    module = reader_module(spec.base_model, spec.layers, span=spec.span)
    with reading_arrays(), np.load(weights) as stored:
        deltas = unpack_deltas({k: stored[k] for k in stored.files})
    state = module.state_dict()
    unknown = sorted(set(deltas) - set(state))
    if unknown:
        raise ReaderError(f"the reader weights name parameters the model lacks: {unknown[:3]}")
    if spec.span and "span_head.weight" not in deltas:
        raise ReaderError("the reader's spec names a span head its weights do not hold")
    for name, delta in deltas.items():
        fresh = name.startswith(FRESH_HEADS)
        base = torch.zeros_like(state[name]) if fresh else state[name].float()
        state[name] = base + torch.from_numpy(delta).reshape(state[name].shape)
    module.load_state_dict(state)
    return module.eval()


def export_reader(spec: ReaderSpec, weights: Path, out_dir: Path, *, opset: int = 17) -> Path:
    """Export the reader to ``out_dir`` (int8, checked against torch on a pair) and return it.

    Written to a temporary folder beside ``out_dir`` and moved into place whole, so a reader
    never finds half an export.
    """
    from tokenizers import Tokenizer
    from transformers import AutoTokenizer

    from qa_bot.reader import PassageReader, run_session

    out_dir.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        module = assemble(spec, weights)
        module.bert.set_attn_implementation(READER_ATTENTION)
        hf_tokenizer = AutoTokenizer.from_pretrained(resolve_model_path(spec.base_model))
        Tokenizer.from_str(hf_tokenizer.backend_tokenizer.to_str()).save(str(tmp / TOKENIZER_FILE))
        _export_graph(module, hf_tokenizer, tmp / "reader.fp32.onnx", opset=opset, span=spec.span)
        float_nodes = first_layers_products(tmp / "reader.fp32.onnx", FLOAT_LAYERS)
        _quantize(tmp / "reader.fp32.onnx", tmp / GRAPH_FILE, keep_float=float_nodes)
        (tmp / "reader.fp32.onnx").unlink()
        tokenizer = Tokenizer.from_file(str(tmp / TOKENIZER_FILE))
        drift = _export_drift(module, tokenizer, spec, tmp / GRAPH_FILE)
        if not drift <= EXPORT_TOLERANCE:
            raise ReaderError(
                f"the reader's int8 export differs from torch by {drift:.3f} on average"
            )
        check = encode_pairs(tokenizer, spec, CHECK_PAIR[0], [CHECK_PAIR[1]])
        got = float(run_session(tmp / GRAPH_FILE, check)[0])
        (tmp / CONFIG_FILE).write_text(
            json.dumps({**spec.to_json(), "check_logit": got}, indent=1) + "\n", encoding="utf-8"
        )
        PassageReader(tmp).verify()
        _replace_dir(tmp, out_dir)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out_dir


#: How a traced encoder names the nodes of its layer N ("/bert/encoder/layer.0/...").
_LAYER_NODE = re.compile(r"/encoder/layer\.(\d+)/")


def first_layers_products(graph: Path, layers: int) -> list[str]:
    """The matrix products of the graph's first ``layers`` encoder layers, by node name: what
    the int8 export keeps in fp32 (``onnx_embedding.FLOAT_LAYERS``)."""
    import onnx

    names = []
    for node in onnx.load(str(graph), load_external_data=False).graph.node:
        found = _LAYER_NODE.search(node.name)
        if node.op_type in ("MatMul", "Gemm") and found and int(found.group(1)) < layers:
            names.append(node.name)
    return names


def _export_drift(module: Any, tokenizer: Any, spec: ReaderSpec, graph: Path) -> float:
    """Mean absolute difference between the int8 graph's and torch's logits on the check pairs."""
    import torch

    from qa_bot.reader import run_session

    gaps = []
    for question, passage in EXPORT_CHECK_PAIRS:
        batch = encode_pairs(tokenizer, spec, question, [passage])
        with torch.no_grad():
            out = module(**{k: torch.from_numpy(v) for k, v in batch.items()})
        expected = float((out[0] if spec.span else out)[0])
        gaps.append(abs(float(run_session(graph, batch)[0]) - expected))
    return float(np.mean(gaps))


def _export_graph(module: Any, hf_tokenizer: Any, path: Path, *, opset: int, span: bool) -> None:
    """Trace the reader on a padded batch of pairs; batch and sequence axes stay dynamic."""
    names = ["input_ids", "attention_mask", "token_type_ids"]
    outputs = {"logit": {0: "batch"}}
    if span:
        outputs[SPAN_OUTPUT] = {0: "batch", 1: "sequence"}
    sample = hf_tokenizer(
        ["a question", "another"], ["a passage", "a longer one"], padding=True, return_tensors="pt"
    )
    trace_to_onnx(
        module,
        tuple(sample[n] for n in names),
        path,
        input_names=names,
        output_names=list(outputs),
        dynamic_axes={**{n: {0: "batch", 1: "sequence"} for n in names}, **outputs},
        opset=opset,
    )


def ensure_reader_export(index_dir: Path, trained: Path, *, verify: bool = True) -> bool:
    """Export the reader trained in ``trained`` into ``index_dir`` unless its export is there
    (a sound one, when ``verify``); return whether one was made. A failure is logged, never
    raised: questions are answered without the reader."""
    from qa_bot.reader import WEIGHTS_FILE, load_spec, open_reader, reader_dir

    folder = reader_dir(index_dir, trained)
    if folder.is_dir() and (not verify or open_reader(index_dir, trained) is not None):
        return False
    try:
        export_reader(load_spec(trained), trained / WEIGHTS_FILE, folder)
    except (QABotError, OSError) as exc:
        logger.warning("no passage reader, questions are answered without it: %s", exc)
        return False
    for old in folder.parent.glob("reader-*"):
        # Exports of readers since retrained or unnamed: 23 MB each. A process still reading
        # one keeps its graph in memory; the next question of any process uses the new one.
        if old != folder and old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
    return True
