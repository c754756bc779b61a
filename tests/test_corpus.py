from __future__ import annotations

import codecs
import datetime as dt
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qa_bot.corpus import is_furniture, parse_article, read_article
from qa_bot.decoding import decode
from qa_bot.errors import SeedsError
from qa_bot.seed_files import SourceFile, discover
from qa_bot.sidecar import load_sidecar

from .conftest import SEEDS

# title, outlet, date, date_text for every seed: what a reader of each page would say.
EXPECTED = {
    "000_cb0a8d303033b8e8": (
        "US-led coalition must prove it really wants to separate Al-Nusra Front from rebels "
        "– Lavrov",
        "RT",
        dt.date(2016, 9, 24),
        "24 Sep, 2016 01:53",
    ),
    "001_fe20e008763192bb": (
        "Moscow says US failed to separate rebels from terrorists in response to US "
        "ultimatum over Syria",
        "RT",
        dt.date(2016, 9, 28),
        "28 Sep, 2016 15:59",
    ),
    "002_752c9a2701acfc05": (
        "US seeks to shield Nusra Front from airstrikes: Russia",
        "Press TV",
        None,
        None,
    ),
    "003_1b155dc13c4e1f4e": (
        "Russia accuses the US of supporting terror groups in Syria",
        None,
        None,
        None,
    ),
    "004_6573c82807c02ec9": (
        "Russia does not rule out strikes against Jaysh al-Islam and Ahrar Al-Sham",
        "TASS",
        None,  # "September 22" has no year: never invent one
        "September 22",
    ),
}

JUNK = (
    "cameraicon",
    "Podcasts",
    "SHARE THIS ARTICLE",
    "© Reuters",  # a bare credit line ("©Reuters" and "© AFP" close captions: kept)
    "Russian Foreign Minister Sergei Lavrov\n",  # a credit line's caption of five words
    "News   /   Russia",
    "All news",
    "0:00",
    "/TASS/",
)


def _read(path: Path, overrides: dict | None = None):
    st_ = path.stat()
    return read_article(SourceFile(path, path.name, st_.st_size, st_.st_mtime_ns), overrides, 10**8)


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_seed_metadata(stem: str) -> None:
    article, why = _read(SEEDS / f"{stem}.txt")
    assert article is not None, why
    meta = article.meta
    assert (meta.title, meta.outlet, meta.date, meta.date_text) == EXPECTED[stem]
    assert meta.id == stem
    assert len(meta.content_hash) == 64


@pytest.mark.parametrize("stem", sorted(EXPECTED))
def test_seed_body_is_clean_and_verbatim(stem: str) -> None:
    article, _ = _read(SEEDS / f"{stem}.txt")
    assert article is not None
    raw = (SEEDS / f"{stem}.txt").read_text(encoding="utf-8")
    assert article.text == raw
    body = "\n".join(article.text[s:e] for s, e in article.body)
    for junk in JUNK:
        assert junk not in body, junk
    # The headline is not repeated inside the body.
    assert article.meta.title not in body
    assert len(body) > 1500


def test_the_sites_note_of_its_addresses_is_kept_with_the_address() -> None:
    """Press TV's note of its alternate address is the page's words, and people ask about it;
    the bare address under it completes the note. An address alone on its line anywhere
    else is page furniture."""
    article, _ = _read(SEEDS / "002_752c9a2701acfc05.txt")
    assert article is not None
    lines = [article.text[s:e] for s, e in article.body]
    note = "Press TV’s website can also be accessed at the following alternate addresses:"
    assert lines[-2:] == [note, "www.presstv.co.uk"]
    assert is_furniture(note) and is_furniture("www.presstv.co.uk")
    text = "Title\n\nThe truce held.\n\nwww.example.com\n\nIt broke down later."
    parsed = parse_article(text, article_id="x", path="x.txt", digest="d")
    assert "www.example.com" not in "".join(parsed.text[s:e] for s, e in parsed.body)
    # Every address the note lists is kept; an address after the story's next line is not.
    listed = (
        "Title\n\nThe truce held.\n\n"
        f"{note}\n\nwww.presstv.co.uk\nwww.presstv.tv\n\nSHARE THIS ARTICLE\n\nwww.example.com"
    )
    parsed = parse_article(listed, article_id="y", path="y.txt", digest="d")
    body = [parsed.text[s:e] for s, e in parsed.body]
    assert body[-3:] == [note, "www.presstv.co.uk", "www.presstv.tv"]


