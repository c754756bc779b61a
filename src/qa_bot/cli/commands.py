"""``qa-bot index | ask | sources | status``: the one-shot commands."""

from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.table import Table

from qa_bot.cli.answers import answer_json, print_answer
from qa_bot.cli.base import err, errors, out, print_report, progress_factory, refresh_index, state
from qa_bot.errors import InvalidQuestionError, SeedsError
from qa_bot.filters import SearchFilters, date_bound
from qa_bot.news import NewsDesk

OutletOption = Annotated[
    list[str] | None, typer.Option(help="Only articles from this outlet (repeatable).")
]
SinceOption = Annotated[
    str | None, typer.Option(help="Only articles published on/after (2016-09-24, 2016-09).")
]
UntilOption = Annotated[
    str | None, typer.Option(help="Only articles published on/before (2016-09-30, 2016-09).")
]
RefreshOption = Annotated[
    bool, typer.Option(help="Build or refresh the index first if missing or stale.")
]


def index(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Re-embed everything.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for another running `index` to finish.")
    ] = 0.0,
) -> None:
    """Build or update the index: embeds only new and changed files, drops deleted ones."""
    with errors():
        service = state(ctx).service
        report = service.index(
            force=force, progress=progress_factory(sys.stderr.isatty()), lock_wait=wait
        )
        if as_json:
            out.print_json(json.dumps(report.to_json()))
        else:
            print_report(report)
        if report.metadata_errors:
            raise SeedsError(
                f"{service.settings.metadata_file} has {report.metadata_errors} broken "
                "entries (above), not applied; fix them and run `qa-bot index` again"
            )


def _parse_date(value: str | None, name: str) -> dt.date | None:
    """``--since`` / ``--until``: a day, a month or a year (``--until 2016-09`` is its end)."""
    if value is None:
        return None
    try:
        return date_bound(value, end=name == "--until")
    except ValueError as exc:
        raise InvalidQuestionError(f"{name}: {exc}") from None


def option_filters(
    outlets: list[str] | None, since: str | None, until: str | None
) -> SearchFilters:
    """The filters of ``--outlet``, ``--since`` and ``--until``."""
    filters = SearchFilters(
        outlets=tuple(outlets or ()),
        since=_parse_date(since, "--since"),
        until=_parse_date(until, "--until"),
    )
    if filters.since and filters.until and filters.since > filters.until:
        raise InvalidQuestionError(
            f"--since {filters.since} is after --until {filters.until}: no date is in between"
        )
    return filters


def _read_batch(batch: Path) -> list[str]:
    from qa_bot.files import read_lines

    if str(batch) == "-":
        lines = sys.stdin.read().splitlines()
    else:
        lines = read_lines(batch, InvalidQuestionError)
    return [line.strip() for line in lines if line.strip()]


def ask(
    ctx: typer.Context,
    questions: Annotated[list[str] | None, typer.Argument(help="One or more questions.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per question per line.")
    ] = False,
    batch: Annotated[
        Path | None, typer.Option(help="File of questions, one per line; - for stdin.")
    ] = None,
    outlet: OutletOption = None,
    since: SinceOption = None,
    until: UntilOption = None,
    refresh: RefreshOption = True,
) -> None:
    """Answer questions with verbatim quotes from the articles, each with its source."""
    with errors():
        asked = list(questions or [])
        if batch is not None:
            asked.extend(_read_batch(batch))
        if not asked:
            raise InvalidQuestionError('give a question, e.g. qa-bot ask "Who is Vitaly Churkin?"')
        filters = option_filters(outlet, since, until)
        service = state(ctx).service
        if refresh:
            refresh_index(service)
        failures = 0
        for i, question in enumerate(asked):
            try:
                answer = service.ask(question, filters=filters)
            except InvalidQuestionError as exc:
                if len(asked) == 1:
                    raise
                failures += 1
                if as_json:
                    out.print_json(json.dumps({"question": question, "error": str(exc)}))
                else:
                    err.print(f"[bold red]error:[/] {escape(str(exc))}")
                continue
            if as_json:
                sys.stdout.write(json.dumps(answer_json(service, answer), ensure_ascii=False))
                sys.stdout.write("\n")
                sys.stdout.flush()
            else:
                if i:
                    out.print()
                print_answer(service, answer, show_question=len(asked) > 1)
        if failures:
            raise typer.Exit(2)


def sources(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
    origins: Annotated[
        bool,
        typer.Option(
            "--origins",
            help="Also say where each title, outlet and date came from (page metadata, text, "
            "metadata.toml); reads the seed files again.",
        ),
    ] = False,
) -> None:
    """List the indexed articles with title, outlet, date and chunk count."""
    with errors():
        service = state(ctx).service
        rows = service.sources()
        found = NewsDesk(service.settings).field_origins() if origins else {}
        if as_json:
            for s in rows:
                m = s.meta
                line = {
                    "file": service.display_path(m),
                    "title": m.title,
                    "outlet": m.outlet,
                    "date": m.date.isoformat() if m.date else None,
                    "date_text": m.date_text,
                    "url": m.url,
                    "chunks": s.chunks,
                }
                if origins:
                    line["origins"] = found.get(m.path, {})
                sys.stdout.write(json.dumps(line, ensure_ascii=False) + "\n")
            return
        columns = ["file", "title", "outlet", "date", "chunks"] + (["from"] if origins else [])
        table = Table(*columns, show_lines=False)
        for s in rows:
            m = s.meta
            cells = [service.display_path(m), m.title, m.outlet_label(), m.date_label()]
            cells.append(str(s.chunks))
            if origins:
                told = found.get(m.path, {})
                cells.append(", ".join(f"{k}: {v}" for k, v in sorted(told.items())) or "?")
            table.add_row(*(escape(c) for c in cells))
        out.print(table)
        out.print(f"{len(rows)} articles")


def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the index: when it was built, with which model, and whether seeds changed since."""
    with errors():
        st = state(ctx).service.status()
        data = {
            "generation": st.generation,
            "built_at": st.built_at,
            "model": st.model_id,
            "dense_index": st.dense_kind,
            "articles": st.articles,
            "chunks": st.chunks,
            "first_date": st.first_date.isoformat() if st.first_date else None,
            "last_date": st.last_date.isoformat() if st.last_date else None,
            "outlets": list(st.outlets),
            "stale_files": list(st.stale),
            "store": st.store,
            "location": st.location,
            **dict(st.store_details),
        }
        if as_json:
            out.print_json(json.dumps(data))
            return
        for key, value in data.items():
            shown = ", ".join(value) if isinstance(value, list) else value
            out.print(f"{key:>13}: {escape(str(shown if shown not in ('', None) else '-'))}")


__all__ = ["ask", "index", "option_filters", "sources", "status"]
