"""Process-wide settings that only an entry point may make (the CLI, the bot, the benchmarks,
the test session), before FAISS or torch is imported.

FAISS and torch each bring an OpenMP runtime whose idle threads spin, waiting for work, by
default. On a machine with few cores the two runtimes then take the CPU from each other and
embedding slows down several times over (``benchmarks/README.md``, "OpenMP threads waiting
passively"); passive waiting costs an HNSW build a few per cent. A runtime reads the setting
once, when it is loaded, which is why it is made here and not where FAISS is used.
"""

from __future__ import annotations

import os

#: OpenMP's wait policy for the runtimes loaded after :func:`prepare_process`.
OMP_WAIT_POLICY = "PASSIVE"


def prepare_process() -> None:
    """Let idle OpenMP threads sleep instead of spinning; an explicit setting wins."""
    os.environ.setdefault("OMP_WAIT_POLICY", OMP_WAIT_POLICY)
