"""The maintainer's metadata file (``seeds/metadata.toml``): one table per article file.

Example::

    ["004_6573c82807c02ec9.txt"]
    date = 2016-09-22
    url = "https://tass.com/politics/901234"

One careless edit must not stop the answers, so the file is read table by table: a table that
does not parse, or holds a value of the wrong kind, is reported with its line and key and left
out, while the others apply. The files a broken table describes keep the metadata they were
indexed with (see :meth:`Sidecar.holds`); ``qa-bot index`` reports the problems as errors,
questions as warnings. Values are checked by a pydantic model, so nothing but text, a date or
an http(s) address reaches the index.
"""

from __future__ import annotations

import datetime as dt
import re
import tomllib
from collections.abc import Collection
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    AnyHttpUrl,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StrictStr,
    TypeAdapter,
    ValidationError,
)

from qa_bot.seed_files import read_inside

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_URL = TypeAdapter(AnyHttpUrl)


def _one_line(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be empty")
    if _CONTROL.search(value):
        raise ValueError("must be one line of text, without control characters")
    return value


def _http_address(value: str) -> str:
    try:
        _URL.validate_python(value)
    except ValidationError:
        raise ValueError(f"must be an http(s) address, got {value!r}") from None
    return _one_line(value)


def _as_date(value: Any) -> Any:
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, str):
        try:
            return dt.date.fromisoformat(value.strip())
        except ValueError:
            raise ValueError(f"must be a date written YYYY-MM-DD, got {value!r}") from None
    if not isinstance(value, dt.date):
        raise ValueError(f"must be a date written YYYY-MM-DD, got {value!r}")
    return value


Text = Annotated[StrictStr, AfterValidator(_one_line)]


class SidecarEntry(BaseModel):
    """What the maintainer may state about one article; every field optional."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    title: Text | None = None
    outlet: Text | None = None
    date: Annotated[dt.date, BeforeValidator(_as_date)] | None = None
    date_text: Text | None = None
    url: Annotated[StrictStr, AfterValidator(_http_address)] | None = None


SIDECAR_FIELDS = tuple(SidecarEntry.model_fields)


@dataclass(frozen=True)
class SidecarProblem:
    """One thing wrong in the metadata file. Not ``fatal``: a key that matches no file."""

    line: int | None
    key: str | None
    message: str
    fatal: bool = True

    def describe(self) -> str:
        where = [f"line {self.line}"] if self.line else []
        if self.key is not None:
            where.append(f"[{_quoted(self.key)}]")
        return (" ".join(where) + ": " if where else "") + self.message


@dataclass(frozen=True)
class Sidecar:
    """The entries that could be read, and what was wrong with the rest."""

    entries: dict[str, dict[str, Any]] = field(default_factory=dict)
    problems: tuple[SidecarProblem, ...] = ()
    #: Keys whose tables are broken: their files keep the metadata they were indexed with.
    held: frozenset[str] = frozenset()
    #: The file could not be read at all (unsafe, not UTF-8, a table with no readable name).
    all_held: bool = False

    def holds(self, rel: str) -> bool:
        """The file's entry is broken, so its indexed metadata stands until the entry is fixed."""
        return self.all_held or rel in self.held

    @property
    def errors(self) -> tuple[SidecarProblem, ...]:
        return tuple(p for p in self.problems if p.fatal)


def _quoted(key: str) -> str:
    return '"' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'


def load_sidecar(
    seeds_dir: Path,
    name: str,
    *,
    known: Collection[str] | None = None,
    limit: int = 20_000_000,
    follow_outside: bool = False,
) -> Sidecar:
    """Read the metadata file by the seeds folder's rules (a regular file inside it); keys
    are checked against ``known`` (the files found in the folder) when given."""
    try:
        raw = read_inside(seeds_dir, name, limit, follow_outside=follow_outside)
    except OSError as exc:
        return _unreadable(str(exc.strerror or exc))
    if raw is None:
        return Sidecar()
    if len(raw) > limit:
        return _unreadable(f"larger than {limit:,} bytes: not read")
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        return _unreadable(f"not UTF-8 text (byte {exc.start}): not read")
    return parse_sidecar(text, known)


def _unreadable(reason: str) -> Sidecar:
    return Sidecar(problems=(SidecarProblem(None, None, reason),), all_held=True)


#: A table header line: ``["a.txt"]``, ``[a]``; ``[[...]]`` (arrays of tables) is not one.
_HEADER = re.compile(r"^\s*\[(?!\[)")
_TOML_LINE = re.compile(r"\(at line (\d+), column \d+\)")


