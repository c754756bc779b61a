"""File helpers shared across the core: crash-safe writes, text and JSON-lines reading, and the
one lock under which numpy array files are opened."""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ARRAY_READS = threading.Lock()


@contextlib.contextmanager
def reading_arrays() -> Iterator[None]:
    """Hold while numpy opens or reads an .npy/.npz file. numpy parses each array's header with
    ``ast.literal_eval``, and CPython 3.11 keeps the ast module's recursion counter shared by all
    threads (python/cpython#106905): a question answered while a rebuild opens the previous
    generation could fail with "AST constructor recursion depth mismatch"."""
    with ARRAY_READS:
        yield


def atomic_write_text(path: Path, text: str) -> None:
    """Write beside ``path`` and rename over it: readers see the old file or the new one,
    never half of one, whatever happens mid-write."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def read_lines(path: Path, error: type[Exception]) -> list[str]:
    """The lines of a UTF-8 text file; an unreadable or undecodable file raises ``error``
    naming the file, so a command can print it as one line."""
    try:
        return path.read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise error(f"cannot read {path}: {exc.strerror or exc}") from exc
    except UnicodeDecodeError as exc:
        raise error(f"{path} is not UTF-8 text") from exc


def read_jsonl(path: Path, error: type[Exception], what: str) -> list[tuple[int, Any]]:
    """The parsed lines of a JSON-lines file with their line numbers, blank lines skipped.

    Every failure (unreadable file, not UTF-8, a line that is not JSON) raises ``error`` with
    the file and line, worded as "not <what>", so each file format only checks its own fields.
    """
    parsed: list[tuple[int, Any]] = []
    for number, line in enumerate(read_lines(path, error), 1):
        if not line.strip():
            continue
        try:
            parsed.append((number, json.loads(line)))
        except ValueError as exc:
            raise error(f"{path}:{number}: not {what} ({exc})") from exc
    return parsed