def test_a_caption_that_tells_something_is_kept_with_its_credit() -> None:
    """A caption is article text, and so is what it says of the picture; a bare credit line
    under a portrait tells nothing and stays out."""
    article, _ = _read(SEEDS / "002_752c9a2701acfc05.txt")
    assert article is not None
    lines = [article.text[s:e].replace("\u00a0", " ") for s, e in article.body]
    assert any(
        line.endswith(
            "lead the International Support Group for Syria (ISSG) meeting in "
            "Munich, Germany, February 11, 2016 © AFP"
        )
        for line in lines
    )
    assert any(
        line.endswith("hit by rockets fired by foreign-backed militants. ©Reuters")
        for line in lines
    )
    assert not any(line.startswith("Russian Foreign Minister Sergei Lavrov ©") for line in lines)


def test_no_break_spaces_stay_in_the_original_text() -> None:
    article, _ = _read(SEEDS / "002_752c9a2701acfc05.txt")
    assert article is not None
    assert "\u00a0" in "".join(article.text[s:e] for s, e in article.body)


def test_discover_is_recursive_sorted_and_filters_suffixes(corpus: Path) -> None:
    (corpus / "notes.json").write_text("{}")
    (corpus / ".hidden.txt").write_text("secret")
    files, skipped = discover(corpus)
    assert [f.rel for f in files] == ["alpha.txt", "beta.txt", "nested/gamma.md"]
    assert skipped == []


def test_missing_seeds_folder_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(SeedsError, match="seeds folder not found"):
        discover(tmp_path / "nope")


def test_symlink_loop_is_reported_not_followed_forever(corpus: Path) -> None:
    (corpus / "nested" / "loop").symlink_to(corpus, target_is_directory=True)
    files, skipped = discover(corpus)
    assert [f.rel for f in files] == ["alpha.txt", "beta.txt", "nested/gamma.md"]
    assert any("symlink loop" in s.reason for s in skipped)


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "empty file"),
        (b"   \n\n  ", "empty file"),
        (b"\x00\x01\x02binary\x00\x00" * 50, "binary"),
        (b"icon a icon b icon c icon d icon e\nPodcasts\n0:00\n", "page furniture"),
        (b"Just a headline\n", "only a headline, no article text"),
        (b"# Just a headline\n\n24 Sep, 2016 01:53\n\nJust a headline\n", "only a headline"),
        ("\ufeffHeadline in UTF-16\n".encode("utf-16"), "only a headline"),
        (codecs.BOM_UTF16_LE + b"\x00\x00" * 40, "binary"),
    ],
)
def test_unusable_files_are_reported(tmp_path: Path, data: bytes, reason: str) -> None:
    path = tmp_path / "bad.txt"
    path.write_bytes(data)
    article, why = _read(path)
    assert article is None
    assert why is not None and reason in why


def test_oversized_file_is_skipped(tmp_path: Path) -> None:
    path = tmp_path / "big.txt"
    path.write_bytes(b"Title\n\n" + b"word " * 1000)
    st_ = path.stat()
    article, why = read_article(
        SourceFile(path, "big.txt", st_.st_size, st_.st_mtime_ns), None, 100
    )
    assert article is None and why is not None and "too large" in why


