"""Passages beyond the answer: the text around a quote, further passages for a question, and
the sentences naming whose words a quote holds.

All are asked for from an answer already shown ("Passage n" and "More" in the bot, "who said
that?" in a chat), so all keep away from what the reader has: the passage leaves out the page
furniture around the quote, further passages skip every place already quoted and near-copies of
each other, and the speaker's sentence is only the sentence that names them.
"""

from __future__ import annotations

from collections.abc import Sequence

from qa_bot.corpus import is_furniture
from qa_bot.models import Answer, ArticleMeta, Citation, Passage, Span, overlaps, quoted_text
from qa_bot.retrieval import Hit, near_duplicate
from qa_bot.speakers import named_speaker, sentences_in, speaker_of
from qa_bot.text import line_end, line_start, sentence_spans

#: At most this many sentences of a quote that name a speaker make "who said that?"'s answer.
MAX_SPEAKER_SENTENCES = 2
#: "Who said that?" when the article names no speaker near the quote.
NO_SPEAKER = "The article does not name who said this near the quote."

#: A passage grows by whole paragraphs around the quote until it has at least this many
#: characters (or the article ends).
MIN_PASSAGE_CHARS = 700


def passage_around(meta: ArticleMeta, text: str, start: int, end: int) -> Passage | None:
    """The paragraph(s) around the quote ``text[start:end]``: its own paragraph and its
    neighbours; None when the span does not fit the text."""
    if not 0 <= start < end <= len(text):
        return None
    para_start = line_start(text, start)
    para_end = line_end(text, end)
    while para_end - para_start < MIN_PASSAGE_CHARS:
        prev = text.rfind("\n", 0, max(para_start - 1, 0))
        nxt = text.find("\n", para_end + 1)
        grew = False
        if para_start > 0:
            para_start = prev + 1
            grew = True
        if para_end < len(text) and nxt > 0:
            para_end = nxt
            grew = True
        if not grew:
            break
    return _readable(meta, text, para_start, para_end, start, end)


def _readable(meta: ArticleMeta, text: str, lo: int, hi: int, start: int, end: int) -> Passage:
    """The text from ``lo`` to ``hi`` with the page furniture (menus, promos, credits) of the
    lines around the quote left out, and the quote's place in it. The lines the quote spans
    are kept as they are."""
    block_start = max(lo, text.rfind("\n", lo, start) + 1)
    block_end = line_end(text, end, hi)

    def clean(part: str) -> list[str]:
        return [ln for ln in part.split("\n") if ln.strip() and not is_furniture(ln)]

    before, after = clean(text[lo:block_start]), clean(text[block_end:hi])
    head = "\n\n".join(before) + ("\n\n" if before else "")
    block = text[block_start:block_end]
    excerpt = head + block + ("\n\n" if after else "") + "\n\n".join(after)
    quote_at = len(head) + (start - block_start)
    lead = len(excerpt) - len(excerpt.lstrip())
    return Passage(meta, excerpt.strip(), quote_at - lead, quote_at - lead + (end - start))


def further_citations(
    hits: Sequence[Hit], shown: Sequence[Span], first_n: int, k: int
) -> tuple[Citation, ...]:
    """Up to ``k`` of ``hits`` as citations numbered from ``first_n``, skipping what was
    ``shown`` already and near-copies of a passage taken."""
    citations: list[Citation] = []
    for hit in hits:
        if overlaps(hit.place, shown):
            continue
        if any(near_duplicate(hit.chunk.text, c.quote) for c in citations):
            continue
        citations.append(
            Citation(
                n=first_n + len(citations),
                article=hit.article,
                quote=hit.chunk.text,
                start=hit.chunk.start,
                end=hit.chunk.end,
                score=hit.score,
            )
        )
        if len(citations) == k:
            break
    return tuple(citations)


def further_answer(
    question: str, hits: Sequence[Hit], shown: Sequence[Span], first_n: int, k: int
) -> Answer:
    """Further passages for a question ("More" in the bot): :func:`further_citations`, or
    that there are none."""
    citations = further_citations(hits, shown, first_n, k)
    return Answer(
        question=question,
        answered=bool(citations),
        text="" if citations else "No further passages.",
        citations=citations,
        notes=("Further passages, less closely matching:",) if citations else (),
    )


def speaker_answer(
    question: str, meta: ArticleMeta, text: str, quoted: Span, lookback: int
) -> Answer:
    """The answer to "who said that?" after a quote (``quoted``, of the article ``text``):
    its own sentences that name a speaker, else the sentence of the article naming whose words
    its first sentence reports (:func:`qa_bot.speakers.speaker_of`, at most ``lookback``
    sentences back); NO_SPEAKER when the article does not say there."""
    _, start, end = quoted
    spans = list(sentence_spans(text))
    inside = sentences_in(spans, start, end)
    named = [spans[i] for i in inside if named_speaker(text[slice(*spans[i])])]
    chosen = named[:MAX_SPEAKER_SENTENCES]
    if not chosen and inside:  # the quote names no one: the sentence that does, if any
        found = speaker_of(text, spans, inside[0], lookback, set())
        chosen = [] if found is None else [found]
    citations = tuple(
        Citation(n, meta, text[a:b], a, b, score=1.0) for n, (a, b) in enumerate(chosen, 1)
    )
    body = quoted_text(citations) if citations else NO_SPEAKER
    return Answer(question=question, answered=bool(citations), text=body, citations=citations)


__all__ = [
    "MIN_PASSAGE_CHARS",
    "NO_SPEAKER",
    "further_answer",
    "further_citations",
    "passage_around",
    "speaker_answer",
]
