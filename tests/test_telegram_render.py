"""The Telegram renderer: any answer becomes messages Telegram accepts, and nothing is lost.

"Accepts" is checked with the Bot API fake's parser (``tests/botapi_fake.py``), the same rules
the end-to-end tests run against: only Telegram's tags, balanced; only its entities; at most
4096 UTF-16 code units of text.
"""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qa_bot.commands import bot_commands
from qa_bot.models import Answer, ArticleMeta, Citation, IndexStatus, Passage, SourceInfo
from qa_bot.telegram.markup import MAX_MESSAGE_LENGTH, Block, Run, escape, pack, utf16_len
from qa_bot.telegram.render import (
    render_answer,
    render_help,
    render_one_answer,
    render_passage,
    render_sources,
    render_status,
    render_welcome,
    with_code,
)
from tests.botapi_fake import HTMLParseError, check_message_text, parse_html

from .conftest import make_meta

TRICKY = [
    "<",
    ">",
    "&",
    "&amp;",
    "&lt;b&gt;",
    '"',
    "'",
    "<b>",
    "</i>",
    "<a href='x'>",
    "🚀",
    "👩‍💻",  # a ZWJ sequence
    "👍🏽",  # with a skin tone
    "🇷🇺",  # a flag: two regional indicators
    "é",  # e + combining accent
    "Привет",
    "中文",
    " ",
    "\n",
    "\n\n",
    ". ",
    "? ",
    "…",
    "“quoted.” ",
    "word",
    "x" * 50,
]
fragment = st.one_of(st.sampled_from(TRICKY), st.text(max_size=20))
text = st.lists(fragment, max_size=60).map("".join)
#: Long texts, made by repeating a drawn stretch: drawing hundreds of fragments one by one
#: made these tests slow (most of their time was Hypothesis drawing), for no more variety at
#: the cuts.
long_text = st.tuples(text.filter(bool), st.integers(min_value=10, max_value=80)).map(
    lambda drawn: drawn[0] * drawn[1]
)
maybe_long = st.one_of(text, long_text)


@st.composite
def metas(draw: st.DrawFn) -> ArticleMeta:
    return ArticleMeta(
        id=draw(st.text(min_size=1, max_size=30)),
        path="a.txt",
        title=draw(maybe_long),
        outlet=draw(st.one_of(st.none(), text)),
        date=draw(st.one_of(st.none(), st.dates())),
        date_text=draw(st.one_of(st.none(), text)),
        url=draw(
            st.one_of(
                st.none(),
                st.just("https://example.com/a?b=1&c=<2>"),
                st.just('https://x.org/"quoted"'),
                st.just("javascript:alert(1)"),
                text,
            )
        ),
        content_hash="0" * 64,
    )


@st.composite
def answers(draw: st.DrawFn) -> Answer:
    answered = draw(st.booleans())
    quotes = draw(st.lists(maybe_long, min_size=1, max_size=5)) if answered else []
    citations = tuple(
        Citation(n=i, article=draw(metas()), quote=q, start=0, end=1, score=1.0)
        for i, q in enumerate(quotes, 1)
    )
    return Answer(
        question=draw(text),
        answered=answered,
        text=draw(text),
        citations=citations,
        notes=tuple(draw(st.lists(text, max_size=2))),
        suggestions=tuple(draw(st.lists(maybe_long, max_size=2))),
    )


def accepted(message: str, limit: int = MAX_MESSAGE_LENGTH) -> str:
    """The message's plain text, after checking it as Telegram would."""
    assert utf16_len(message) <= limit
    text, _ = check_message_text(message, "HTML")
    return text


def squeeze(value: str) -> str:
    return "".join(value.split())


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answers())
def test_any_answer_renders_into_valid_messages(answer: Answer) -> None:
    messages = render_answer(answer)
    assert messages
    shown = squeeze("".join(accepted(m) for m in messages))
    for c in answer.citations:
        assert squeeze(c.quote) in shown
        assert squeeze(c.article.title) in shown
        assert squeeze(c.article.date_label()) in shown
    if not answer.citations:
        assert squeeze(answer.text) in shown
        for title in answer.suggestions:
            assert squeeze(title) in shown
    for note in answer.notes:
        assert squeeze(note) in shown


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    st.lists(st.tuples(maybe_long, st.booleans(), st.booleans()), min_size=1, max_size=6),
    st.integers(min_value=60, max_value=600),
)
def test_pack_respects_any_limit_and_keeps_the_text(
    parts: list[tuple[str, bool, bool]], limit: int
) -> None:
    blocks = [
        Block((Run("[1]", ("b",)), Run(body, ("i",) if italic else ())), quote=quote)
        for body, quote, italic in parts
    ]
    messages = pack(blocks, limit)
    shown = squeeze("".join(accepted(m, limit) for m in messages))
    assert shown == squeeze("".join(b.text for b in blocks))


