"""A pickle of rows kept with the digest of what made them, so that a script reads it back only
when the same inputs would make the same rows (weights, question files, which questions).

Asking every question again takes minutes; a refit over the same rows takes seconds. The code
that makes the rows is not in the key: delete the file when it changes.
"""

from __future__ import annotations

import hashlib
import pickle
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


def digest(files: Iterable[Path], parts: Iterable[str]) -> str:
    """The key of rows made from ``files`` (their bytes) and ``parts`` (names, ids, ...)."""
    hashed = hashlib.sha256()
    for file in files:
        hashed.update(file.read_bytes())
    for part in parts:
        hashed.update(part.encode() + b"\0")
    return hashed.hexdigest()


def keyed(path: Path | None, key: str, make: Callable[[], T]) -> T:
    """What ``path`` holds when it was written under ``key``, else ``make()`` (written to
    ``path`` under ``key`` when a path is given)."""
    if path is not None and path.is_file():
        stored = pickle.loads(path.read_bytes())
        if isinstance(stored, dict) and stored.get("key") == key:
            print(f"rows read from {path}", file=sys.stderr)
            return stored["rows"]
        print(f"{path} holds rows of other inputs: making them again", file=sys.stderr)
    rows = make()
    if path is not None:
        path.write_bytes(pickle.dumps({"key": key, "rows": rows}))
    return rows
