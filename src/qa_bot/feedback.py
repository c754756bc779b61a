"""Readers' feedback: a vote (good or bad) on one answer, kept so that complaints become test
cases (``qa-bot feedback export``, read by ``qa-bot eval``) and can be counted
(``qa-bot feedback stats``).

A vote keeps what was asked and what was shown: the question, the quotes with their article,
outlet and date, whether the question was answered or declined, the index generation, the time
and the reader's optional note. Never who: no name, and a chat only as a keyed hash
(HMAC-SHA256 with a secret salt), enough to tell one complaining chat from many, not which.

The votes are one SQLite file, one row per rated answer. Each vote is a transaction, so a
second press on the same answer changes its row instead of adding another, and the bot's
worker threads (or two processes) never leave a half-written record.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import hashlib
import hmac
import json
import os
import re
import secrets
import sqlite3
import tempfile
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any, Literal

from qa_bot.errors import QABotError
from qa_bot.files import atomic_write_text
from qa_bot.models import CitedPassage, Rated
from qa_bot.settings import Settings

Vote = Literal["good", "bad"]
VOTES: tuple[Vote, ...] = ("good", "bad")
#: What a vote did to its answer's record: a first vote, another vote or note, or nothing new.
Outcome = Literal["new", "changed", "same"]
#: The class of exported questions (``qa-bot eval`` reports them on their own line).
FEEDBACK_CLASS = "feedback"

_SCHEMA = """
CREATE TABLE IF NOT EXISTS feedback (
    id TEXT PRIMARY KEY,
    at TEXT NOT NULL,
    vote TEXT NOT NULL CHECK (vote IN ('good', 'bad')),
    note TEXT NOT NULL DEFAULT '',
    front TEXT NOT NULL DEFAULT '',
    chat TEXT,
    question TEXT NOT NULL,
    searched TEXT NOT NULL DEFAULT '',
    answered INTEGER NOT NULL,
    generation TEXT,
    citations TEXT NOT NULL
)
"""
_COLUMNS = "id, at, vote, note, front, chat, question, searched, answered, generation, citations"


class FeedbackError(QABotError):
    """The feedback file cannot be read or written, or holds nothing to do what was asked."""

    exit_code = 2


@dataclass(frozen=True)
class Feedback:
    """One stored vote: the answer, the vote, when (UTC, ISO 8601), the reader's note, the
    chat's hash (None from the terminal) and the front it came from."""

    rated: Rated
    vote: Vote
    at: str
    note: str = ""
    chat: str | None = None
    front: str = ""


