"""News feeds pulled from a loopback HTTP server written here: new entries' pages are saved
under seeds/feeds/<site>/ with their address and date, indexed, and every failure is one line."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qa_bot.corpus import read_article
from qa_bot.feeds import (
    FeedError,
    SitePacer,
    add_feed,
    load_feeds,
    page_path,
    pull_feeds,
    remove_feed,
)
from qa_bot.indexer import update_index
from qa_bot.seed_files import discover
from qa_bot.settings import FeedsSettings
from qa_bot.sidecar import load_sidecar
from qa_bot.store import IndexStore

from .conftest import CountingEmbedder, make_settings

SETTINGS = FeedsSettings(
    timeout_seconds=3, max_bytes=20_000, max_redirects=3, per_site_interval_seconds=0
)


def page(title: str, body: str, published: str | None) -> bytes:
    meta = f'<meta property="article:published_time" content="{published}">' if published else ""
    return f"""<html><head><title>{title}</title>{meta}
<meta property="og:site_name" content="Loopback News"></head><body>
<nav><a href="/">Home</a> <a href="/world">World</a></nav>
<div class="cookies">We use cookies. Accept all cookies</div>
<article><h1>{title}</h1><p>{body}</p>
<p>Officials said more details would follow later in the week, after the inquiry.</p></article>
<footer>Subscribe to our newsletter</footer></body></html>""".encode()


def rss(base: str, items: list[tuple[str, str, str]]) -> bytes:
    entries = "".join(
        f"<item><title>{t}</title><link>{base}{link}</link><guid>{base}{link}</guid>"
        f"<pubDate>{date}</pubDate></item>"
        for t, link, date in items
    )
    return (
        '<?xml version="1.0"?><rss version="2.0"><channel><title>Loopback News</title>'
        f"<link>{base}/</link>{entries}</channel></rss>"
    ).encode()


class Server:
    """Routes: path -> (status, headers, body). Records the requests' headers."""

    def __init__(self) -> None:
        self.routes: dict[str, tuple[int, dict[str, str], bytes]] = {}
        self.requests: list[tuple[str, dict[str, str]]] = []
        #: When each request arrived (time.monotonic), in the order of ``requests``.
        self.times: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                outer.times.append(time.monotonic())
                outer.requests.append((self.path, dict(self.headers)))
                status, headers, body = outer.routes.get(self.path, (404, {}, b"not found"))
                if "ETag" in headers and self.headers.get("If-None-Match") == headers["ETag"]:
                    status, body = 304, b""
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def html(self, path: str, body: bytes) -> None:
        self.routes[path] = (200, {"Content-Type": "text/html; charset=utf-8"}, body)


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


ITEMS = [
    ("Dam completed", "/news/dam-completed", "Mon, 19 Sep 2016 08:00:00 GMT"),
    ("Harbour dredged", "/news/harbour.html", "Tue, 20 Sep 2016 08:00:00 GMT"),
    ("Tunnel opens", "/news/tunnel-opens", "Wed, 21 Sep 2016 08:00:00 GMT"),
]


def _serve_news(server: Server) -> None:
    server.routes["/feed.xml"] = (
        200,
        {"Content-Type": "application/rss+xml", "ETag": '"v1"'},
        rss(server.base, ITEMS),
    )
    server.html("/news/dam-completed", page("Dam completed", "The dam was completed.", None))
    server.html(
        "/news/harbour.html",
        page("Harbour dredged", "The harbour was dredged to twelve metres.", "2016-09-18"),
    )
    server.html(
        "/news/tunnel-opens",
        page("Tunnel opens", "The tunnel under the river opened to traffic.", "2016-09-21T07:00Z"),
    )


