"""Saved web pages under seeds/: the main text only, and the page's own title, outlet and date."""

from __future__ import annotations

import datetime as dt
import os
from pathlib import Path

import pytest

from qa_bot.corpus import read_article
from qa_bot.seed_files import SourceFile, discover

STORY = (
    "The ministry said on Tuesday that the new bridge over the river would open to traffic "
    "in the spring, after two years of delays caused by flooding and a dispute with the builder. "
    "Engineers inspected the main span last week and found no faults, the ministry added. "
)
SECOND = (
    "Local officials welcomed the news and said the bridge would cut the journey to the regional "
    "capital by almost an hour for thousands of commuters who now take the ferry every day. "
)
FURNITURE = (
    "We use cookies to improve your experience",
    "Accept all cookies",
    "Subscribe to our newsletter",
    "Home World Business Sport",
    "Photo: Reuters archive",
)


def _page(head: str, *, time_tag: str = "") -> str:
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8">
<title>Bridge to open in spring | Daily Courier</title>
{head}
</head><body>
<div id="cookie-banner" class="cookie-consent"><p>We use cookies to improve your experience.</p>
<button>Accept all cookies</button></div>
<header><nav><ul><li><a href="/">Home</a></li><li><a href="/world">World</a></li>
<li><a href="/business">Business</a></li><li><a href="/sport">Sport</a></li></ul></nav></header>
<main><article>
<h1>Bridge to open in spring</h1>
{time_tag}
<figure><img src="bridge.jpg" alt="bridge">
<figcaption>The bridge under construction, <time datetime="2011-02-11">February 11, 2011</time>.
Photo: Reuters archive</figcaption></figure>
<p>{STORY}</p>
<p>{SECOND}</p>
<p>Read the earlier story: <a href="/old"><time datetime="2014-05-05">May 5, 2014</time></a></p>
</article></main>
<aside><h3>Most read</h3><ul><li><a href="/x">Celebrity wedding photos</a></li></ul></aside>
<footer><p>Subscribe to our newsletter</p><p>© 2016 Daily Courier. All rights reserved.</p></footer>
</body></html>
"""


JSON_LD = """<meta property="og:site_name" content="Daily Courier">
<script type="application/ld+json">
{"@context": "https://schema.org", "@type": "NewsArticle", "headline": "Bridge to open in spring",
 "image": {"@type": "ImageObject", "url": "bridge.jpg", "datePublished": "2011-02-11"},
 "datePublished": "2016-09-24T10:15:00+03:00", "publisher": {"@type": "Organization",
 "name": "Daily Courier"}}
</script>"""
OG_TIME = """<meta property="og:site_name" content="The Courier">
<meta property="article:published_time" content="2016-09-22T08:00:00Z">"""
TIME_ONLY = """<meta property="og:site_name" content="Courier Online">"""


def _read(tmp_path: Path, name: str, html: str, overrides: dict | None = None):
    path = tmp_path / name
    path.write_text(html, encoding="utf-8")
    st = os.stat(path)
    return read_article(
        SourceFile(path, name, st.st_size, st.st_mtime_ns, (st.st_dev, st.st_ino)),
        overrides,
        10**7,
    )


@pytest.mark.parametrize(
    ("head", "time_tag", "outlet", "date"),
    [
        (JSON_LD, "", "Daily Courier", dt.date(2016, 9, 24)),
        (OG_TIME, "", "The Courier", dt.date(2016, 9, 22)),
        (
            TIME_ONLY,
            '<p>By staff, <time datetime="2016-09-20">Sept 20</time></p>',
            "Courier Online",
            dt.date(2016, 9, 20),
        ),
    ],
)
def test_page_metadata_gives_title_outlet_and_date(tmp_path, head, time_tag, outlet, date):
    article, why = _read(tmp_path, "bridge.html", _page(head, time_tag=time_tag))
    assert why is None and article is not None
    assert article.meta.title.startswith("Bridge to open in spring")
    assert article.meta.outlet == outlet
    assert article.meta.date == date  # never the caption's 2011 nor the linked story's 2014
    assert article.meta.path == "bridge.html" and article.id == "bridge"


def test_quotes_are_main_text_only_and_verbatim(tmp_path):
    article, _ = _read(tmp_path, "bridge.htm", _page(JSON_LD))
    assert article is not None
    bodies = [article.text[s:e] for s, e in article.body]
    joined = "\n".join(bodies)
    assert "new bridge over the river" in joined and "thousands of commuters" in joined
    for junk in (*FURNITURE, "Celebrity wedding", "All rights reserved"):
        assert junk not in article.text, junk
    for body in bodies:  # each span is a slice of the stored text, so a quote is verbatim
        assert body in article.text and body.strip() == body


def test_a_page_without_date_metadata_takes_the_dateline(tmp_path):
    html = _page(TIME_ONLY).replace(
        f"<p>{STORY}</p>", f"<p>MOSCOW, September 22./TASS/. {STORY}</p>"
    )
    article, _ = _read(tmp_path, "tass.html", html)
    assert article is not None
    assert article.meta.date is None and article.meta.date_text == "September 22"


def test_metadata_toml_wins_over_the_page(tmp_path):
    overrides = {"outlet": "Courier (print)", "date": dt.date(2016, 9, 25)}
    article, _ = _read(tmp_path, "bridge.html", _page(JSON_LD), overrides)
    assert article is not None
    assert article.meta.outlet == "Courier (print)" and article.meta.date == dt.date(2016, 9, 25)


def test_a_page_of_furniture_only_is_skipped_with_a_reason(tmp_path):
    html = "<html><body><nav><a href='/'>Home</a></nav><footer>© Courier</footer></body></html>"
    article, why = _read(tmp_path, "empty.html", html)
    assert article is None and why and "no article text" in why


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_html_links_and_fifos_are_refused_like_text_files(tmp_path):
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    outside = tmp_path / "secret.html"
    outside.write_text(_page(JSON_LD), encoding="utf-8")
    (seeds / "leak.html").symlink_to(outside)
    os.mkfifo(seeds / "pipe.htm")
    (seeds / "ok.html").write_text(_page(JSON_LD), encoding="utf-8")
    found, skipped = discover(seeds)
    assert [f.rel for f in found] == ["ok.html"]
    reasons = {s.path: s.reason for s in skipped}
    assert "outside the seeds folder" in reasons["leak.html"]
    assert "FIFO" in reasons["pipe.htm"]


def test_each_field_says_where_it_came_from(tmp_path):
    article, _ = _read(tmp_path, "a.html", _page(JSON_LD))
    assert article is not None
    assert dict(article.origins) == {
        "title": "page metadata",
        "outlet": "page metadata",
        "date": "page metadata",
    }
    dateline = _page("").replace(f"<p>{STORY}</p>", f"<p>MOSCOW, September 22./TASS/. {STORY}</p>")
    article, _ = _read(tmp_path, "b.html", dateline, {"title": "Bridge (edited)"})
    assert article is not None
    assert dict(article.origins) == {"title": "metadata.toml", "outlet": "text", "date": "text"}