def test_cuts_fall_between_sentences_when_they_can() -> None:
    sentence = "The ministry said the convoy was attacked near Aleppo on Monday evening. "
    answer = _answer_with_quote(sentence * 200)
    messages = render_answer(answer)
    assert len(messages) >= 4
    for message in messages[:-1]:
        assert accepted(message).rstrip().endswith("evening.")


def test_cuts_prefer_paragraphs() -> None:
    paragraph = "First sentence here. Second sentence, longer than the first one. " * 5
    block = Block((Run("\n".join([paragraph] * 40)),))
    messages = pack([block], 1000)
    for message in messages[:-1]:
        assert message.endswith("first one.")
    assert [len(m.split("\n")) for m in messages[:-1]] == [len(messages[0].split("\n"))] * (
        len(messages) - 1
    )


@pytest.mark.parametrize("glyph", ["👩‍💻", "👍🏽", "🇷🇺", "é", "🚀"])
def test_an_unbroken_word_is_cut_between_whole_characters(glyph: str) -> None:
    block = Block((Run(glyph * 3000),))
    messages = pack([block], 500)
    pieces = [accepted(m, 500) for m in messages]
    assert "".join(pieces) == glyph * 3000
    assert all(len(p) % len(glyph) == 0 for p in pieces)


def test_entities_are_never_cut() -> None:
    block = Block((Run("&<>" * 2000, ("b",)),), quote=True)
    messages = pack([block], 4096)
    assert "".join(accepted(m) for m in messages) == "&<>" * 2000
    assert all(m.startswith("<blockquote><b>") for m in messages)


def test_heading_stays_with_the_line_after_it() -> None:
    filler = Block((Run("x" * 4060),))  # room for the heading, not for the line too
    heading = Block((Run("Sources", ("b",)),), keep_with_next=True)
    line = Block((Run("[1] A title — RT, 24 Sep 2016"),))
    messages = pack([filler, heading, line])
    assert len(messages) == 2
    assert messages[1].startswith("<b>Sources</b>")


def test_article_text_is_escaped_and_links_are_only_http() -> None:
    meta = make_meta(
        title="<script>alert('&')</script>", outlet="R&D <Weekly>", url="javascript:alert(1)"
    )
    [html] = render_answer(_answer_with_quote("1 < 2 & 3 > 2", meta))
    text, entities = parse_html(html)
    assert "<script>alert('&')</script>" in text
    assert "R&D <Weekly>, date not stated" in text
    assert "text_link" not in {e["type"] for e in entities}
    linked = _answer_with_quote("q", make_meta(url="https://example.com/?a=1&b=2"))
    _, entities = parse_html(render_answer(linked)[0])
    assert [e["url"] for e in entities if e["type"] == "text_link"] == [
        "https://example.com/?a=1&b=2"
    ]


def test_answer_layout() -> None:
    answer = Answer(
        question="q",
        answered=True,
        text="",
        citations=(
            Citation(1, make_meta(title="First"), "Quote one.", 0, 1, 1.0),
            Citation(
                2, make_meta(title="Second", date_text="24 Sep, 2016 01:53"), "Two.", 0, 1, 1.0
            ),
        ),
        notes=("Searching only articles from RT.",),
    )
    [html] = render_answer(answer)
    assert html == (
        "<i>Searching only articles from RT.</i>\n"
        "<blockquote><b>[1]</b> Quote one.</blockquote>\n"
        "<blockquote><b>[2]</b> Two.</blockquote>\n\n"
        "<b>Sources</b>\n"
        "[1] <b>First</b> — RT, date not stated\n"
        "[2] <b>Second</b> — RT, 24 Sep, 2016 01:53"
    )


def test_declined_answer_layout() -> None:
    answer = Answer("q", False, "The articles don't cover this.", suggestions=("A & B",))
    [html] = render_answer(answer)
    assert html == (
        "The articles don't cover this.\nThe nearest topics the articles do cover:\n"
        "• <b>A &amp; B</b>"
    )


