"""News feeds (RSS / Atom): new entries' pages saved under ``seeds/feeds/<site>/``.

The subscriptions and what each feed last said (its ETag, its Last-Modified, the entries
already saved) are kept in ``seeds/feeds/feeds.json``, so the next pull asks the server
conditionally and fetches only new pages. A page is stored as the ``.html`` file it was,
written to a hidden temporary name first and then renamed, so a watcher never reads it
half-way; its address and the feed's date for it go into the metadata file. Every failure (an
unreachable server, a 404, a response that is not a page, one too large, malformed XML, a
redirect loop) is one line of the report, and that feed or page is skipped: files already
saved, and so the index, are never touched by a failed pull. A feed whose XML is broken
part-way is read as far as it goes: the entries before the break are used, and the break is
one line of the report.

Politely: a page is fetched only when the site's robots.txt allows it (read once per site and
pull, with the same bounded fetcher; RFC 9309: a missing robots.txt allows everything, one that
cannot be fetched because of a server or network error allows nothing), and requests to one
site are at least ``feeds.per_site_interval_seconds`` apart.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser
from xml.sax import SAXException

from qa_bot.errors import QABotError
from qa_bot.settings import FeedsSettings

FEEDS_FOLDER = "feeds"
STATE_FILE = "feeds.json"
_HTML_TYPES = ("text/html", "application/xhtml+xml")
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


class FeedError(QABotError):
    """A feed command that cannot be done as asked (a bad address, an unknown feed)."""

    exit_code = 2


class FetchError(Exception):
    """One feed or page that could not be fetched; the message is the report's line, and
    ``status`` the HTTP status when the server answered with an error."""

    def __init__(self, message: str, status: int | None = None):
        super().__init__(message)
        self.status = status


@dataclass
class Feed:
    """One subscription and what its server said last time (for a conditional GET)."""

    url: str
    title: str | None = None
    etag: str | None = None
    modified: str | None = None
    seen: list[str] = field(default_factory=list)
    last_pull: str | None = None


@dataclass
class PullReport:
    """What a pull did: files saved (relative to seeds/), feeds unchanged, one line per failure,
    and one per problem that was worked around (a feed read only up to broken XML)."""

    stored: list[str] = field(default_factory=list)
    unchanged: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _site(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc.lower()}"


class SitePacer:
    """Keeps the starts of two requests to one site (scheme, host and port) at least
    ``interval`` seconds apart, sleeping when needed. The clock and the sleep can be given."""

    def __init__(
        self,
        interval: float,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], None] = time.sleep,
    ):
        self.interval = interval
        self._clock = clock
        self._sleep = sleep
        self._last: dict[str, float] = {}

    def wait(self, url: str) -> None:
        site = _site(url)
        if site in self._last:
            delay = self._last[site] + self.interval - self._clock()
            if delay > 0:
                self._sleep(delay)
        self._last[site] = self._clock()


class RobotsRules:
    """What each site's robots.txt allows the user agent, read once per site per pull."""

    def __init__(self, client: Any, settings: FeedsSettings, pacer: SitePacer):
        self._client = client
        self._settings = settings
        self._pacer = pacer
        self._sites: dict[str, RobotFileParser | str] = {}

    def refusal(self, url: str) -> str | None:
        """None when ``url`` may be fetched, else why not (one line)."""
        site = _site(url)
        if site not in self._sites:
            self._sites[site] = self._read(site)
        rules = self._sites[site]
        if isinstance(rules, str):
            return rules
        if not rules.can_fetch(self._settings.user_agent, url):
            return "disallowed by the site's robots.txt"
        return None

    def _read(self, site: str) -> RobotFileParser | str:
        rules = RobotFileParser(site + "/robots.txt")
        try:
            _, body = fetch(
                self._client, site + "/robots.txt", self._settings.max_bytes, None, self._pacer
            )
        except FetchError as exc:
            if exc.status in (401, 403):
                rules.disallow_all = True  # as urllib.robotparser reads it
            elif exc.status is not None and exc.status < 500:
                rules.allow_all = True  # no robots.txt: no rules
            else:
                return f"not fetched: the site's robots.txt is unavailable ({exc})"
            return rules
        rules.parse(body.decode("utf-8", errors="replace").splitlines())
        return rules


def _state_path(seeds_dir: Path) -> Path:
    return seeds_dir / FEEDS_FOLDER / STATE_FILE


def load_feeds(seeds_dir: Path) -> list[Feed]:
    """The subscriptions, in the order they were added (none when there is no state file)."""
    path = _state_path(seeds_dir)
    if not path.is_file():
        return []
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
        return [Feed(**entry) for entry in raw["feeds"]]
    except (ValueError, KeyError, TypeError) as exc:
        raise FeedError(f"{path} is damaged ({exc}); fix or delete it") from None