class FeedbackLog:
    """The votes in one SQLite file (created on the first vote, readable by its owner only)."""

    def __init__(self, path: Path, salt: str | None = None):
        self.path = path
        self._salt = salt.encode() if salt else None

    @classmethod
    def from_settings(cls, settings: Settings) -> FeedbackLog:
        secret = settings.feedback.salt
        return cls(settings.feedback_path(), secret.get_secret_value() if secret else None)

    @property
    def salt_path(self) -> Path:
        """Where the salt made on first use is kept, when none comes from the environment."""
        return self.path.with_name(self.path.name + ".salt")

    def chat_hash(self, chat_id: int | str) -> str:
        """The chat as stored: a keyed hash that cannot be reversed without the salt (chat ids
        are small numbers; an unkeyed hash of one could be found by trying them all)."""
        if self._salt is None:
            self._salt = _private_secret(self.salt_path)
        return hmac.new(self._salt, str(chat_id).encode(), hashlib.sha256).hexdigest()[:32]

    def record(
        self,
        rated: Rated,
        vote: Vote,
        *,
        note: str = "",
        chat_id: int | str | None = None,
        front: str = "",
        now: dt.datetime | None = None,
    ) -> Outcome:
        """Store a vote on ``rated``; a vote on an answer already rated replaces the earlier
        one (a note, once given, stays unless a new one is given)."""
        if vote not in VOTES:
            raise ValueError(f"a vote is one of {VOTES}, not {vote!r}")
        at = (now or dt.datetime.now(dt.UTC)).astimezone(dt.UTC).isoformat(timespec="seconds")
        note = " ".join(note.split())
        chat = self.chat_hash(chat_id) if chat_id is not None else None
        with self._transaction() as db:
            row = db.execute("SELECT vote, note FROM feedback WHERE id = ?", (rated.id,)).fetchone()
            if row is not None and row[0] == vote and note in ("", row[1]):
                return "same"
            db.execute(
                f"INSERT INTO feedback ({_COLUMNS}) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) "
                "ON CONFLICT (id) DO UPDATE SET vote = excluded.vote, at = excluded.at, "
                "note = CASE WHEN excluded.note != '' THEN excluded.note ELSE note END",
                (
                    rated.id,
                    at,
                    vote,
                    note,
                    front,
                    chat,
                    rated.question,
                    rated.searched,
                    int(rated.answered),
                    rated.generation,
                    json.dumps([asdict(c) for c in rated.citations], ensure_ascii=False),
                ),
            )
        return "new" if row is None else "changed"

    def votes(self, *, since: dt.date | None = None) -> list[Feedback]:
        """Every vote, oldest first (``since``: only those given on or after that day, UTC)."""
        if not self.path.exists():
            return []
        try:
            with contextlib.closing(sqlite3.connect(self.path, timeout=30)) as db:
                db.execute(_SCHEMA)
                rows = db.execute(f"SELECT {_COLUMNS} FROM feedback ORDER BY at, rowid").fetchall()
        except sqlite3.Error as exc:
            raise FeedbackError(f"cannot read the feedback in {self.path}: {exc}") from exc
        found = [_from_row(row) for row in rows]
        if since is not None:
            found = [f for f in found if f.at[:10] >= since.isoformat()]
        return found

    def export(
        self, *, since: dt.date | None = None, approvals: bool = False
    ) -> list[dict[str, Any]]:
        """The complaints as question-file lines (:func:`export_questions`)."""
        return export_questions(self.votes(since=since), approvals=approvals)

    def write_export(
        self, target: Path, *, since: dt.date | None = None, approvals: bool = False
    ) -> int:
        """Write :meth:`export` to ``target`` (whole or not at all); the lines written.
        Nothing to export is an error: an empty question file is no test."""
        lines = self.export(since=since, approvals=approvals)
        if not lines:
            what = "votes" if approvals else "complaints (👎)"
            when = f" since {since}" if since else ""
            raise FeedbackError(f"no {what}{when} to export in {self.path}")
        text = "".join(json.dumps(line, ensure_ascii=False) + "\n" for line in lines)
        try:
            atomic_write_text(target, text)
        except OSError as exc:
            raise FeedbackError(f"cannot write {target}: {_reason(exc)}") from exc
        return len(lines)

    def stats(self, *, since: dt.date | None = None, recent: int = 5) -> FeedbackStats:
        """The votes counted (:func:`summarize`)."""
        return summarize(self.votes(since=since), recent=recent)

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One write, all or nothing, one writer at a time (``BEGIN IMMEDIATE``), on disk
        before it returns (SQLite's default ``synchronous = FULL`` in rollback-journal mode)."""
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            if not self.path.exists():  # created owner-only: it quotes what readers asked
                os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT, 0o600))
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except (OSError, sqlite3.Error) as exc:
            raise FeedbackError(f"cannot write feedback to {self.path}: {_reason(exc)}") from exc
        try:
            db.execute(_SCHEMA)
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")
        except sqlite3.Error as exc:
            raise FeedbackError(f"cannot write feedback to {self.path}: {exc}") from exc
        finally:
            db.close()


def _reason(exc: BaseException) -> str:
    return (exc.strerror if isinstance(exc, OSError) else None) or str(exc)


def _from_row(row: Sequence[Any]) -> Feedback:
    at, vote, note, front, chat, question, searched, answered, generation, citations = row[1:]
    rated = Rated(
        id=row[0],
        question=question,
        answered=bool(answered),
        citations=tuple(CitedPassage(**c) for c in json.loads(citations)),
        generation=generation,
        searched=searched,
    )
    return Feedback(rated, vote, at, note, chat, front)


def _private_secret(path: Path) -> bytes:
    """The salt kept beside the votes: read, or made once (random, owner-only). It is written
    whole under a temporary name and linked into place, so a process that loses the race to
    make it reads the winner's."""
    try:
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)  # mode 0600
            try:
                with os.fdopen(fd, "w", encoding="ascii") as handle:
                    handle.write(secrets.token_hex(32) + "\n")
                    handle.flush()
                    os.fsync(handle.fileno())
                with contextlib.suppress(FileExistsError):
                    os.link(tmp, path)
            finally:
                os.unlink(tmp)
        salt = path.read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError) as exc:
        raise FeedbackError(f"cannot use the feedback salt {path}: {_reason(exc)}") from exc
    if not salt:
        raise FeedbackError(f"the feedback salt {path} is empty; delete it to make a new one")
    return salt.encode()


# --- complaints as test cases ------------------------------------------------------------------

_QUOTED = re.compile(r"[\"“”«»]([^\"“”«»]+)[\"“”«»]")


