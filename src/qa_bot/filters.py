"""Search filters: which outlets and publication dates a search may draw on, as people type them.

One module for the filter types and their parsing, so the CLI's ``--since``/``--until``, the
chat loop's ``:outlet``/``:dates`` and the bot's ``/outlet``/``/dates`` read them the same way,
and retrieval only has to apply them.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace

from qa_bot.models import ArticleMeta
from qa_bot.text import STOPWORDS


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

    Short all-caps names (RT, AP) count in capitals, or in any case when the person typed the
    whole question without capitals ("whats the headline of the tass story"): their case then
    says nothing, and most people type that way. Whoever writes capitals elsewhere and "rt" in
    lowercase does not mean the outlet; nor does a stop word ("us") or a piece of a word ("art").
    """
    case_blind = not any(c.isupper() for c in question[1:])
    for outlet in sorted(outlets, key=len, reverse=True):
        short = outlet.isupper() and len(outlet) <= 4
        if short and not (case_blind and outlet.casefold() not in STOPWORDS):
            flags = 0
        else:
            flags = re.IGNORECASE
        if re.search(rf"(?<![\w-]){re.escape(outlet)}(?![\w-])", question, flags):
            return outlet
    return None


def without_outlet(question: str, outlet: str) -> str:
    """The question with the outlet's name taken out ("how many died per rt" -> "how many died
    per"): what is left of it to ask of another outlet's articles."""
    found = re.sub(rf"(?<![\w-]){re.escape(outlet)}(?![\w-])", " ", question, flags=re.IGNORECASE)
    return re.sub(r"\s+", " ", found).strip()


def source_outlet(source: str | None, known: Iterable[str]) -> str | None:
    """The outlet a question gives as its whole source ("according to Reuters", "what did
    AFP say"), among ``known``; None when the source is someone or something else, or only
    mentions an outlet ("the AFP photo caption" is a part of an article, whose credit the
    article holds). The search is then narrowed to that outlet even when no article is from
    it (the seeds credit photos to Reuters): nothing matches, and the question is declined
    rather than answered from another outlet's article."""
    if not source:
        return None
    words = source.split()
    bare = " ".join(words[1:] if words[0].casefold() == "the" else words)
    return next((o for o in known if o.casefold() == bare.casefold()), None)


# --- the /outlet and /dates commands of the fronts ---------------------------------------------


@dataclass(frozen=True)
class FilterChange:
    """What an outlet or dates command did: the filters from now on, and what to tell the
    person, in plain text with `code` marked by backquotes (each front renders them)."""

    filters: SearchFilters
    message: str
    ok: bool = True


def outlet_command(
    current: SearchFilters, argument: str, outlets: Sequence[str], *, prefix: str = "/"
) -> FilterChange:
    """``outlet NAME`` keeps to one outlet's articles, ``outlet all`` lifts that, and a bare
    ``outlet`` says what is searched. ``prefix`` is how the front writes a command."""
    known = ", ".join(outlets) or "none"
    wanted = argument.strip()
    if not wanted:
        searched = " or ".join(current.outlets) or "every outlet"
        usage = f"Use `{prefix}outlet NAME` or `{prefix}outlet all`."
        return FilterChange(current, f"Searching {searched}. Outlets: {known}.\n{usage}")
    if wanted.casefold() in LIFT_WORDS:
        return FilterChange(replace(current, outlets=()), "Searching every outlet again.")
    match = find_outlet(wanted, outlets)
    if match is None:
        return FilterChange(
            current, f"I know no outlet called “{wanted}”. Outlets: {known}.", False
        )
    return FilterChange(
        replace(current, outlets=(match,)),
        f"Searching only {match}. `{prefix}outlet all` to search every outlet again.",
    )


def dates_usage(prefix: str = "/") -> str:
    """How to write a date range, with examples."""
    return (
        f"`{prefix}dates 2016-09` (a month), `{prefix}dates 2016-09-20 2016-09-30`, "
        f"`{prefix}dates 2016-09-20 -` (from then on), `{prefix}dates all` (every date)."
    )


def dates_command(current: SearchFilters, argument: str, *, prefix: str = "/") -> FilterChange:
    """``dates FROM TO`` (or one period) keeps to articles published then, ``dates all`` lifts
    that, and a bare ``dates`` says what is searched. Undated articles cannot be said to fall
    inside a range, so a range leaves them out, and the message says so."""
    argument = argument.strip()
    dated = replace(current, outlets=())
    if not argument:
        searched = (
            f"Searching only articles {dated.describe()}."
            if dated.active
            else "Searching articles of every date."
        )
        return FilterChange(current, f"{searched}\nUse {dates_usage(prefix)}")
    try:
        since, until = (
            (None, None) if argument.casefold() in LIFT_WORDS else parse_date_range(argument)
        )
    except ValueError as exc:
        return FilterChange(current, f"Sorry, {exc}.\nUse {dates_usage(prefix)}", False)
    changed = replace(current, since=since, until=until)
    if since is None and until is None:
        return FilterChange(changed, "Searching articles of every date again.")
    return FilterChange(
        changed,
        f"Searching only articles {replace(changed, outlets=()).describe()} from now on; "
        f"articles without a stated date are left out. `{prefix}dates all` to search every "
        "date again.",
    )