def test_vanished_file_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "gone.txt"
    article, why = read_article(SourceFile(path, "gone.txt", 10, 0), None, 10**6)
    assert article is None and why == "vanished while being read"


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("Café – “quoted”".encode(), "Café – “quoted”"),
        (b"\xef\xbb\xbfBOM text", "BOM text"),
        ("UTF-16 text".encode("utf-16"), "UTF-16 text"),
        (codecs.BOM_UTF16_LE + "Zürich – “LE”".encode("utf-16-le"), "Zürich – “LE”"),
        (codecs.BOM_UTF16_BE + "Zürich – “BE”".encode("utf-16-be"), "Zürich – “BE”"),
        (codecs.BOM_UTF32_LE + "Zürich 32 LE".encode("utf-32-le"), "Zürich 32 LE"),
        (codecs.BOM_UTF32_BE + "Zürich 32 BE".encode("utf-32-be"), "Zürich 32 BE"),
        (b"\xef\xbb\xbfBOM then cp1252 \x93", "BOM then cp1252 \ufffd"),
        ("Caf\xe9 \x93quoted\x94".encode("latin-1"), "Café “quoted”"),
    ],
)
def test_decode_fallbacks(data: bytes, expected: str) -> None:
    assert decode(data) == expected


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_articles_saved_with_a_byte_order_mark_are_read(tmp_path: Path, encoding: str) -> None:
    path = tmp_path / "wide.txt"
    text = "Zürich talks\n\nThe café owners met in Zürich on Monday – “a first”.\n"
    bom = codecs.BOM_UTF16_BE if encoding == "utf-16-be" else b""
    path.write_bytes(bom + text.encode(encoding))
    article, why = _read(path)
    assert why is None and article is not None
    assert article.meta.title == "Zürich talks"
    body = article.text[article.body[0][0] : article.body[0][1]]
    assert body == "The café owners met in Zürich on Monday – “a first”."


def test_dates_in_several_formats() -> None:
    cases = {
        "1987-02-26T15:01:01\n\nTitle\n\nBody text here.": (dt.date(1987, 2, 26), None),
        "September 24, 2016\n\nTitle\n\nBody text here.": (dt.date(2016, 9, 24), None),
        "24 September 2016 10:00 GMT\n\nTitle\n\nBody.": (dt.date(2016, 9, 24), None),
        "Title\n\nLONDON, March 3 (Reuters) - Body.": (None, "March 3"),
        "Title\n\nNo date anywhere. Even February 11, 2016 in the story is not one.": (
            None,
            None,
        ),
    }
    for text, (date, date_text) in cases.items():
        meta = parse_article(text, article_id="x", path="x.txt", digest="d").meta
        assert meta.date == date, text
        if date is None:
            assert meta.date_text == date_text, text
    reuters = parse_article(
        "Title\n\nLONDON, March 3 (Reuters) - Body.", article_id="x", path="x", digest="d"
    )
    assert reuters.meta.outlet == "Reuters"


def test_markdown_heading_is_the_title() -> None:
    article = parse_article(
        "# A headline\n\nSome body text.", article_id="m", path="m.md", digest="d"
    )
    assert article.meta.title == "A headline"
    assert article.text[article.body[0][0] : article.body[0][1]] == "Some body text."


def test_sidecar_overrides_metadata(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    (seeds / "a.txt").write_text("Old title\n\nMOSCOW, September 22./TASS/. Body text.\n")
    (seeds / "metadata.toml").write_text(
        '["a.txt"]\ndate = 2016-09-22\nurl = "https://example.org/a"\ntitle = "New title"\n'
    )
    sidecar = load_sidecar(seeds, "metadata.toml")
    assert sidecar.problems == ()
    article, _ = _read(seeds / "a.txt", sidecar.entries["a.txt"])
    assert article is not None
    meta = article.meta
    assert (meta.title, meta.outlet, meta.date, meta.url) == (
        "New title",
        "TASS",
        dt.date(2016, 9, 22),
        "https://example.org/a",
    )
    assert meta.date_text == "2016-09-22"


@settings(max_examples=150, deadline=None)
@given(st.text(alphabet=st.characters(codec="utf-8"), max_size=400))
def test_parser_never_crashes_and_body_spans_are_in_bounds(text: str) -> None:
    article = parse_article(text, article_id="p", path="p.txt", digest="d")
    for start, end in article.body:
        assert 0 <= start < end <= len(text)
        assert article.text[start:end].strip() == article.text[start:end]
