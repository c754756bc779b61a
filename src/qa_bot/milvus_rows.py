"""How a generation's rows on Milvus are found and read back: the ``CURRENT`` record, the
expression that admits a generation's rows, dates as filterable numbers, and rows turned back
into article metadata and passages. Shared by the reading side (:mod:`qa_bot.milvus_view`) and
the writing side (:mod:`qa_bot.milvus_build`).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Iterator, Mapping
from typing import Any

from qa_bot.errors import IndexCorruptError, IndexError_, StoreUnavailableError
from qa_bot.milvus_client import CURRENT_KEY, MilvusConnection
from qa_bot.models import ArticleMeta, Chunk

CHUNK_FIELDS = ["id", "article_id", "ordinal", "start", "end", "text"]
ARTICLE_FIELDS = [
    "article_id",
    "path",
    "title",
    "outlet",
    "day",
    "date_text",
    "url",
    "content_hash",
    "stated_start",
    "stated_end",
]


def generation_name(number: int) -> str:
    return f"gen-{number:06d}"


def read_record(conn: MilvusConnection) -> dict[str, Any] | None:
    """The ``CURRENT`` record, or None when this prefix holds no index yet."""
    try:
        text = conn.get_meta(CURRENT_KEY)
    except StoreUnavailableError:
        raise
    except IndexError_:
        if not conn.has(conn.meta):  # asked only when the read failed: one call a question
            return None
        raise
    if not text:
        return None
    try:
        record = json.loads(text)
        int(record["generation"]), int(record["epoch"])
    except (ValueError, KeyError, TypeError) as exc:
        raise IndexCorruptError(
            f"the index record in {conn.location} is damaged ({exc}); run "
            "`qa-bot index --force` to rebuild"
        ) from exc
    return record


def visible(generation: int) -> str:
    """The rows generation ``generation`` holds."""
    return f"gen <= {generation} and (gone == 0 or gone > {generation})"


def day_number(date: dt.date | None) -> int:
    """A date as a filterable number; 0 for an article that states none."""
    return date.toordinal() if date else 0


def meta_from_row(row: Mapping[str, Any]) -> ArticleMeta:
    day = int(row["day"])
    return ArticleMeta(
        id=str(row["article_id"]),
        path=str(row["path"]),
        title=str(row["title"]),
        outlet=row["outlet"] or None,
        date=dt.date.fromordinal(day) if day else None,
        date_text=row["date_text"] or None,
        url=row["url"] or None,
        content_hash=str(row["content_hash"]),
        stated_span=(int(row["stated_start"]), int(row["stated_end"]))
        if int(row["stated_start"]) >= 0
        else None,
    )


def chunk_from_row(row: Mapping[str, Any]) -> Chunk:
    return Chunk(
        str(row["article_id"]),
        int(row["ordinal"]),
        int(row["start"]),
        int(row["end"]),
        str(row["text"]),
    )


def batches(items: list[Any], size: int) -> Iterator[list[Any]]:
    for i in range(0, len(items), size):
        yield items[i : i + size]
