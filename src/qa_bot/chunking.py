"""Cut articles into short, overlapping windows of whole sentences.

A window starts at every sentence and takes up to ``max_sentences`` following sentences of the
same paragraph run while it stays under ``max_chars``, never across a line the cleaning left
out or a "READ MORE" link to another story (which is a window of its own). Short
windows make each hit a quotable answer (one to three sentences) instead of a wall of text; a
window never takes in a heading after its first sentence (a subhead belongs to the text after
it). Starting one at every sentence is the overlap: whatever sentence answers a question is the
first one of some window. All windows fit all-MiniLM-L6-v2's 256 word-piece limit with a wide
margin; a single sentence longer than ``HARD_MAX_CHARS`` is cut at a clause or word boundary so
that no text is ever silently truncated by the model.
"""

from __future__ import annotations

from collections.abc import Iterator

from qa_bot.models import Article, Chunk
from qa_bot.settings import ChunkingSettings
from qa_bot.text import apart, line_end, line_start, reads_as_prose, sentence_spans

#: About 200 word pieces of English news prose: safely under the model's 256.
HARD_MAX_CHARS = 900


def sentences(article: Article) -> list[tuple[int, int]]:
    """Every sentence of the article's body, as spans into its original text."""
    spans: list[tuple[int, int]] = []
    for start, end in article.body:
        for s, e in sentence_spans(article.text, start, end):
            spans.extend(_split_long(article.text, s, e))
    return spans


def _split_long(text: str, start: int, end: int) -> Iterator[tuple[int, int]]:
    while end - start > HARD_MAX_CHARS:
        window = text[start : start + HARD_MAX_CHARS]
        cut = max(window.rfind("; "), window.rfind(", "), window.rfind(" – "))
        if cut < HARD_MAX_CHARS // 3:
            cut = window.rfind(" ")
        if cut <= 0:
            cut = HARD_MAX_CHARS - 1
        yield start, start + cut + 1
        start += cut + 1
        while start < end and text[start].isspace():
            start += 1
    if end > start:
        yield start, end


def chunk_article(article: Article, settings: ChunkingSettings) -> list[Chunk]:
    spans = sentences(article)
    chunks: list[Chunk] = []
    for i, (start, end) in enumerate(spans):
        stop = end
        for s, e in spans[i + 1 : i + settings.max_sentences]:
            if (
                e - start > settings.max_chars
                or apart(article.text, stop, s)
                or _crosses_heading(article.text, stop, s)
                or is_heading(article.text, s, e)
            ):
                break
            stop = e
        chunks.append(
            Chunk(
                article_id=article.id,
                ordinal=len(chunks),
                start=start,
                end=stop,
                text=article.text[start:stop],
            )
        )
    return chunks


def is_heading(text: str, start: int, end: int) -> bool:
    """The sentence is a line of its own without closing punctuation: a subhead.

    A window stops before one, so no window (and no quote) ends with the next section's title.
    """
    if text[line_start(text, start) : start].strip() or text[end : line_end(text, end)].strip():
        return False
    return not reads_as_prose(text[start:end])


def _crosses_heading(text: str, prev_end: int, next_start: int) -> bool:
    """True when a paragraph break separates the two sentences and the first was a heading."""
    gap = text[prev_end:next_start]
    if "\n" not in gap:
        return False
    last_line = text[line_start(text, prev_end) : prev_end].strip()
    return not reads_as_prose(last_line)


def embedding_text(title: str, chunk_text: str) -> str:
    """What we embed for a chunk: the headline gives short windows the article's topic."""
    return f"{title}. {' '.join(chunk_text.split())}"


def lexical_text(title: str, chunk_text: str) -> str:
    """What BM25 indexes for a chunk: the headline's words count for every window."""
    return f"{title} {chunk_text}"