def test_pull_saves_new_pages_with_address_and_date_then_asks_conditionally(
    tmp_path: Path, server: Server
) -> None:
    seeds = tmp_path / "seeds"
    seeds.mkdir()
    _serve_news(server)
    add_feed(seeds, server.base + "/feed.xml")
    report = pull_feeds(seeds, SETTINGS)
    assert report.failures == []
    assert sorted(report.stored) == sorted(page_path(server.base + link) for _, link, _ in ITEMS)
    assert all(rel.startswith("feeds/127.0.0.1_") for rel in report.stored)
    assert all(h.get("User-Agent", "").startswith("qa-bot/") for _, h in server.requests)

    files, _ = discover(seeds)
    sidecar = load_sidecar(seeds, "metadata.toml", known=[f.rel for f in files])
    assert not sidecar.errors
    dam = page_path(server.base + "/news/dam-completed")
    harbour = page_path(server.base + "/news/harbour.html")
    assert sidecar.entries[dam]["url"] == server.base + "/news/dam-completed"
    assert sidecar.entries[dam]["date"] == dt.date(2016, 9, 19)  # the page states none: feed's
    assert "date" not in sidecar.entries[harbour]  # the page states its own

    by_rel = {f.rel: f for f in files}
    article, why = read_article(by_rel[harbour], sidecar.entries[harbour], 10**6)
    assert why is None and article is not None
    assert article.meta.date == dt.date(2016, 9, 18) and article.meta.outlet == "Loopback News"
    assert article.meta.url == server.base + "/news/harbour.html"
    assert "cookies" not in article.text and "Subscribe" not in article.text

    settings = make_settings(tmp_path, seeds)
    update_index(settings, CountingEmbedder())
    assert set(report.stored) <= set(IndexStore(settings.index_dir).read_manifest().files)

    again = pull_feeds(seeds, SETTINGS)
    assert again.stored == [] and again.unchanged == [server.base + "/feed.xml"]
    assert server.requests[-1][1].get("If-None-Match") == '"v1"'
    assert len(load_feeds(seeds)[0].seen) == 3


def test_only_new_entries_are_fetched(tmp_path: Path, server: Server) -> None:
    seeds = tmp_path / "seeds"
    _serve_news(server)
    server.routes["/feed.xml"] = (
        200,
        {"Content-Type": "application/rss+xml"},
        rss(server.base, ITEMS[:2]),
    )
    add_feed(seeds, server.base + "/feed.xml")
    assert len(pull_feeds(seeds, SETTINGS).stored) == 2
    server.routes["/feed.xml"] = (
        200,
        {"Content-Type": "application/rss+xml"},
        rss(server.base, ITEMS),
    )
    fetched_before = len(server.requests)
    report = pull_feeds(seeds, SETTINGS)
    assert report.stored == [page_path(server.base + "/news/tunnel-opens")]
    assert [p for p, _ in server.requests[fetched_before:]] == [
        "/feed.xml",
        "/robots.txt",  # once per site and pull; none here, so everything is allowed
        "/news/tunnel-opens",
    ]


def test_every_failure_is_one_line_and_nothing_saved_is_lost(
    tmp_path: Path, server: Server
) -> None:
    seeds = tmp_path / "seeds"
    _serve_news(server)
    add_feed(seeds, server.base + "/feed.xml")
    first = pull_feeds(seeds, SETTINGS)
    saved = {rel: (seeds / rel).read_bytes() for rel in first.stored}

    bad_items = [
        ("Missing", "/news/missing", "Thu, 22 Sep 2016 08:00:00 GMT"),
        ("A PDF", "/news/report.pdf", "Thu, 22 Sep 2016 09:00:00 GMT"),
        ("Huge", "/news/huge", "Thu, 22 Sep 2016 10:00:00 GMT"),
        ("Loop", "/news/loop", "Thu, 22 Sep 2016 11:00:00 GMT"),
    ]
    server.routes["/bad-entries.xml"] = (
        200,
        {"Content-Type": "application/rss+xml"},
        rss(server.base, bad_items),
    )
    server.routes["/news/report.pdf"] = (200, {"Content-Type": "application/pdf"}, b"%PDF-1.4")
    server.html("/news/huge", b"<html><body><p>" + b"x" * 50_000 + b"</p></body></html>")
    server.routes["/news/loop"] = (302, {"Location": "/news/loop"}, b"")
    server.routes["/broken.xml"] = (
        200,
        {"Content-Type": "application/rss+xml"},
        b"<rss><channel><item><title>oops",  # nothing usable before the break
    )
    for path in ("/bad-entries.xml", "/broken.xml", "/gone.xml"):
        add_feed(seeds, server.base + path)
    add_feed(seeds, "http://127.0.0.1:9/unreachable.xml")  # the discard port: nothing listens

    report = pull_feeds(seeds, SETTINGS)
    assert report.stored == []
    lines = report.failures
    assert all("\n" not in line for line in lines)
    joined = "\n".join(lines)
    assert "/news/missing: HTTP 404" in joined
    assert "/news/report.pdf: not an HTML page (application/pdf)" in joined
    assert "/news/huge: too large" in joined
    assert "/news/loop: too many redirects" in joined
    assert "/broken.xml: not a readable feed (malformed XML: " in joined
    assert "/gone.xml: HTTP 404" in joined
    assert "unreachable.xml: cannot fetch" in joined
    assert len(lines) == 7
    assert {rel: (seeds / rel).read_bytes() for rel in first.stored} == saved
    assert not [p for p in (seeds / "feeds").rglob("*") if p.name.endswith(".part")]


