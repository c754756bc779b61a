from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa_bot.chunking import HARD_MAX_CHARS, chunk_article, sentences
from qa_bot.corpus import parse_article
from qa_bot.settings import ChunkingSettings
from qa_bot.text import sentence_spans

from .conftest import SEEDS, windows


@pytest.mark.parametrize("path", sorted(SEEDS.glob("*.txt")), ids=lambda p: p.stem[:3])
def test_seed_chunks_map_back_to_the_original(path) -> None:
    text = path.read_text(encoding="utf-8")
    article = parse_article(text, article_id=path.stem, path=path.name, digest="d")
    chunks = chunk_article(article, ChunkingSettings())
    assert chunks
    for i, chunk in enumerate(chunks):
        assert chunk.ordinal == i
        assert chunk.text == text[chunk.start : chunk.end]
        assert any(s <= chunk.start < e for s, e in article.body)
        assert len(chunk.text) <= max(300, HARD_MAX_CHARS)
    # Every body sentence starts a window: the answering sentence always leads some window.
    starts = {c.start for c in chunks}
    assert starts == {s for s, _ in sentences(article)}


def test_windows_respect_limits_and_overlap() -> None:
    body = " ".join(f"Sentence number {i} is here." for i in range(10))
    chunks = windows(f"Title\n\n{body}", ChunkingSettings(max_chars=60, max_sentences=3))
    assert all(len(c.text) <= 60 for c in chunks)
    assert chunks[0].text == "Sentence number 0 is here. Sentence number 1 is here."
    assert chunks[1].text.startswith("Sentence number 1")


def test_a_link_to_another_story_is_a_window_of_its_own() -> None:
    """A "READ MORE" line between two paragraphs is the page's words about another story:
    quotable alone (people ask about it), but a window (hence a quote) taking it with the
    sentences on either side would run two stories together."""
    text = (
        "Title\n\nIt is hard to believe, he said.\n\n"
        "READ MORE: US airstrikes on Syrian troops were intentional, lasted nearly 1 hour and "
        "hit positions near the airfield – Assad to AP\n\n"
        "The situation in Deir ez-Zor is different.\n\n"
        "Officials added nothing."
    )
    chunks = windows(text)
    assert [c.text for c in chunks] == [
        "It is hard to believe, he said.",
        "READ MORE: US airstrikes on Syrian troops were intentional, lasted nearly 1 hour and "
        "hit positions near the airfield – Assad to AP",
        "The situation in Deir ez-Zor is different.\n\nOfficials added nothing.",
        "Officials added nothing.",
    ]


def test_the_sites_note_of_its_addresses_is_a_window_with_the_address() -> None:
    """The site's note of its other addresses is quotable with the address it announces, but
    never with the story above it."""
    text = (
        "Title\n\nThe truce went into effect late February in Syria.\n\n"
        "Press TV’s website can also be accessed at the following alternate addresses:\n\n"
        "www.presstv.co.uk\n\nSHARE THIS ARTICLE"
    )
    assert [c.text for c in windows(text)] == [
        "The truce went into effect late February in Syria.",
        "Press TV’s website can also be accessed at the following alternate addresses:\n\n"
        "www.presstv.co.uk",
        "www.presstv.co.uk",
    ]


def test_a_photo_caption_is_a_window_of_its_own() -> None:
    text = (
        "Title\n\nLavrov expects a ministerial meeting soon.\n\n"
        "US Secretary of State John Kerry and Russia's Foreign Minister Sergei Lavrov lead the "
        "support group meeting in Munich, Germany, February 11, 2016 © AFP\n\n"
        "The group was formed in November 2015."
    )
    chunks = windows(text, ChunkingSettings(max_chars=400))
    assert [c.text[:22] for c in chunks] == [
        "Lavrov expects a minis",
        "US Secretary of State ",
        "The group was formed i",
    ]
    assert chunks[1].text.endswith("February 11, 2016 © AFP")


def test_sentence_splitter_keeps_abbreviations_and_quotes() -> None:
    text = (
        "Lt. Gen. Rudskoy met U.S. officials. “It is over,” he said. "
        "The talks ended at 3 p.m. Washington. Then J. Smith left!"
    )
    got = [text[s:e] for s, e in sentence_spans(text)]
    assert got == [
        "Lt. Gen. Rudskoy met U.S. officials.",
        "“It is over,” he said.",
        "The talks ended at 3 p.m. Washington.",
        "Then J. Smith left!",
    ]


def test_overlong_sentence_is_cut_below_the_model_window() -> None:
    sentence = ", ".join(["a clause of several words"] * 120) + "."
    chunks = windows(f"Title\n\n{sentence}")
    assert len(chunks) > 1
    assert all(len(c.text) <= HARD_MAX_CHARS for c in chunks)
    assert "".join(c.text for c in chunks).replace(" ", "") == sentence.replace(" ", "")


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.text(alphabet=st.characters(codec="utf-8", exclude_categories=("Cs",)), max_size=200),
        max_size=8,
    ),
    st.integers(min_value=40, max_value=400),
    st.integers(min_value=1, max_value=4),
)
def test_chunk_spans_always_map_back(paragraphs: list[str], max_chars: int, max_sent: int) -> None:
    text = "Title\n\n" + "\n\n".join(paragraphs)
    article = parse_article(text, article_id="h", path="h", digest="d")
    for chunk in chunk_article(
        article, ChunkingSettings(max_chars=max_chars, max_sentences=max_sent)
    ):
        assert 0 <= chunk.start < chunk.end <= len(text)
        assert chunk.text == text[chunk.start : chunk.end]
        assert chunk.text.strip() == chunk.text


def test_windows_stop_before_a_subhead() -> None:
    text = (
        "Title\n\nThe convoy left at dawn. It reached the border by noon.\n\n"
        "Agreement on Syria\n\nThe talks resumed on Monday. Both sides attended."
    )
    chunks = windows(text, ChunkingSettings(max_chars=300, max_sentences=3))
    by_start = {c.text.split(".")[0]: c.text for c in chunks}
    # The window of the paragraph's last sentence does not take in the next section's title...
    assert by_start["It reached the border by noon"] == "It reached the border by noon."
    # ...and a window starting at the subhead keeps it with nothing of the section before.
    assert all(
        not c.text.endswith("Agreement on Syria") or c.text == "Agreement on Syria" for c in chunks
    )
