"""Search filters: which outlets and publication dates a search may draw on, as people type them.

One module for the filter types and their parsing, so the CLI's ``--since``/``--until``, the
chat loop's ``:outlet``/``:dates`` and the bot's ``/outlet``/``/dates`` read them the same way,
and retrieval only has to apply them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable
from dataclasses import dataclass

from qa_bot.models import ArticleMeta


@dataclass(frozen=True)
class SearchFilters:
    """Restrict a search to some outlets and/or a publication date range (inclusive).

    Articles without a stated full date are excluded by a date filter: we cannot say they fall
    inside it.
    """

    outlets: tuple[str, ...] = ()
    since: dt.date | None = None
    until: dt.date | None = None

    @property
    def active(self) -> bool:
        return bool(self.outlets or self.since or self.until)

    def describe(self) -> str:
        parts = []
        if self.outlets:
            parts.append("from " + " or ".join(self.outlets))
        if self.since and self.until:
            parts.append(f"published {self.since} to {self.until}")
        elif self.since:
            parts.append(f"published on or after {self.since}")
        elif self.until:
            parts.append(f"published on or before {self.until}")
        return ", ".join(parts)

    def admits(self, meta: ArticleMeta) -> bool:
        if self.outlets and (meta.outlet or "").casefold() not in {
            o.casefold() for o in self.outlets
        }:
            return False
        if self.since or self.until:
            if meta.date is None:
                return False
            if self.since and meta.date < self.since:
                return False
            if self.until and meta.date > self.until:
                return False
        return True


_PERIOD = re.compile(r"(\d{4})(?:-(\d{1,2})(?:-(\d{1,2}))?)?")


def date_bound(text: str, *, end: bool = False) -> dt.date:
    """A date filter's bound from "2016-09-24", "2016-09" or "2016".

    A month or a year stands for its first day, or with ``end`` its last, so "since 2016-09
    until 2016-09" is all of September. Raises ValueError with a message for people.
    """
    match = _PERIOD.fullmatch(text.strip())
    if match is None:
        raise ValueError(f"“{text}” is not a date: write 2016-09-24, 2016-09 or 2016")
    year, month, day = (int(g) if g else None for g in match.groups())
    assert year is not None
    try:
        if month is None:
            return dt.date(year, 12, 31) if end else dt.date(year, 1, 1)
        if day is None:
            first = dt.date(year, month, 1)
            if not end:
                return first
            following = dt.date(year + month // 12, month % 12 + 1, 1)
            return following - dt.timedelta(days=1)
        return dt.date(year, month, day)
    except ValueError:
        raise ValueError(f"“{text}” is not a real date") from None


#: An open end of a typed date range ("2016-09-20 -").
_OPEN = frozenset({"-", "…", "...", "*", "any"})

#: What lifts an outlet or date restriction in the fronts ("/outlet all", ":dates off").
LIFT_WORDS = frozenset({"all", "any", "off", "none", "*"})


def find_outlet(name: str, outlets: Iterable[str]) -> str | None:
    """The indexed outlet a person means by ``name`` (any case), or None."""
    return next((o for o in outlets if o.casefold() == name.casefold()), None)


def parse_date_range(argument: str) -> tuple[dt.date | None, dt.date | None]:
    """A date range as people type it (the bot's ``/dates``, the chat's ``:dates``): one period
    (a day, month or year) or two bounds, either of which may be open ("-"); "to" or ".."
    between them is allowed ("..2016-09-30": up to then). Raises ValueError with a message."""
    if ".." in argument and "..." not in argument:
        words = [part.strip() or "-" for part in argument.split("..", 1)]
    else:
        words = [w for w in argument.split() if w.casefold() != "to"]
    if len(words) == 1:
        if words[0] in _OPEN:
            return None, None
        return date_bound(words[0]), date_bound(words[0], end=True)
    if len(words) != 2:
        raise ValueError("give one period or two dates")
    since = None if words[0] in _OPEN else date_bound(words[0])
    until = None if words[1] in _OPEN else date_bound(words[1], end=True)
    if since and until and since > until:
        raise ValueError(f"{since} is after {until}: no date is in between")
    return since, until


def outlet_in_question(question: str, outlets: Iterable[str]) -> str | None:
    """The outlet a question names ("according to TASS", "what did RT report"), if any.

    Short all-caps names (RT, AP) must be written in capitals, so "rt" inside a word or the
    English word "art" never counts.
    """
    for outlet in sorted(outlets, key=len, reverse=True):
        flags = 0 if outlet.isupper() and len(outlet) <= 4 else re.IGNORECASE
        if re.search(rf"(?<![\w-]){re.escape(outlet)}(?![\w-])", question, flags):
            return outlet
    return None