def test_add_and_remove_check_their_address(tmp_path: Path) -> None:
    seeds = tmp_path / "seeds"
    with pytest.raises(FeedError, match="not an http"):
        add_feed(seeds, "ftp://example.org/feed")
    add_feed(seeds, "https://example.org/feed.xml")
    with pytest.raises(FeedError, match="already subscribed"):
        add_feed(seeds, "https://example.org/feed.xml")
    with pytest.raises(FeedError, match="not subscribed"):
        remove_feed(seeds, "https://example.org/other.xml")
    remove_feed(seeds, "https://example.org/feed.xml")
    assert load_feeds(seeds) == []


def test_feeds_commands(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src")}

    def qa(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "qa_bot", "--seeds", str(tmp_path / "seeds"), "feeds", *args],
            capture_output=True,
            text=True,
            timeout=60,
            env=env,
            cwd=tmp_path,
        )

    assert qa("add", "https://example.org/feed.xml").returncode == 0
    listed = qa("list")
    assert listed.returncode == 0 and "https://example.org/feed.xml" in listed.stdout
    bad = qa("add", "not a url")
    assert bad.returncode == 2 and "not an http(s) address" in bad.stderr
    assert "Traceback" not in bad.stderr
    assert qa("remove", "https://example.org/feed.xml").returncode == 0
    assert qa("remove", "https://example.org/feed.xml").returncode == 2


# --- politeness and lenient reading ------------------------------------------------------------


def _feed_of(server: Server, path: str, links: list[str]) -> None:
    items = [(link.rsplit("/", 1)[-1], link, "Thu, 22 Sep 2016 08:00:00 GMT") for link in links]
    server.routes[path] = (200, {"Content-Type": "application/rss+xml"}, rss(server.base, items))
    for link in links:
        server.html(link, page(link.rsplit("/", 1)[-1], "The bridge reopened to traffic.", None))


def test_robots_txt_is_read_once_per_site_and_obeyed(tmp_path: Path, server: Server) -> None:
    seeds = tmp_path / "seeds"
    _feed_of(server, "/feed.xml", ["/news/open", "/private/secret", "/news/also-open"])
    server.routes["/robots.txt"] = (
        200,
        {"Content-Type": "text/plain"},
        b"User-agent: *\nDisallow: /news/\n\nUser-agent: qa-bot\nDisallow: /private/\n",
    )
    add_feed(seeds, server.base + "/feed.xml")
    report = pull_feeds(seeds, SETTINGS)
    assert sorted(report.stored) == sorted(
        page_path(server.base + p) for p in ("/news/open", "/news/also-open")
    )
    assert report.failures == [
        f"page {server.base}/private/secret: disallowed by the site's robots.txt"
    ]
    paths = [p for p, _ in server.requests]
    assert paths.count("/robots.txt") == 1 and "/private/secret" not in paths
    # A disallowed page is not asked about again; robots.txt is read again the next pull.
    again = pull_feeds(seeds, SETTINGS)
    assert again.failures == [] and again.stored == []