def note_answers(note: str) -> list[str]:
    """The answers a reader's note gives: the parts in double quotes when there are any
    (``it should say "62 troops"``), else the whole note."""
    quoted = [m.strip() for m in _QUOTED.findall(note) if m.strip()]
    if quoted:
        return quoted
    return [note.strip()] if note.strip() else []


def as_question(item: Feedback) -> dict[str, Any]:
    """One vote as a line of a question file for ``qa-bot eval``.

    A 👎 carries no right answer, so it becomes a question that the same answer fails: the
    quotes the reader rejected (``rejected``; the first quote must not be one of them), and
    for a declined question, that it is answered. A note gives the answer to find
    (:func:`note_answers`). A 👍 keeps what was approved: its first quote (``kept``), or, for
    a declined question, declining (``unanswerable``).
    """
    rated = item.rated
    first = rated.citations[0] if rated.citations else None
    line: dict[str, Any] = {
        "id": f"feedback-{rated.id[:12]}",
        "question": rated.searched or rated.question,
        "answers": note_answers(item.note) if item.vote == "bad" else [],
        "docs": [PurePosixPath(first.doc).name] if item.vote == "good" and first else [],
        "unanswerable": item.vote == "good" and not rated.answered,
        "class": FEEDBACK_CLASS,
        "vote": item.vote,
        "verdict": rated.verdict,
    }
    if item.vote == "bad" and rated.answered:
        line["rejected"] = [c.quote for c in rated.citations[:1]]
    if item.vote == "good" and first is not None:
        line["kept"] = [first.quote]
    extra = {"note": item.note, "asked": rated.question, "at": item.at}
    line |= {k: v for k, v in extra.items() if v} | {"generation": rated.generation}
    return line


def export_questions(votes: Sequence[Feedback], *, approvals: bool = False) -> list[dict[str, Any]]:
    """The complaints (and with ``approvals`` the 👍 too) as question-file lines."""
    return [as_question(v) for v in votes if v.vote == "bad" or approvals]


# --- counting ----------------------------------------------------------------------------------


@dataclass
class FeedbackStats:
    """What ``qa-bot feedback stats`` prints: votes by kind, the latest complaints."""

    votes: int = 0
    good: int = 0
    bad: int = 0
    chats: int = 0
    #: Each of these maps a key to {"good": n, "bad": m}; an answer counts once per outlet or
    #: document it quotes.
    by_verdict: dict[str, dict[str, int]] = field(default_factory=dict)
    by_outlet: dict[str, dict[str, int]] = field(default_factory=dict)
    by_document: dict[str, dict[str, int]] = field(default_factory=dict)
    by_generation: dict[str, dict[str, int]] = field(default_factory=dict)
    recent_complaints: list[dict[str, Any]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


def _tally(pairs: Iterator[tuple[str, str]]) -> dict[str, dict[str, int]]:
    counts = Counter(pairs)
    keys = sorted({k for k, _ in counts}, key=lambda k: (-counts[k, "bad"], -counts[k, "good"], k))
    return {k: {"good": counts[k, "good"], "bad": counts[k, "bad"]} for k in keys}


def summarize(votes: Sequence[Feedback], *, recent: int = 5) -> FeedbackStats:
    """Count the votes; the ``recent`` latest complaints in full."""
    complaints = [v for v in votes if v.vote == "bad"]
    return FeedbackStats(
        votes=len(votes),
        good=len(votes) - len(complaints),
        bad=len(complaints),
        chats=len({v.chat for v in votes if v.chat}),
        by_verdict=_tally((v.rated.verdict, v.vote) for v in votes),
        by_outlet=_tally(
            (outlet, v.vote)
            for v in votes
            for outlet in dict.fromkeys(c.outlet or "outlet unknown" for c in v.rated.citations)
        ),
        by_document=_tally(
            (doc, v.vote) for v in votes for doc in dict.fromkeys(c.doc for c in v.rated.citations)
        ),
        by_generation=_tally((v.rated.generation or "unknown", v.vote) for v in votes),
        recent_complaints=[
            {
                "at": v.at,
                "question": v.rated.question,
                "verdict": v.rated.verdict,
                "first_quote": v.rated.citations[0].quote if v.rated.citations else None,
                "doc": v.rated.citations[0].doc if v.rated.citations else None,
                "note": v.note,
            }
            for v in reversed(complaints[-recent:] if recent else [])
        ],
    )


__all__ = [
    "FEEDBACK_CLASS",
    "VOTES",
    "Feedback",
    "FeedbackError",
    "FeedbackLog",
    "FeedbackStats",
    "Outcome",
    "Vote",
    "as_question",
    "export_questions",
    "note_answers",
    "summarize",
]
