"""What the last build skipped, remembered so that a skipped file is not "changed" for ever.

A file that cannot be indexed (empty, binary, too large, a copy of another) is not in the
manifest, so at a glance it always differs from the index: every question would refresh the
index for it, and ``status`` would list it as changed. Its size, modification time and reason
are kept in ``skipped.json`` beside the index instead; until one of them changes, the file is
known to be skipped and nothing is done about it. The record is only a cache: a missing or
unreadable one costs one refresh, never a wrong answer.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import asdict, dataclass
from pathlib import Path

from qa_bot.files import atomic_write_text
from qa_bot.seed_files import SourceFile

STATE_FILE = "skipped.json"
STATE_VERSION = 1


@dataclass(frozen=True)
class SkippedState:
    """A skipped file as it was when it was skipped, and why."""

    size: int
    mtime_ns: int
    reason: str

    def matches(self, source: SourceFile) -> bool:
        return (self.size, self.mtime_ns) == (source.size, source.mtime_ns)


def load_skipped(index_dir: Path, max_file_bytes: int) -> dict[str, SkippedState]:
    """The remembered skipped files; none when the record is missing, unreadable, or was
    made under another size limit (a file "too large" then may fit now)."""
    try:
        data = json.loads((index_dir / STATE_FILE).read_text(encoding="utf-8"))
        if data.get("version") != STATE_VERSION or data.get("max_file_bytes") != max_file_bytes:
            return {}
        return {rel: SkippedState(**state) for rel, state in data["files"].items()}
    except (OSError, ValueError, TypeError, KeyError, AttributeError):
        return {}


def save_skipped(index_dir: Path, max_file_bytes: int, states: dict[str, SkippedState]) -> None:
    """Remember ``states`` (written only when they differ from the record on disk; nothing is
    written when nothing was skipped and there is no record yet)."""
    exists = (index_dir / STATE_FILE).exists()
    if (not states and not exists) or (
        exists and states == load_skipped(index_dir, max_file_bytes)
    ):
        return
    data = {
        "version": STATE_VERSION,
        "max_file_bytes": max_file_bytes,
        "files": {rel: asdict(state) for rel, state in sorted(states.items())},
    }
    # A cache: an index folder that cannot take it (read-only) only costs a refresh later.
    with contextlib.suppress(OSError):
        atomic_write_text(index_dir / STATE_FILE, json.dumps(data, indent=1) + "\n")