@pytest.mark.parametrize(
    ("status", "expected"),
    [
        (404, None),  # no robots.txt: everything is allowed
        (403, "disallowed by the site's robots.txt"),
        (503, "not fetched: the site's robots.txt is unavailable (HTTP 503"),
    ],
)
def test_robots_txt_that_cannot_be_read(
    tmp_path: Path, server: Server, status: int, expected: str | None
) -> None:
    seeds = tmp_path / "seeds"
    _feed_of(server, "/feed.xml", ["/news/open"])
    if status != 404:
        server.routes["/robots.txt"] = (status, {}, b"no")
    add_feed(seeds, server.base + "/feed.xml")
    report = pull_feeds(seeds, SETTINGS)
    if expected is None:
        assert report.failures == [] and len(report.stored) == 1
    else:
        [line] = report.failures
        assert line.startswith(f"page {server.base}/news/open: {expected}")
        assert report.stored == [] and "/news/open" not in [p for p, _ in server.requests]


def test_requests_to_one_site_are_spaced(tmp_path: Path, server: Server) -> None:
    """Every request of a pull (feed, robots.txt, pages) waits its turn on the pacer: on a
    clock that moves only when the pacer sleeps, each after the first sleeps a whole interval.
    (The pacer's arithmetic is the next test's; wall-clock gaps seen by the server jitter.)"""
    seeds = tmp_path / "seeds"
    _feed_of(server, "/feed.xml", ["/news/a", "/news/b", "/news/c"])
    add_feed(seeds, server.base + "/feed.xml")
    clock = _Clock(0.0)
    report = pull_feeds(seeds, SETTINGS, pacer=clock.pacer(0.5))
    assert len(report.stored) == 3
    assert len(server.times) == 5  # the feed, robots.txt, three pages
    assert clock.slept == [0.5] * 4


class _Clock:
    """A clock that moves only when a test moves it or a pacer sleeps on it; it records the
    sleeps (rounded to the millisecond)."""

    def __init__(self, now: float):
        self.now = now
        self.slept: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.slept.append(round(seconds, 3))
        self.now += seconds

    def pacer(self, interval: float) -> SitePacer:
        return SitePacer(interval, clock=lambda: self.now, sleep=self.sleep)


def test_site_pacer_waits_only_for_the_same_site() -> None:
    clock = _Clock(100.0)
    pacer = clock.pacer(1.0)
    pacer.wait("http://a.example/feed")
    pacer.wait("http://b.example/feed")  # another site: no wait
    clock.now += 0.25
    pacer.wait("http://a.example/page")  # 0.75 s left of a's interval
    pacer.wait("HTTP://A.example/other")  # right after: a full interval
    clock.now += 5
    pacer.wait("http://a.example/later")
    assert clock.slept == [0.75, 1.0]


def test_malformed_xml_uses_the_entries_before_the_break(tmp_path: Path, server: Server) -> None:
    seeds = tmp_path / "seeds"
    _feed_of(server, "/feed.xml", ["/news/a", "/news/b"])
    good = server.routes["/feed.xml"][2]
    broken = good.replace(b"</channel></rss>", b"<item><title>C &bogus; <b></item></channel></rss>")
    server.routes["/feed.xml"] = (200, {"Content-Type": "application/rss+xml"}, broken)
    add_feed(seeds, server.base + "/feed.xml")
    report = pull_feeds(seeds, SETTINGS)
    assert len(report.stored) == 2 and report.failures == []
    [note] = report.notes
    assert note.startswith(f"feed {server.base}/feed.xml: malformed XML (")
    assert note.endswith("used the 2 entries read before it") and "\n" not in note


def test_a_feed_redirecting_in_a_loop_is_one_line(tmp_path: Path, server: Server) -> None:
    seeds = tmp_path / "seeds"
    server.routes["/loop.xml"] = (301, {"Location": "/loop-again.xml"}, b"")
    server.routes["/loop-again.xml"] = (302, {"Location": "/loop.xml"}, b"")
    add_feed(seeds, server.base + "/loop.xml")
    report = pull_feeds(seeds, SETTINGS)
    assert report.failures == [
        f"feed {server.base}/loop.xml: too many redirects (a redirect loop?)"
    ]
    assert report.stored == [] and len(server.requests) == SETTINGS.max_redirects + 1
