"""The terminal front: ``qa-bot index | ask | sources | status | eval | chat | bot``.

A thin layer over :class:`qa_bot.service.QAService`: it parses options, builds the settings
once, prints, and turns domain errors into one-line messages with a non-zero exit. Nothing
here imports torch: commands that never embed (``--help``, ``sources``, ``status``) stay fast.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from qa_bot.errors import InvalidQuestionError, QABotError, SeedsError
from qa_bot.models import Answer
from qa_bot.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from qa_bot.filters import SearchFilters

app = typer.Typer(
    help="Answer questions about a folder of news articles with verbatim, cited, dated quotes.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class State:
    """Options of the top-level command, turned into settings and a service on first use."""

    def __init__(self, overrides: dict[str, Any]):
        self.overrides = overrides
        self._service: Any = None

    @property
    def settings(self) -> Settings:
        return self.service.settings

    @property
    def service(self) -> Any:
        if self._service is None:
            from qa_bot.service import QAService

            self._service = QAService(load_settings(**self.overrides))
        return self._service


@app.callback()
def main_options(
    ctx: typer.Context,
    seeds: Annotated[
        Path | None, typer.Option("--seeds", help="Folder of article files (default: seeds/).")
    ] = None,
    index: Annotated[
        Path | None,
        typer.Option("--index", help="Folder of the built index (default: embeddings/)."),
    ] = None,
) -> None:
    ctx.obj = State({"seeds_dir": seeds, "index_dir": index})


def _state(ctx: typer.Context) -> State:
    assert isinstance(ctx.obj, State)
    return ctx.obj


@contextmanager
def _errors() -> Iterator[None]:
    """Domain errors become ``error: ...`` on stderr and an exit code; no traceback."""
    try:
        yield
    except (QABotError, SettingsError) as exc:
        err.print(f"[bold red]error:[/] {escape(str(exc))}")
        raise typer.Exit(getattr(exc, "exit_code", 2)) from None
    except KeyboardInterrupt:
        err.print("interrupted; the index on disk is unchanged or complete")
        raise typer.Exit(130) from None


def progress_bar(description: str, total: int) -> Callable[[int], None]:
    """A transient progress bar on stderr; returns the callback that advances it by n."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeRemainingColumn

    progress = Progress(
        "[progress.description]{task.description}",
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=err,
        transient=True,
    )
    task = progress.add_task(description, total=total)
    progress.start()

    def advance(n: int) -> None:
        progress.advance(task, n)
        if progress.tasks[0].completed >= total:
            progress.stop()

    if total == 0:
        progress.stop()
    return advance


def _progress_factory(enabled: bool) -> Callable[[int], Callable[[int], None]] | None:
    """The indexer's progress hook: a bar for the chunks to embed, on a terminal only."""
    if not enabled:
        return None
    return lambda total: progress_bar("embedding chunks", total)


def _print_report(report: Any, *, quiet: bool = False) -> None:
    if report.full_rebuild_reason and report.full_rebuild_reason != "no index yet":
        err.print(f"full rebuild: {escape(report.full_rebuild_reason)}")
    elif report.lexical_rebuild_reason:
        err.print(escape(report.lexical_rebuild_reason))
    line = (
        f"added {len(report.added)}, updated {len(report.updated)}, "
        f"removed {len(report.removed)}, unchanged {len(report.unchanged)} files; "
        f"embedded {report.chunks_embedded} chunks ({report.chunks_total} in the index) "
        f"in {report.seconds:.1f} s"
    )
    if not quiet or report.changed:
        err.print(line if not quiet else f"index refreshed: {line}")
    if getattr(report, "onnx_exported", False):
        err.print("exported the ONNX query model (questions no longer need torch)")
    for skipped in report.skipped:
        err.print(f"[yellow]skipped[/] {escape(skipped.path)}: {escape(skipped.reason)}")
    for rel in getattr(report, "outside", ()):
        err.print(f"[yellow]read from outside the seeds folder[/] (a link): {escape(rel)}")


