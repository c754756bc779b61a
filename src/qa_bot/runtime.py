"""Process-wide settings that only an entry point may make (the CLI, the bot, the benchmarks,
the test session): OpenMP's wait policy before FAISS or torch is imported, and how loudly a
store's client library logs.

FAISS and torch each bring an OpenMP runtime whose idle threads spin, waiting for work, by
default. On a machine with few cores the two runtimes then take the CPU from each other and
embedding slows down several times over (``benchmarks/README.md``, "OpenMP threads waiting
passively"); passive waiting costs an HNSW build a few per cent. A runtime reads the setting
once, when it is loaded, which is why it is made here and not where FAISS is used.
"""

from __future__ import annotations

import contextlib
import logging
import os
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from qa_bot.settings import StoreSettings

#: OpenMP's wait policy for the runtimes loaded after :func:`prepare_process`.
OMP_WAIT_POLICY = "PASSIVE"


def prepare_process() -> None:
    """Let idle OpenMP threads sleep instead of spinning; keep the libraries that export the
    models to ONNX from printing their own progress and advice (an explicit setting wins)."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
    # transformers draws a "Loading weights" bar when the reader is loaded for its export; it
    # reads this when it is imported, which is why it is set here.
    os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1")
    root = logging.getLogger()
    if not any(isinstance(f, QuantizerAdvice) for f in root.filters):
        root.addFilter(QuantizerAdvice())


class QuantizerAdvice(logging.Filter):
    """Drops onnxruntime's advice to pre-process a graph before quantizing it. The quantizer
    gives it on every int8 export, through the root logger (which it thereby configures), and
    it is meant for whoever writes the export: running the pre-processing would change the
    graph the reader's join was fitted on (benchmarks/README.md, "Sixteenth round")."""

    def filter(self, record: logging.LogRecord) -> bool:
        path = record.pathname.replace("\\", "/")
        advice = "onnxruntime/quantization/" in path and "pre-processing" in record.getMessage()
        return not advice


def quiet_store_client(store: StoreSettings) -> None:
    """With the Milvus store, keep pymilvus's logger to CRITICAL: it logs every failed call at
    ERROR before raising it, and qa-bot says what went wrong in its own words. pymilvus sets
    its loggers up when it is imported, so it is imported here first (only for Milvus)."""
    if store.backend != "milvus":
        return
    with contextlib.suppress(ImportError):  # opening the store says what to install
        import pymilvus  # noqa: F401

        logging.getLogger("pymilvus").setLevel(logging.CRITICAL)