def save_feeds(seeds_dir: Path, feeds: list[Feed]) -> None:
    path = _state_path(seeds_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps({"feeds": [asdict(f) for f in feeds]}, indent=1, ensure_ascii=False)
    _write_atomically(path, data.encode("utf-8"))


def check_url(url: str) -> str:
    """An http(s) address with a host, or :class:`FeedError` saying what is wrong with it."""
    parts = urlsplit(url.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise FeedError(f"not an http(s) address: {url!r}")
    return url.strip()


def add_feed(seeds_dir: Path, url: str) -> Feed:
    feeds = load_feeds(seeds_dir)
    url = check_url(url)
    if any(f.url == url for f in feeds):
        raise FeedError(f"already subscribed to {url}")
    feed = Feed(url=url)
    save_feeds(seeds_dir, [*feeds, feed])
    return feed


def remove_feed(seeds_dir: Path, url: str) -> None:
    """Unsubscribe; the pages already saved stay (delete them from seeds/feeds/ to drop them)."""
    feeds = load_feeds(seeds_dir)
    kept = [f for f in feeds if f.url != url.strip()]
    if len(kept) == len(feeds):
        raise FeedError(f"not subscribed to {url}; `qa-bot feeds list` shows the feeds")
    save_feeds(seeds_dir, kept)


def pull_feeds(
    seeds_dir: Path,
    settings: FeedsSettings,
    metadata_file: str = "metadata.toml",
    *,
    pacer: SitePacer | None = None,
) -> PullReport:
    """Fetch every feed and save the pages of its new entries (see the module doc). Every
    request waits on ``pacer`` (one spacing requests by ``per_site_interval_seconds`` unless
    given: a test gives one on its own clock)."""
    import httpx  # only `feeds pull` talks to the network

    feeds = load_feeds(seeds_dir)
    report = PullReport()
    timeout = httpx.Timeout(settings.timeout_seconds)
    headers = {"User-Agent": settings.user_agent}
    if pacer is None:
        pacer = SitePacer(settings.per_site_interval_seconds)
    with httpx.Client(
        timeout=timeout,
        headers=headers,
        follow_redirects=True,
        max_redirects=settings.max_redirects,
    ) as client:
        pull = _Pull(client, settings, metadata_file, pacer, RobotsRules(client, settings, pacer))
        for feed in feeds:
            try:
                _pull_one(pull, feed, seeds_dir, report)
            except FetchError as exc:
                report.failures.append(f"feed {feed.url}: {exc}")
            save_feeds(seeds_dir, feeds)  # what was saved so far is remembered
    return report


@dataclass
class _Pull:
    """What one pull shares between its feeds: the client, the pace, the robots rules."""

    client: Any
    settings: FeedsSettings
    metadata_file: str
    pacer: SitePacer
    robots: RobotsRules


def _read_feed(body: bytes, url: str, location: str, report: PullReport) -> Any:
    """The parsed feed. Broken XML (feedparser's ``bozo``) is read as far as it goes: the
    entries before the break that have a link are used and the break is noted; a feed with
    nothing usable in it is a failure."""
    import feedparser

    parsed = feedparser.parse(body, response_headers={"content-location": location})
    problem = getattr(parsed, "bozo_exception", None)
    why = " ".join(str(problem).split()) if problem is not None else ""
    if isinstance(problem, SAXException):
        parsed["entries"] = [e for e in parsed.entries if e.get("link")]  # the broken tail
        if parsed.entries:
            report.notes.append(
                f"feed {url}: malformed XML ({why}); "
                f"used the {len(parsed.entries)} entries read before it"
            )
    if not parsed.entries and (parsed.bozo or not parsed.version):
        malformed = "malformed XML: " if isinstance(problem, SAXException) else ""
        raise FetchError(f"not a readable feed ({malformed}{why or 'no RSS or Atom in it'})")
    return parsed


def _pull_one(pull: _Pull, feed: Feed, seeds_dir: Path, report: PullReport) -> None:
    settings = pull.settings
    conditional = {}
    if feed.etag:
        conditional["If-None-Match"] = feed.etag
    if feed.modified:
        conditional["If-Modified-Since"] = feed.modified
    response, body = fetch(pull.client, feed.url, settings.max_bytes, conditional, pull.pacer)
    if response.status_code == 304:
        report.unchanged.append(feed.url)
        return
    parsed = _read_feed(body, feed.url, str(response.url), report)
    feed.title = parsed.feed.get("title") or feed.title
    feed.etag = response.headers.get("ETag")
    feed.modified = response.headers.get("Last-Modified")
    feed.last_pull = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    seen = set(feed.seen)
    new = [e for e in _newest_first(parsed.entries) if _entry_key(e) not in seen]
    for entry in new[: settings.max_entries]:
        link = entry.get("link")
        if not link:
            report.failures.append(f"feed {feed.url}: an entry without a link, skipped")
            continue
        link = urljoin(str(response.url), link)
        refusal = pull.robots.refusal(link)
        if refusal is not None:
            report.failures.append(f"page {link}: {refusal}")
            if refusal.startswith("disallowed"):
                feed.seen.append(_entry_key(entry))  # not asked again
            continue
        try:
            rel = _save_page(pull, link, _entry_date(entry), seeds_dir)
        except FetchError as exc:
            report.failures.append(f"page {link}: {exc}")
            continue
        feed.seen.append(_entry_key(entry))
        report.stored.append(rel)


def _entry_key(entry: Any) -> str:
    return str(entry.get("id") or entry.get("link") or entry.get("title") or "")


def _entry_date(entry: Any) -> dt.date | None:
    stamp = entry.get("published_parsed") or entry.get("updated_parsed")
    return dt.date(stamp.tm_year, stamp.tm_mon, stamp.tm_mday) if stamp else None


def _newest_first(entries: list[Any]) -> list[Any]:
    def when(entry: Any) -> float:
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        return time.mktime(stamp) if stamp else 0.0

    return sorted(entries, key=when, reverse=True)


def fetch(
    client: Any,
    url: str,
    limit: int,
    headers: dict[str, str] | None = None,
    pacer: SitePacer | None = None,
) -> tuple[Any, bytes]:
    """GET ``url`` with at most ``limit`` bytes of body (after waiting for the site's turn,
    with a ``pacer``); every failure is a :class:`FetchError` whose message fits on one line."""
    import httpx

    if pacer is not None:
        pacer.wait(url)
    try:
        with client.stream("GET", url, headers=headers or {}) as response:
            if response.status_code == 304:
                return response, b""
            if response.status_code >= 400:
                status = response.status_code
                raise FetchError(f"HTTP {status} {response.reason_phrase}".strip(), status)
            declared = response.headers.get("Content-Length", "")
            if declared.isdigit() and int(declared) > limit:
                raise FetchError(f"too large ({int(declared):,} bytes; the limit is {limit:,})")
            return response, b"".join(_bounded(response.iter_bytes(), limit))
    except httpx.TooManyRedirects:
        raise FetchError("too many redirects (a redirect loop?)") from None
    except httpx.TimeoutException:
        raise FetchError("timed out") from None
    except httpx.HTTPError as exc:
        raise FetchError(f"cannot fetch: {exc or type(exc).__name__}") from None


def _bounded(chunks: Iterator[bytes], limit: int) -> Iterator[bytes]:
    total = 0
    for chunk in chunks:
        total += len(chunk)
        if total > limit:
            raise FetchError(f"too large (over {limit:,} bytes, the limit)")
        yield chunk


def _save_page(pull: _Pull, link: str, date: dt.date | None, seeds_dir: Path) -> str:
    response, body = fetch(pull.client, link, pull.settings.max_bytes, None, pull.pacer)
    kind = response.headers.get("Content-Type", "").split(";")[0].strip().lower()
    if kind not in _HTML_TYPES:
        raise FetchError(f"not an HTML page ({kind or 'no content type'})")
    if not body.strip():
        raise FetchError("an empty page")
    rel = page_path(link)
    target = seeds_dir / rel
    target.parent.mkdir(parents=True, exist_ok=True)
    _write_atomically(target, body)
    if date is not None and _states_its_date(body):
        date = None  # the page's own date is the one to cite; the feed's may be an update's
    _append_metadata(seeds_dir / pull.metadata_file, rel, link, date)
    return rel


def _states_its_date(body: bytes) -> bool:
    from lxml import etree
    from lxml import html as lxml_html

    from qa_bot.html_article import page_date

    try:
        return page_date(lxml_html.fromstring(body)) is not None
    except (ValueError, etree.ParserError):
        return False


def page_path(link: str) -> str:
    """Where a page is saved, relative to seeds/: ``feeds/<site>/<slug>-<hash>.html``."""
    parts = urlsplit(link)
    site = _UNSAFE.sub("-", parts.netloc.lower().split("@")[-1].replace(":", "_")).strip(".-")
    last = parts.path.rstrip("/").rsplit("/", 1)[-1]
    slug = _UNSAFE.sub("-", last.lower().removesuffix(".html").removesuffix(".htm")).strip(".-")
    digest = hashlib.sha1(link.encode("utf-8")).hexdigest()[:10]
    name = f"{slug[:60]}-{digest}.html" if slug else f"{digest}.html"
    return f"{FEEDS_FOLDER}/{site or 'site'}/{name}"


def _toml_string(value: str) -> str:
    return json.dumps(value, ensure_ascii=False)  # a JSON string is a TOML basic string


def _append_metadata(path: Path, rel: str, link: str, date: dt.date | None) -> None:
    """Add the page's table to the metadata file (unless it has one): its address and date."""
    if path.is_symlink():
        raise FetchError(f"{path.name} is a symlink: the page's address was not recorded")
    existing = path.read_text(encoding="utf-8") if path.exists() else ""
    header = f"[{_toml_string(rel)}]"
    if header in existing:
        return
    lines = ["", header, f"url = {_toml_string(link)}"]
    if date is not None:
        lines.append(f"date = {date.isoformat()}")
    prefix = "" if not existing or existing.endswith("\n") else "\n"
    _write_atomically(path, (existing + prefix + "\n".join(lines) + "\n").encode("utf-8"))


def _write_atomically(path: Path, data: bytes) -> None:
    """Write beside the target under a hidden name, then rename: readers see all or nothing."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.part")
    tmp.write_bytes(data)
    os.replace(tmp, path)