@app.command()
def index(
    ctx: typer.Context,
    force: Annotated[bool, typer.Option("--force", help="Re-embed everything.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    wait: Annotated[
        float, typer.Option(help="Seconds to wait for another running `index` to finish.")
    ] = 0.0,
) -> None:
    """Build or update the index: embeds only new and changed files, drops deleted ones."""
    with _errors():
        service = _state(ctx).service
        report = service.index(
            force=force, progress=_progress_factory(sys.stderr.isatty()), lock_wait=wait
        )
        if as_json:
            out.print_json(json.dumps(report.to_json()))
        else:
            _print_report(report)
        if report.metadata_errors:
            raise SeedsError(
                f"{service.settings.metadata_file} has {report.metadata_errors} broken "
                "entries (above), not applied; fix them and run `qa-bot index` again"
            )


def _parse_date(value: str | None, name: str) -> dt.date | None:
    """``--since`` / ``--until``: a day, a month or a year (``--until 2016-09`` is its end)."""
    from qa_bot.filters import date_bound

    if value is None:
        return None
    try:
        return date_bound(value, end=name == "--until")
    except ValueError as exc:
        raise InvalidQuestionError(f"{name}: {exc}") from None


def _date_filters(outlets: list[str] | None, since: str | None, until: str | None) -> SearchFilters:
    from qa_bot.filters import SearchFilters

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


@app.command()
def ask(
    ctx: typer.Context,
    questions: Annotated[list[str] | None, typer.Argument(help="One or more questions.")] = None,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per question per line.")
    ] = False,
    batch: Annotated[
        Path | None, typer.Option(help="File of questions, one per line; - for stdin.")
    ] = None,
    outlet: Annotated[
        list[str] | None, typer.Option(help="Only articles from this outlet (repeatable).")
    ] = None,
    since: Annotated[
        str | None, typer.Option(help="Only articles published on/after (2016-09-24, 2016-09).")
    ] = None,
    until: Annotated[
        str | None, typer.Option(help="Only articles published on/before (2016-09-30, 2016-09).")
    ] = None,
    refresh: Annotated[
        bool, typer.Option(help="Build or refresh the index first if missing or stale.")
    ] = True,
) -> None:
    """Answer questions with verbatim quotes from the articles, each with its source."""
    with _errors():
        asked = list(questions or [])
        if batch is not None:
            asked.extend(_read_batch(batch))
        if not asked:
            raise InvalidQuestionError('give a question, e.g. qa-bot ask "Who is Vitaly Churkin?"')
        filters = _date_filters(outlet, since, until)
        state = _state(ctx)
        service = state.service
        if refresh:
            report = service.ensure_index(progress=_progress_factory(sys.stderr.isatty()))
            if report is not None:
                _print_report(report, quiet=True)
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


def answer_json(service: Any, answer: Answer) -> dict[str, Any]:
    return {
        "question": answer.question,
        "answered": answer.answered,
        "answer": answer.text,
        "citations": [c.to_json(service.display_path(c.article)) for c in answer.citations],
        "notes": list(answer.notes),
    }


def print_answer(service: Any, answer: Answer, *, show_question: bool = False) -> None:
    if show_question:
        out.print(f"[bold]Q: {escape(answer.question)}[/]")
    for note in answer.notes:
        out.print(f"[dim]{escape(note)}[/]")
    if not answer.answered:
        out.print(escape(answer.text))
        if answer.suggestions:
            out.print("The nearest topics the articles do cover:")
            for title in answer.suggestions:
                out.print(f"  • {escape(title)}")
        return
    for c in answer.citations:
        out.print(f"[bold][{c.n}][/] {escape(' '.join(c.quote.split()))}")
        out.print()
    out.print("[bold]Sources[/]")
    for c in answer.citations:
        meta = c.article
        out.print(
            f"[{c.n}] {escape(meta.title)} — {escape(meta.outlet_label())}, "
            f"{escape(meta.date_label())} ({escape(service.display_path(meta))})",
            markup=False,
        )


@app.command()
def sources(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON lines.")] = False,
) -> None:
    """List the indexed articles with title, outlet, date and chunk count."""
    with _errors():
        service = _state(ctx).service
        rows = service.sources()
        if as_json:
            for s in rows:
                m = s.meta
                sys.stdout.write(
                    json.dumps(
                        {
                            "file": service.display_path(m),
                            "title": m.title,
                            "outlet": m.outlet,
                            "date": m.date.isoformat() if m.date else None,
                            "date_text": m.date_text,
                            "url": m.url,
                            "chunks": s.chunks,
                        },
                        ensure_ascii=False,
                    )
                    + "\n"
                )
            return
        table = Table("file", "title", "outlet", "date", "chunks", show_lines=False)
        for s in rows:
            m = s.meta
            table.add_row(
                escape(service.display_path(m)),
                escape(m.title),
                escape(m.outlet_label()),
                escape(m.date_label()),
                str(s.chunks),
            )
        out.print(table)
        out.print(f"{len(rows)} articles")


@app.command()
def status(
    ctx: typer.Context,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False,
) -> None:
    """Show the index: when it was built, with which model, and whether seeds changed since."""
    with _errors():
        st = _state(ctx).service.status()
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


#: Commands that live in modules of their own: each module has ``register(app)``.
_COMMAND_MODULES: tuple[str, ...] = ("qa_bot.cli_eval", "qa_bot.cli_bot", "qa_bot.cli_chat")


def _register_commands() -> None:
    import importlib

    for name in _COMMAND_MODULES:
        importlib.import_module(name).register(app)


if __name__ != "__main__":  # see the bottom of this file
    _register_commands()


def main() -> None:
    app()


if __name__ == "__main__":
    # Run the package's copy of this module, the one the command modules import: under
    # `python -m qa_bot.cli` this file is also `__main__`, a second copy with its own State.
    from qa_bot.cli import main as package_main

    package_main()
