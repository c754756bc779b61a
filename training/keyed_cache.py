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


def keyed_groups(path: Path | None, keys: dict[str, str], make: Callable[[str], T]) -> dict[str, T]:
    """Each group's rows: those ``path`` holds under the group's key in ``keys``, else
    ``make(name)``, written back to ``path`` (when given) as soon as it is made. A question
    added to one group asks that group again, not every group."""
    held: dict[str, tuple[str, T]] = {}
    if path is not None and path.is_file():
        stored = pickle.loads(path.read_bytes())
        if isinstance(stored, dict) and "groups" in stored:
            held = stored["groups"]
        else:
            print(f"{path} holds rows in another layout: making them again", file=sys.stderr)
    groups: dict[str, T] = {}
    for name, key in keys.items():
        if name in held and held[name][0] == key:
            print(f"rows of {name} read from {path}", file=sys.stderr)
            groups[name] = held[name][1]
            continue
        groups[name] = make(name)
        if path is not None:
            held[name] = (key, groups[name])
            path.write_bytes(pickle.dumps({"groups": held}))
    return groups