def parse_sidecar(text: str, known: Collection[str] | None = None) -> Sidecar:
    """Parse the metadata file table by table (see the module's docstring)."""
    entries: dict[str, dict[str, Any]] = {}
    problems: list[SidecarProblem] = []
    held: set[str] = set()
    first_seen: dict[str, int] = {}
    all_held = False
    for start, lines in _sections(text.splitlines()):
        try:
            data = tomllib.loads("\n".join(lines))
        except tomllib.TOMLDecodeError as exc:
            line, message = _toml_error(exc, start, lines)
            key = _header_key(lines[0]) if _HEADER.match(lines[0]) else None
            problems.append(SidecarProblem(line, key, message))
            if key is None:
                all_held = True
            else:
                held.add(key)
            continue
        for key, value in data.items():
            line = _line_of(lines, start, key, None)
            if key in first_seen:
                problems.append(
                    SidecarProblem(line, key, f"given twice (first at line {first_seen[key]})")
                )
                held.add(key)
                entries.pop(key, None)
                continue
            first_seen[key] = line
            entry = _entry(value, key, lines, start, problems)
            if entry is None:
                held.add(key)
            else:
                entries[key] = entry
    if known is not None:
        problems.extend(_unmatched(first_seen, set(known)))
    return Sidecar(entries, tuple(problems), frozenset(held), all_held)


def _sections(lines: list[str]) -> list[tuple[int, list[str]]]:
    """The file cut before each table header: (number of its first line, its lines)."""
    sections: list[tuple[int, list[str]]] = [(1, [])]
    for number, line in enumerate(lines, 1):
        if _HEADER.match(line):
            sections.append((number, []))
        sections[-1][1].append(line)
    return [(start, body) for start, body in sections if any(s.strip() for s in body)]


def _toml_error(exc: tomllib.TOMLDecodeError, start: int, lines: list[str]) -> tuple[int, str]:
    """The line of a syntax error in the whole file ("at end of document": the last line
    written, where an unclosed string or array began at the latest)."""
    found = _TOML_LINE.search(str(exc))
    if found:
        line = start + int(found.group(1)) - 1
    else:
        written = [i for i, text in enumerate(lines) if text.strip()]
        line = start + (written[-1] if written else 0)
    message = re.sub(r"\s*\((?:at line \d+, column \d+|at end of document)\)", "", str(exc))
    return line, f"not valid TOML: {message.strip()}"


def _header_key(line: str) -> str | None:
    try:
        return next(iter(tomllib.loads(line)), None)
    except tomllib.TOMLDecodeError:
        return None


def _line_of(lines: list[str], start: int, key: str, field_name: str | None) -> int:
    """The line a key (or one field of its table) is written on, for the messages."""
    names = [re.escape(n) for n in ([field_name] if field_name else [key])]
    pattern = re.compile(r"^\s*\[?\s*(?:\"|')?(?:" + "|".join(names) + r")(?:\"|')?\s*[=\].]")
    for offset, line in enumerate(lines):
        if pattern.match(line):
            return start + offset
    return start


def _entry(
    value: Any, key: str, lines: list[str], start: int, problems: list[SidecarProblem]
) -> dict[str, Any] | None:
    line = _line_of(lines, start, key, None)
    if not isinstance(value, dict):
        problems.append(
            SidecarProblem(line, key, f"must be a table of {', '.join(SIDECAR_FIELDS)}")
        )
        return None
    nested = [k for k, v in value.items() if isinstance(v, dict)]
    if nested:
        dotted = f"{key}.{nested[0]}"
        problems.append(
            SidecarProblem(
                line, key, f'a file name with a dot must be quoted: ["{dotted}"], not [{dotted}]'
            )
        )
        return None
    try:
        entry = SidecarEntry.model_validate(value)
    except ValidationError as exc:
        for error in exc.errors():
            name = str(error["loc"][0]) if error["loc"] else ""
            message = _field_message(error, name)
            field_line = _line_of(lines, start, key, name) if name else line
            problems.append(SidecarProblem(field_line, key, message))
        return None
    return entry.model_dump(exclude_none=True)


def _field_message(error: Any, name: str) -> str:
    if error["type"] == "extra_forbidden":
        return f"unknown field “{name}” (known: {', '.join(SIDECAR_FIELDS)})"
    message = str(error["msg"]).removeprefix("Value error, ")
    if error["type"] == "string_type":
        message = f"must be text in quotes, got {error['input']!r}"
    return f"{name}: {message}"


def _unmatched(keys: dict[str, int], known: set[str]) -> list[SidecarProblem]:
    problems: list[SidecarProblem] = []
    for key, line in keys.items():
        if key in known:
            continue
        parts = PurePosixPath(key).parts
        if key.startswith("/") or ".." in parts:
            why = "points outside the seeds folder; keys are file paths inside it"
        else:
            why = "matches no file in the seeds folder (keys are paths like “sub/a.txt”)"
        problems.append(SidecarProblem(line, key, f"{why}: not applied", fatal=False))
    return problems


def sidecar_fingerprint(entry: dict[str, Any] | None) -> str:
    return "" if not entry else repr(sorted((k, str(v)) for k, v in entry.items()))
