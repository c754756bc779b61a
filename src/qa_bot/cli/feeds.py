"""``qa-bot feeds add URL | list | remove URL | pull``: news feeds into seeds/feeds/."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.markup import escape

from qa_bot.cli.base import err, errors, out, print_report, state
from qa_bot.cli.watch import news_desk
from qa_bot.news import NewsDesk

feeds_app = typer.Typer(
    help="Subscribe to RSS/Atom feeds; `pull` saves new entries' pages and indexes them.",
    no_args_is_help=True,
)


@feeds_app.command("add")
def add(ctx: typer.Context, url: str) -> None:
    """Subscribe to a feed (fetched at the next `qa-bot feeds pull`)."""
    with errors():
        feed = NewsDesk(state(ctx).settings()).add_feed(url)
        err.print(f"subscribed to {escape(feed.url)}; `qa-bot feeds pull` fetches it")


@feeds_app.command("list")
def list_(ctx: typer.Context) -> None:
    """The subscribed feeds, with their title and last pull."""
    with errors():
        feeds = NewsDesk(state(ctx).settings()).feeds()
        for feed in feeds:
            pulled = feed.last_pull or "never pulled"
            title = f" — {feed.title}" if feed.title else ""
            out.print(f"{escape(feed.url)}{escape(title)} ({len(feed.seen)} pages, {pulled})")
        err.print(f"{len(feeds)} feeds")


@feeds_app.command("remove")
def remove(ctx: typer.Context, url: str) -> None:
    """Unsubscribe; pages already saved stay in seeds/feeds/ (and in the index)."""
    with errors():
        NewsDesk(state(ctx).settings()).remove_feed(url)
        err.print(f"unsubscribed from {escape(url)}")


@feeds_app.command("pull")
def pull(
    ctx: typer.Context,
    index: Annotated[
        bool, typer.Option(help="Index the saved pages right away (off: leave it to `watch`).")
    ] = True,
) -> None:
    """Fetch every feed, save new entries' pages under seeds/feeds/, then index them.

    A feed or page that fails is reported on one line and skipped; nothing saved before is lost.
    """
    with errors():
        report = NewsDesk(state(ctx).settings()).pull_feeds()
        for rel in report.stored:
            err.print(f"saved {escape(rel)}")
        for url in report.unchanged:
            err.print(f"unchanged: {escape(url)}")
        for line in report.notes:
            err.print(f"[yellow]note[/] {escape(line)}")
        for line in report.failures:
            err.print(f"[yellow]skipped[/] {escape(line)}")
        err.print(f"{len(report.stored)} new pages, {len(report.failures)} failures")
        if index and report.stored:
            print_report(news_desk(state(ctx).service).index())
