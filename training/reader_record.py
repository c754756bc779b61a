"""``reader.json`` as the training scripts write it, and the record it keeps of how the reader
was made (``ReaderSpec.provenance``): each epoch's record names the record of the reader it
started from (``"base"``), back to ``train_reader.py``'s. ``train_reader.py`` and
``tune_reader.py`` write it; ``train_quote.py`` reads the writers trained on from it.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

from qa_bot.reader import SPEC_FILE, ReaderSpec

#: What the record says of the epoch that made the weights, and what a record written before
#: it said so means (``--join-only`` copies it from the weights' record).
EPOCH_RECORD = {
    "pairs": 0,
    "replay": 0,
    "removed_weight": 1.0,
    "masked": False,
    "swapped": False,
    "news": False,
    "xquad": 0,
    "reorder": 0,
    "distilled": None,
}


def epoch_writers(record: dict) -> tuple[str, ...]:
    """The writers whose questions the epoch of ``record`` read (none for a record that
    names none)."""
    writers = record.get("writers")
    return tuple(writers.get("train", ())) if isinstance(writers, dict) else ()


def trained_writers(provenance: dict | None) -> tuple[str, ...]:
    """Every writer a reader's epochs trained on, from its record back through its bases'."""
    found: list[str] = []
    while isinstance(provenance, dict):
        found += [w for w in epoch_writers(provenance) if w not in found]
        provenance = provenance.get("base")
    return tuple(found)


def epoch_chain(record: dict | None) -> dict | None:
    """``record`` with the records of ``--join-only`` refits left out of its chain of bases. A
    refit writes its weights' epoch record again (EPOCH_RECORD, the writers trained on) over
    the record it replaces, so a base whose epoch record equals its successor's made the same
    weights (a record written before EPOCH_RECORD named a key says its default); kept, the
    chain grew by a whole record at every refit."""
    if not isinstance(record, dict) or "base" not in record:
        return record

    def epoch(r: dict) -> tuple:
        told = (r.get(key, default) for key, default in EPOCH_RECORD.items())
        return (r.get("script"), epoch_writers(r), *told)

    base = record["base"]
    while isinstance(base, dict) and epoch(base) == epoch(record):
        base = base.get("base")
    return {**record, "base": epoch_chain(base)}


def write_spec(folder: Path, spec: ReaderSpec, provenance: dict) -> Path:
    """The reader's spec, with how it was made, written beside its weights; returns its path."""
    path = folder / SPEC_FILE
    path.write_text(spec_text(replace(spec, provenance=provenance).to_json()) + "\n", "utf-8")
    return path


def spec_text(value: object, depth: int = 0) -> str:
    """``value`` as indented JSON with each list of plain values (a model's weights, a tree's
    nodes) on one line: one number a line made the boosted trees 30,000 lines of diff."""
    pad, inner = " " * depth, " " * (depth + 1)
    if isinstance(value, dict) and value:
        items = [f"{inner}{json.dumps(k)}: {spec_text(v, depth + 1)}" for k, v in value.items()]
        return "{\n" + ",\n".join(items) + f"\n{pad}}}"
    if isinstance(value, list) and any(isinstance(v, (dict, list)) for v in value):
        items = [f"{inner}{spec_text(v, depth + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + f"\n{pad}]"
    return json.dumps(value)