@settings(max_examples=60, deadline=None)
@given(metas(), long_text, st.data())
def test_any_passage_renders_with_its_quote_in_bold(
    meta: ArticleMeta, body: str, data: st.DataObject
) -> None:
    body = body or "x"
    start = data.draw(st.integers(0, len(body) - 1))
    end = data.draw(st.integers(start + 1, len(body)))
    html = render_passage(Passage(meta, body, start, end), 3)
    shown, entities = check_message_text(html, "HTML")  # one message Telegram accepts
    assert shown.startswith("Passage [3]")
    trimmed = "…" in shown and squeeze(body) not in squeeze(shown)
    if not trimmed:
        assert squeeze(body) in squeeze(shown)
    units = shown.encode("utf-16-le")  # entity offsets count UTF-16 code units
    bold = "".join(
        units[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
        for e in entities
        if e["type"] == "bold" and e["offset"] > 0  # not the heading
    )
    quote = squeeze(body[start:end])
    if quote:  # the quote in bold, whole or (when it alone is too long) its start
        assert squeeze(bold).startswith(quote[:200]) or quote in squeeze(bold)


def test_a_long_passage_is_trimmed_around_its_quote_into_one_message() -> None:
    before = "Earlier sentence number {i} of the inquiry. "
    after = "Later sentence number {i} of the inquiry. "
    quote = "The spillway was undersized by forty percent."
    head = "".join(before.format(i=i) for i in range(150))
    body = head + quote + " " + "".join(after.format(i=i) for i in range(150))
    html = render_passage(Passage(make_meta(), body, len(head), len(head) + len(quote)), 1)
    text, entities = check_message_text(html, "HTML")
    assert utf16_len(html) <= MAX_MESSAGE_LENGTH
    assert text.startswith("Passage [1]\n… ") and " …\n[1] Title — RT" in text
    bold = [text[e["offset"] : e["offset"] + e["length"]] for e in entities if e["type"] == "bold"]
    assert (
        bold[:2] == ["Passage [1]", quote]
        and bold[2] == "Title"
        and "Earlier sentence number 149" in text
        and "Later sentence number 0" in text
    )
    # as much context as fits, about as much before the quote as after it
    shown_before = text.index(quote) - text.index("… ")
    shown_after = text.index(" …", text.index(quote)) - text.index(quote) - len(quote)
    assert len(text) > 3500 and abs(shown_before - shown_after) < 100


def test_a_quote_longer_than_a_message_is_cut_at_its_end() -> None:
    quote = "Word after word of one endless quote. " * 200
    html = render_passage(Passage(make_meta(), quote, 0, len(quote)), 2)
    text, entities = check_message_text(html, "HTML")
    bold = [text[e["offset"] : e["offset"] + e["length"]] for e in entities if e["type"] == "bold"][
        1
    ]
    assert quote.startswith(bold) and len(bold) > 3000 and "…" in text


def test_one_answer_message_keeps_the_quotes_that_fit() -> None:
    long_quote = "A sentence of a long quote. " * 60
    citations = tuple(Citation(n, make_meta(), long_quote, 0, 10, 1.0) for n in range(1, 5))
    answer = Answer("q", True, "", citations)
    assert len(render_answer(answer)) > 1
    html = render_one_answer(answer)
    text, _ = check_message_text(html, "HTML")
    assert "[1]" in text and "[4]" not in text and text.count("Sources") == 1


def test_passage_quote_is_bold() -> None:
    body = "Before the quote. The quote itself. After it."
    html = render_passage(Passage(make_meta(), body, 18, 35), 2)
    text, entities = parse_html(html)
    bold = [text[e["offset"] : e["offset"] + e["length"]] for e in entities if e["type"] == "bold"]
    assert "The quote itself." in bold


def test_sources_listing_is_capped_and_split() -> None:
    sources = [SourceInfo(make_meta(title=f"Title {i} " + "long " * 40), 3) for i in range(150)]
    messages = render_sources(sources)
    assert len(messages) > 1
    shown = "".join(accepted(m) for m in messages)
    assert shown.startswith("150 articles") and "100. Title 99" in shown
    assert "101. " not in shown and shown.endswith("… and 50 more.")
    assert render_sources([]) == ["The index has no articles yet."]


def test_status_welcome_and_help_are_valid_html() -> None:
    status = IndexStatus(
        generation="gen-000002",
        built_at="2016-09-30T10:00:00+00:00",
        model_id="all-MiniLM-L6-v2@abc",
        dense_kind="flat",
        articles=2,
        chunks=40,
        first_date=dt.date(2016, 9, 24),
        last_date=dt.date(2016, 9, 28),
        outlets=("R&D <Weekly>", "TASS"),
        stale=("new.txt",),
    )
    welcome = accepted(render_welcome(status, ["Who <is> it?", "What & why?", "not shown"]))
    assert "2 news articles, dated 24 Sep 2016 to 28 Sep 2016" in welcome
    assert "Who <is> it?" in welcome and "not shown" not in welcome
    assert "1 article file changed" in accepted(render_status(status))
    shown = accepted(
        render_help(max_question_chars=500, rate_limit_per_minute=10, outlets=status.outlets)
    )
    assert "R&D <Weekly>, TASS" in shown and "10 a minute" in shown


def test_help_lists_every_command_of_the_table() -> None:
    html = render_help(max_question_chars=500, rate_limit_per_minute=10, outlets=[])
    shown = accepted(html)
    for command in bot_commands():
        assert (f"/{command.name}" in shown) is command.in_help, command.name
    assert "<code>/outlet all</code>" in html and "/dates <i>from</i> <i>to</i>" in html
    assert with_code("use `/a <b>` & more") == "use <code>/a &lt;b&gt;</code> &amp; more"


def test_limit_matches_telegram() -> None:
    from telegram.constants import MessageLimit

    assert MAX_MESSAGE_LENGTH == MessageLimit.MAX_TEXT_LENGTH
    assert utf16_len("🚀a") == 3
    assert escape("<a & b>") == "&lt;a &amp; b&gt;"


@pytest.mark.parametrize(
    ("html", "problem"),
    [
        ("<b>bold", "Can't find end tag"),
        ("<b>bold</i>", "Unmatched end tag"),
        ("<div>x</div>", 'Unsupported start tag "div"'),
        ("a & b", "Character '&'"),
        ("a > b", "Character '>'"),
        ("<a>x</a>", "href"),
        ('<span class="x">x</span>', "tg-spoiler"),
        ("<blockquote><blockquote>x</blockquote></blockquote>", "nested"),
        ("<code><b>x</b></code>", "nested"),
        ("x</b>", "Unexpected end tag"),
        ("<b", "Unclosed start tag"),
    ],
)
def test_the_fake_refuses_what_telegram_refuses(html: str, problem: str) -> None:
    with pytest.raises(HTMLParseError, match=problem):
        parse_html(html)


def test_the_fake_accepts_telegram_html() -> None:
    text, entities = parse_html(
        "<b>b</b><strong>s</strong><i>i</i><em>e</em><u>u</u><ins>n</ins><s>s</s><strike>k"
        '</strike><del>d</del><span class="tg-spoiler">p</span><tg-spoiler>t</tg-spoiler>'
        '<a href="https://x.org/?a=1&amp;b=2">l</a><code>c</code><pre><code class="language-py">'
        "x</code></pre><blockquote>q</blockquote><blockquote expandable>e</blockquote>"
        "&lt;&gt;&amp;&quot;&#128640;&#x1F680;🚀"
    )
    assert text == 'bsieunskdptlcxqe<>&"🚀🚀🚀'
    assert len(entities) == 17
    assert entities[-1] == {"type": "expandable_blockquote", "offset": 15, "length": 1}
    too_long = "x" * 4097
    with pytest.raises(Exception, match="message is too long"):
        check_message_text(too_long, None)
    check_message_text("<b>" + "x" * 4096 + "</b>", "HTML")  # the limit is after parsing


def _answer_with_quote(quote: str, meta: ArticleMeta | None = None) -> Answer:
    return Answer(
        question="q",
        answered=True,
        text="",
        citations=(Citation(1, meta or make_meta(), quote, 0, len(quote), 1.0),),
    )


def test_a_passage_under_a_huge_title_still_shows_its_quote_in_one_message() -> None:
    meta = make_meta(title="<Title> " * 600)
    html = render_passage(Passage(meta, "Before. The quote. After.", 8, 18), 1)
    text, entities = check_message_text(html, "HTML")
    bold = [text[e["offset"] : e["offset"] + e["length"]] for e in entities if e["type"] == "bold"]
    assert bold[1] == "The quote." and bold[2].endswith("…") and len(bold[2]) < 300


def test_a_long_title_is_cut_before_the_quote_is() -> None:
    """A title of a couple of thousand characters leaves the quote too little room: the title
    is shown cut, and the quote keeps its first 200 characters at least."""
    meta = make_meta(title="Kessel dam inquiry finds design flaws 𐀀 " * 59)
    body = "The inquiry <b>&amp; its</b> findings were read out in full. " * 60
    html = render_passage(Passage(meta, body, 0, len(body)), 2)
    shown, entities = check_message_text(html, "HTML")
    units = shown.encode("utf-16-le")
    bold = "".join(
        units[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
        for e in entities
        if e["type"] == "bold" and e["offset"] > 0
    )
    assert squeeze(bold).startswith(squeeze(body)[:200])
    assert meta.title not in shown and "Kessel dam inquiry finds design flaws" in shown
