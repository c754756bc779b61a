"""What an answer tells about how its question was read: misspellings read as other words, and
names no article mentions (why it was declined). Worded from the retrieval's analysis, so the
CLI, the chat and the bot say the same."""

from __future__ import annotations

from collections.abc import Sequence

from qa_bot.models import Hit
from qa_bot.query import surface
from qa_bot.retrieval import Retrieval


def reading_notes(question: str, retrieval: Retrieval) -> list[str]:
    """What an answer tells about how its question was read: misspellings read as other
    words, and names no article mentions (why it was declined)."""
    notes = []
    corrected = correction_note(question, retrieval)
    if corrected:
        notes.append(corrected)
    if retrieval.unknown_names:
        names = " or ".join(f"“{name}”" for name in retrieval.unknown_names)
        notes.append(f"The articles never mention {names}.")
    return notes


def correction_note(question: str, retrieval: Retrieval) -> str | None:
    """ "Read “Churkn” as “Churkin”.": the misspelt words of the question, as the person wrote
    them, and the words they were read as, as the best passages write them (the index holds
    stems, not words). None when nothing was corrected or no passage shows the word."""
    readings: list[str] = []
    for term, replacements in retrieval.corrections.items():
        written = surface(question, term)
        found = [w for r in replacements if (w := _surface_in_hits(retrieval.hits, r))]
        if written and found:
            readings.append(f"“{written}” as " + " or ".join(f"“{w}”" for w in found))
    return "Read " + "; ".join(readings) + "." if readings else None


def _surface_in_hits(hits: Sequence[Hit], term: str) -> str | None:
    for hit in hits[:10]:
        for text in (hit.chunk.text, hit.article.title):
            if found := surface(text, term):
                return found
    return None
