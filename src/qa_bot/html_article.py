"""Saved web pages (``.html`` / ``.htm``): the article's main text and the page's own metadata.

A saved page is mostly furniture (menus, cookie banners, related links, photo captions); the
extractor (trafilatura) keeps the main text only, and that extracted text is what is stored,
indexed and quoted, so quotes stay verbatim against it. The publication date is taken from the
page's own metadata, in this order: ``article:published_time`` (and its usual meta-tag kin),
JSON-LD ``datePublished`` of the article (never of an image or a video), then the first
``<time datetime>`` that is not inside a figure, a caption, a link or a side column. A page
that states none of these leaves the date to the text, as for a ``.txt`` file.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

HTML_SUFFIXES = (".html", ".htm")

#: Meta tags that state the publication date, most specific first.
_DATE_META = (
    ("property", "article:published_time"),
    ("name", "article:published_time"),
    ("itemprop", "datePublished"),
    ("name", "pubdate"),
    ("name", "publishdate"),
    ("name", "dc.date.issued"),
    ("name", "date"),
)
#: JSON-LD types whose ``datePublished`` is a picture's or a film's, not the article's.
_MEDIA_TYPES = frozenset({"ImageObject", "VideoObject", "MediaObject", "Photograph", "AudioObject"})
#: A ``<time>`` inside one of these dates a photo, a linked story or a side column.
_NOT_THE_ARTICLE = frozenset({"figure", "figcaption", "a", "aside", "nav", "footer"})
_ISO_DAY = re.compile(r"^\s*(\d{4})-(\d{2})-(\d{2})")


@dataclass(frozen=True)
class PageExtract:
    """What a page says about itself, and its main text (empty when none was found)."""

    text: str
    title: str | None
    outlet: str | None
    date: dt.date | None


def extract_page(html: str) -> PageExtract:
    """The main text, title, site name and published date of one saved page."""
    # Imported here: trafilatura pulls in lxml and date parsers that only HTML files need.
    import trafilatura
    from lxml import html as lxml_html

    text = trafilatura.extract(
        html,
        output_format="txt",
        include_comments=False,
        include_tables=False,
        include_images=False,
        include_links=False,
        favor_precision=True,
        deduplicate=True,
    )
    meta = trafilatura.extract_metadata(html)
    try:
        tree = lxml_html.fromstring(html)
    except (ValueError, TypeError, lxml_html.etree.ParserError):
        tree = None
    return PageExtract(
        text=text or "",
        title=(meta.title or None) if meta is not None else None,
        outlet=(meta.sitename or None) if meta is not None else None,
        date=page_date(tree) if tree is not None else None,
    )


def _day(value: str | None) -> dt.date | None:
    match = _ISO_DAY.match(value or "")
    if not match:
        return None
    try:
        return dt.date(int(match[1]), int(match[2]), int(match[3]))
    except ValueError:
        return None


def page_date(tree: Any) -> dt.date | None:
    """The publication date the page states about itself, or None (see the module doc)."""
    for attr, name in _DATE_META:
        for node in tree.iter("meta"):
            if (node.get(attr) or "").casefold() == name.casefold():
                found = _day(node.get("content"))
                if found:
                    return found
    for script in tree.iter("script"):
        if (script.get("type") or "").strip().casefold() != "application/ld+json":
            continue
        try:
            data = json.loads(script.text or "")
        except ValueError:
            continue
        for obj in _ld_objects(data):
            found = _day(obj.get("datePublished"))
            if found:
                return found
    for node in tree.iter("time"):
        if any(parent.tag in _NOT_THE_ARTICLE for parent in node.iterancestors()):
            continue
        found = _day(node.get("datetime"))
        if found:
            return found
    return None


def _ld_objects(data: Any) -> Iterator[dict[str, Any]]:
    """Every JSON-LD object that describes something other than a picture or a film."""
    if isinstance(data, list):
        for item in data:
            yield from _ld_objects(item)
        return
    if not isinstance(data, dict):
        return
    kinds = data.get("@type")
    kinds = set(kinds) if isinstance(kinds, list) else {kinds}
    if not kinds & _MEDIA_TYPES:
        yield data
    if "@graph" in data:
        yield from _ld_objects(data["@graph"])
