"""From messy article files to :class:`Article` objects: decoding, cleaning and metadata.

The files are web copies: menu strips, podcast timers, photo credits and footers surround the
article ("READ MORE" links to other stories stay: the page says them). Cleaning does not
rewrite the text; it only decides which lines are the article's body, so every quote cut from
the body is verbatim.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qa_bot.decoding import content_hash, decode, looks_binary
from qa_bot.html_article import HTML_SUFFIXES, extract_page
from qa_bot.models import Article, ArticleMeta
from qa_bot.seed_files import SourceFile, UnsafeFileError, read_regular
from qa_bot.sidecar import sidecar_fingerprint
from qa_bot.text import (
    BARE_ADDRESS,
    LINK_LINE,
    MONTHS,
    SITE_NOTICE,
    clean_inline,
    fold,
    line_end,
    line_start,
)

# --- parsing -----------------------------------------------------------------------------------

_MONTH = r"(?P<month>" + "|".join(sorted(MONTHS, key=len, reverse=True)) + r")\.?"
_TIME = r"(?:,?\s+(?:at\s+)?\d{1,2}:\d{2}(?::\d{2})?(?:\s*(?:GMT|UTC|MSK|[AP]M))?)?"
_DATE_PATTERNS = (
    # 2016-09-24, 1987-02-26T15:01:01
    re.compile(r"\b(?P<year>\d{4})-(?P<mon>\d{2})-(?P<day>\d{2})(?:[T ]\d{2}:\d{2}(?::\d{2})?)?"),
    # 24 Sep, 2016 01:53 / 24 September 2016
    re.compile(r"\b(?P<day>\d{1,2})\s+" + _MONTH + r",?\s+(?P<year>\d{4})" + _TIME, re.IGNORECASE),
    # September 24, 2016 / Sep 24 2016 12:00
    re.compile(_MONTH + r"\s+(?P<day>\d{1,2}),?\s+(?P<year>\d{4})" + _TIME, re.IGNORECASE),
)
_PARTIAL_DATE = (
    re.compile(_MONTH + r"\s+(?P<day>\d{1,2})\b", re.IGNORECASE),
    re.compile(r"\b(?P<day>\d{1,2})\s+" + _MONTH + r"\b", re.IGNORECASE),
)
# "MOSCOW, September 22./TASS/." or "SALVADOR, Feb 26 -" at the start of the first paragraph.
_DATELINE = re.compile(
    r"(?P<place>[A-Z][A-Z .'\-]{1,40}),\s+(?P<date>[A-Za-z]{3,9}\.?\s+\d{1,2}(?:,?\s+\d{4})?)"
    r"\s*(?:\.?\s*/(?P<agency>[A-Za-z\- ]{2,20})/\s*\.?|\s*\((?P<agency2>[A-Za-z\- ]{2,20})\))?"
    r"\s*[-–—.]?\s+"
)

_OUTLET_SIGNATURES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("TASS", re.compile(r"/TASS/|\bTASS\b\s*\)", re.IGNORECASE)),
    ("Press TV", re.compile(r"Press TV[’']s website|\bPress TV News\b|presstv\.", re.IGNORECASE)),
    ("RT", re.compile(r"\b(?:told|to|for|with) RT\b|\bRT[’']s\b|\brt\.com\b|RT (?:News|Arabic)")),
    ("Reuters", re.compile(r"\(Reuters\)\s*[-–—]")),
    ("AP", re.compile(r"\(AP\)\s*[-–—]")),
    ("AFP", re.compile(r"\(AFP\)\s*[-–—]")),
    ("Sputnik", re.compile(r"\bsputniknews\.com\b|Sputnik[’']s website", re.IGNORECASE)),
    ("Al Jazeera", re.compile(r"\bAl Jazeera[’']s\b|aljazeera\.com", re.IGNORECASE)),
    ("BBC", re.compile(r"\bbbc\.co\.uk\b|\bBBC News\b")),
)

#: The outlets the metadata can recognise by their signature, whether or not any article of
#: the index is from them.
KNOWN_OUTLETS = tuple(name for name, _ in _OUTLET_SIGNATURES)

_NAV_WORDS = frozenset(
    """image photo video all news home menu world russia business sport sports opinion search
    share print advertisement skip to content main navigation latest top stories live""".split()
)

# Lines that are never article content, whatever the site. A link to another story ("READ
# MORE: <headline>", ``LINK_LINE``) and the site's note of its other addresses (``SITE_NOTICE``,
# with the address it announces) are not among them: the page says them, and people ask about
# them; each is indexed as a window of its own (``text.apart``) and left out of passages
# around other quotes (``is_furniture``).
_JUNK_LINE = (
    re.compile(
        r"^\s*(?:podcasts?|share this article|share this|subscribe.*|advertisement)\s*$",
        re.IGNORECASE,
    ),
    re.compile(r"^\s*\d{1,2}:\d{1,2}(?::\d{1,2})?\s*$"),  # media player timers
    BARE_ADDRESS,  # kept only right after the site's note listing it (``_body_lines``)
    re.compile(r"^\s*(?:[\w.’']+\s*){1,4}(?:\s+/\s+(?:[\w.’']+\s*){1,4})+\s*$"),  # breadcrumbs
    re.compile(r"^\s*Press TV News Roku\s*$", re.IGNORECASE),
)


@dataclass(frozen=True)
class _Line:
    start: int
    end: int
    text: str


def _lines(text: str) -> Iterator[_Line]:
    pos = 0
    for raw in text.splitlines(keepends=True):
        body = raw.rstrip("\r\n")
        stripped = body.strip()
        if stripped:
            offset = len(body) - len(body.lstrip())
            yield _Line(pos + offset, pos + offset + len(stripped), stripped)
        pos += len(raw)


#: A photo credit closing a line: "... hit by rockets. ©Reuters", "... Munich, 2016 © AFP".
_CREDIT = re.compile(r"\s*©\s*\S.{0,60}$")

#: Words a caption needs before its credit to tell something ("Sergei Lavrov © Reuters" is
#: only a credit line; "This handout picture ... shows soldiers in front of the al-Dabit
#: maternity clinic in Aleppo after it was hit by rockets. ©Reuters" tells what happened).
MIN_CAPTION_WORDS = 12


def _is_bare_credit(line: str) -> bool:
    """A photo credit with too few words before it to tell anything ("Sergei Lavrov ©
    Reuters"). A caption that describes something is article text, quoted with its credit
    ("... Munich, Germany, February 11, 2016 © AFP"): the credit is what the page says of the
    picture, and a question naming it ("the meeting shown in the AFP photograph") asks about
    words the article holds, which the index must then hold too."""
    credit = _CREDIT.search(line)
    return credit is not None and len(line[: credit.start()].split()) < MIN_CAPTION_WORDS


def _is_junk(line: str) -> bool:
    if line.casefold().count("icon") >= 5:  # icon-font strips ("icon bookmark-bicon ...")
        return True
    return any(p.search(line) for p in _JUNK_LINE)


def _body_lines(text: str) -> list[_Line]:
    """The lines of ``text`` that can be article text: junk and bare credits left out, except
    the addresses alone on their lines right after the site's note announcing them (the
    note is cut off without them)."""
    kept: list[_Line] = []
    announcing = False
    for line in _lines(text):
        address = BARE_ADDRESS.match(line.text) is not None
        if (announcing and address) or not (_is_junk(line.text) or _is_bare_credit(line.text)):
            kept.append(line)
        announcing = SITE_NOTICE.search(line.text) is not None or (announcing and address)
    return kept


def is_furniture(line: str) -> bool:
    """The line is page furniture (a menu, a promo, a credit, a share button), which the body
    leaves out: shown around a quote, it would read as article text."""
    stripped = line.strip()
    if not stripped:
        return False
    return (
        _is_junk(stripped)
        or _is_nav(stripped)
        or _is_bare_credit(stripped)
        or LINK_LINE.match(stripped) is not None
        or SITE_NOTICE.search(stripped) is not None
    )


def _is_nav(line: str) -> bool:
    tokens = fold(line).split()
    return 0 < len(tokens) <= 3 and all(t.strip(".:|") in _NAV_WORDS for t in tokens)


def _full_date(line: str) -> tuple[dt.date | None, str] | None:
    for pattern in _DATE_PATTERNS:
        match = pattern.search(line)
        if not match:
            continue
        parts = match.groupdict()
        month = int(parts["mon"]) if parts.get("mon") else MONTHS[parts["month"].lower()]
        try:
            return dt.date(int(parts["year"]), month, int(parts["day"])), match.group().strip()
        except ValueError:
            continue
    return None


def _partial_date(text: str) -> str | None:
    for pattern in _PARTIAL_DATE:
        match = pattern.search(text)
        if match and 1 <= int(match.group("day")) <= 31:
            return match.group().strip()
    return None


def _is_date_line(line: str) -> bool:
    """A line that is only a date (with an optional time): header material, not body."""
    found = _full_date(line)
    return found is not None and len(line) <= len(found[1]) + 12


def parse_article(
    text: str, *, article_id: str, path: str, digest: str, overrides: dict[str, Any] | None = None
) -> Article:
    """Split one decoded file into title, metadata and body spans.

    The title is the first line that is not menu, junk or a date; a second copy of it (pages
    often repeat the headline) is dropped. Dates are taken only from the header lines and the
    first paragraph's dateline, never from the story ("February 11, 2016" in a photo caption
    is not the publication date), and a date without a year stays without a year.
    """
    lines = _body_lines(text)
    title, date, date_text, body = _header_and_body(lines)
    outlet, date, date_text = _dateline(text, body, _detect_outlet(text), date, date_text)
    if title is None:
        title = article_id
    meta = ArticleMeta(
        id=article_id,
        path=path,
        title=clean_inline(title),
        outlet=outlet,
        date=date,
        date_text=date_text,
        url=None,
        content_hash=digest,
    )
    if overrides:
        meta = _apply_overrides(meta, overrides)
    meta = replace(meta, stated_span=stated_span(text, meta))
    return Article(meta=meta, text=text, body=tuple(body))


def _header_and_body(
    lines: Sequence[_Line],
) -> tuple[str | None, dt.date | None, str | None, list[tuple[int, int]]]:
    """The title, the date the header lines state, and the body's paragraph spans: the header
    ends at the first line after the title that is neither a date nor menu."""
    title: str | None = None
    date: dt.date | None = None
    date_text: str | None = None
    body: list[tuple[int, int]] = []
    header_done = False
    title_key = ""
    for line in lines:
        if not header_done:
            if _is_date_line(line.text):
                if date is None:
                    found = _full_date(line.text)
                    if found:
                        date, date_text = found
                continue
            if _is_nav(line.text) and title is None:
                continue
            if line.text.startswith("#") and title is None:
                title = line.text.lstrip("#").strip()
                title_key = fold(title)
                continue
            if title is None and len(line.text) <= 300:
                title = line.text
                title_key = fold(title)
                continue
            header_done = True
        if title_key and fold(line.text) == title_key:
            continue  # the repeated headline
        if not header_done and _is_date_line(line.text):
            continue
        body.append((line.start, line.end))
    return title, date, date_text, body


def _dateline(
    text: str,
    body: list[tuple[int, int]],
    outlet: str | None,
    date: dt.date | None,
    date_text: str | None,
) -> tuple[str | None, dt.date | None, str | None]:
    """The outlet and date a dateline in the first paragraphs states ("MOSCOW, September 22.
    /TASS/."), where the header did not; an agency's dateline is cut from its paragraph's body
    span (``body`` is changed in place)."""
    for i, (para_start, para_end) in enumerate(body[:3]):
        dateline = _DATELINE.match(text, para_start, para_end)
        if not dateline:
            continue
        agency = dateline.group("agency") or dateline.group("agency2")
        if agency and outlet is None:
            outlet = agency.strip()
        if date is None:
            stated = dateline.group("date")
            found = _full_date(stated)
            date, date_text = found if found else (None, _partial_date(stated) or stated)
        if agency:
            body[i] = (dateline.end(), para_end)
        break
    return outlet, date, date_text


def stated_span(text: str, meta: ArticleMeta) -> tuple[int, int] | None:
    """Where the page itself states when (and, in a dateline, by whom) it was published: the
    dateline ("MOSCOW, September 22./TASS/.") or the header line holding the date ("28 Sep,
    2016 15:59"), as a span of the untouched text; None when the page states no date.

    A question about the article rather than its story ("When was the RT article about the
    ultimatum published?") is answered by quoting this, verbatim like every quote. Found once,
    when the article is read for indexing, and stored with its metadata
    (``ArticleMeta.stated_span``).
    """
    if not meta.date_text:
        return None
    found = text.find(meta.date_text)
    if found < 0:
        return None
    begins = line_start(text, found)
    dateline = _DATELINE.match(text, begins)
    if dateline is not None and dateline.start("date") <= found < dateline.end():
        return begins, begins + len(dateline.group().rstrip())
    line = text[begins : line_end(text, found)]
    if len(line.strip()) > len(meta.date_text) + 40:  # a date inside a paragraph: just the date
        return found, found + len(meta.date_text)
    offset = len(line) - len(line.lstrip())
    return begins + offset, begins + len(line.rstrip())


def _detect_outlet(text: str) -> str | None:
    for name, pattern in _OUTLET_SIGNATURES:
        if pattern.search(text):
            return name
    return None


def _apply_overrides(meta: ArticleMeta, entry: dict[str, Any]) -> ArticleMeta:
    changes: dict[str, Any] = {k: entry[k] for k in ("title", "outlet", "url") if k in entry}
    if "date" in entry:
        changes["date"] = entry["date"]
        changes["date_text"] = entry.get("date_text") or entry["date"].isoformat()
    elif "date_text" in entry:
        changes["date_text"] = entry["date_text"]
    return replace(meta, **changes)


def read_article(
    source: SourceFile, overrides: dict[str, Any] | None, max_bytes: int
) -> tuple[Article | None, str | None]:
    """Read and parse one file; return (article, None) or (None, reason it was skipped)."""
    if source.size > max_bytes:
        return None, f"too large ({source.size:,} bytes; the limit is {max_bytes:,})"
    try:
        data = read_regular(source.path, max_bytes, source.identity)
    except FileNotFoundError:
        return None, "vanished while being read"
    except UnsafeFileError as exc:
        return None, str(exc)
    except OSError as exc:
        return None, f"cannot read: {exc.strerror or exc}"
    if len(data) > max_bytes:
        return None, f"too large (over {max_bytes:,} bytes, the limit)"
    if not data:
        return None, "empty file (0 bytes)"
    text = decode(data)
    if looks_binary(text):
        return None, "binary file, not text"
    if not text.strip():
        return None, "empty file (only blank space)"
    digest = content_hash(data, sidecar_fingerprint(overrides))
    article_id = Path(source.rel).with_suffix("").as_posix()
    if source.rel.lower().endswith(HTML_SUFFIXES):
        return _html_article(text, article_id, source.rel, digest, overrides)
    article = parse_article(text, article_id=article_id, path=source.rel, digest=digest)
    if not article.body:
        return None, _why_no_body(text)
    return _overridden(article, _origins(article.meta, {}), overrides), None


def _origins(meta: ArticleMeta, page: dict[str, Any]) -> dict[str, str]:
    """Where each field came from before ``metadata.toml``: the page's metadata, else the text."""
    origins = {"title": "page metadata" if "title" in page else "text"}
    if meta.title == meta.id:
        origins["title"] = "file name"
    for name, stated in (("outlet", meta.outlet), ("date", meta.date_text or meta.date)):
        if name in page:
            origins[name] = "page metadata"
        elif stated:
            origins[name] = "text"
    return origins


def _overridden(
    article: Article, origins: dict[str, str], overrides: dict[str, Any] | None
) -> Article:
    """The article with ``metadata.toml``'s values applied, and where each field came from."""
    meta = article.meta
    if overrides:
        meta = _apply_overrides(meta, overrides)
        for name in ("title", "outlet", "date"):
            if name in overrides or (name == "date" and "date_text" in overrides):
                origins[name] = "metadata.toml"
    if meta.date_text != article.meta.date_text:  # the span was found for the page's own date
        meta = replace(meta, stated_span=stated_span(article.text, meta))
    return replace(article, meta=meta, origins=tuple(sorted(origins.items())))


def _html_article(
    html: str, article_id: str, path: str, digest: str, overrides: dict[str, Any] | None
) -> tuple[Article | None, str | None]:
    """A saved page: its extracted main text (headed by the page's title) is the article's
    text, so quotes are verbatim against it; the page's own title, site name and date come
    before what the text says, and ``metadata.toml`` before both."""
    page = extract_page(html)
    if not page.text.strip():
        return None, "no article text found in the page (only page furniture)"
    text = f"{page.title}\n\n{page.text}\n" if page.title else page.text + "\n"
    article = parse_article(text, article_id=article_id, path=path, digest=digest)
    if not article.body:
        return None, _why_no_body(text)
    changes: dict[str, Any] = {}
    if page.title:
        changes["title"] = clean_inline(page.title)
    if page.outlet:
        changes["outlet"] = clean_inline(page.outlet)
    if page.date is not None:
        changes["date"], changes["date_text"] = page.date, page.date.isoformat()
    meta = replace(article.meta, **changes)
    if "date_text" in changes:
        meta = replace(meta, stated_span=stated_span(text, meta))
    origins = _origins(meta, changes)
    return _overridden(replace(article, meta=meta), origins, overrides), None


def _why_no_body(text: str) -> str:
    """Why a file gave no body: it holds a headline (and dates) only, or page furniture."""
    lines = {fold(ln.strip().lstrip("#").strip()) for ln in text.splitlines() if ln.strip()}
    if len({ln for ln in lines if not _is_date_line(ln)}) <= 1:
        return "only a headline, no article text to quote"
    return "no article text left after removing page furniture (menus, promos, credits)"
