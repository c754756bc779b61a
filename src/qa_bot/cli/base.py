"""What every command of the terminal front shares: the Typer app and its global options, the
consoles, one way to turn domain errors into exit codes, and one way to refresh the index.

Nothing here imports torch, FAISS or the service at import time: commands that never embed
(``--help``, ``sources``, ``status``) stay fast.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.markup import escape
from typer.core import TyperGroup

from qa_bot.errors import QABotError
from qa_bot.runtime import quiet_store_client
from qa_bot.settings import Settings, SettingsError, load_settings

if TYPE_CHECKING:
    import click

    from qa_bot.indexer import IndexReport
    from qa_bot.service import QAService

#: Options of the whole program that may also follow the command name.
GLOBAL_OPTIONS = ("--seeds", "--index")

out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


def hoist_global_options(args: list[str]) -> list[str]:
    """``args`` with every ``--seeds DIR`` / ``--index DIR`` (or ``--seeds=DIR``) moved to the
    front, where the program's own options are parsed; nothing after ``--`` is touched."""
    hoisted: list[str] = []
    rest: list[str] = []
    i = 0
    while i < len(args):
        arg = args[i]
        if arg == "--":
            rest.extend(args[i:])
            break
        if arg in GLOBAL_OPTIONS and i + 1 < len(args):
            hoisted.extend(args[i : i + 2])
            i += 2
            continue
        if arg.split("=", 1)[0] in GLOBAL_OPTIONS and "=" in arg:
            hoisted.append(arg)
        else:
            rest.append(arg)
        i += 1
    return hoisted + rest


class AnywhereOptionsGroup(TyperGroup):
    """The program's command group, reading ``--seeds`` and ``--index`` wherever they are:
    ``qa-bot ask --seeds DIR "..."`` as well as ``qa-bot --seeds DIR ask "..."``."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        return super().parse_args(ctx, hoist_global_options(args))


app = typer.Typer(
    cls=AnywhereOptionsGroup,
    help="Answer questions about a folder of news articles with verbatim, cited, dated quotes. "
    "--seeds and --index may come before or after the command name.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


class State:
    """Options of the top-level command, turned into settings and a service on first use."""

    def __init__(self, overrides: dict[str, Any]):
        self.overrides = overrides
        self._service: QAService | None = None

    def settings(self) -> Settings:
        """The settings alone, without loading the service (the bot adjusts them first)."""
        return load_settings(**self.overrides)

    @property
    def service(self) -> QAService:
        if self._service is None:
            from qa_bot.service import QAService  # numpy and FAISS: only when needed

            settings = self.settings()
            quiet_store_client(settings.store)
            self._service = QAService(settings)
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


def state(ctx: typer.Context) -> State:
    assert isinstance(ctx.obj, State)
    return ctx.obj


@contextmanager
def errors() -> Iterator[None]:
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


def progress_factory(enabled: bool) -> Callable[[int], Callable[[int], None]] | None:
    """The indexer's progress hook: a bar for the chunks to embed, on a terminal only."""
    if not enabled:
        return None
    return lambda total: progress_bar("embedding chunks", total)


def report_lines(report: IndexReport, *, refreshed: bool = False) -> list[tuple[str, str]]:
    """What an index build did, as (kind, line): kind is "info", "skipped" (a file left out,
    and why) or "outside" (a file read through a link out of the seeds folder)."""
    lines: list[tuple[str, str]] = []
    if report.full_rebuild_reason and report.full_rebuild_reason != "no index yet":
        lines.append(("info", f"full rebuild: {report.full_rebuild_reason}"))
    elif report.lexical_rebuild_reason:
        lines.append(("info", report.lexical_rebuild_reason))
    summary = (
        f"added {len(report.added)}, updated {len(report.updated)}, "
        f"removed {len(report.removed)}, unchanged {len(report.unchanged)} files; "
        f"embedded {report.chunks_embedded} chunks ({report.chunks_total} in the index) "
        f"in {report.seconds:.1f} s"
    )
    if not refreshed or report.changed:
        lines.append(("info", f"index refreshed: {summary}" if refreshed else summary))
    if report.onnx_exported:
        lines.append(("info", "exported the ONNX query model (questions no longer need torch)"))
    if report.reader_exported:
        lines.append(("info", "exported the passage reader named in retrieval.reader"))
    lines.extend(("skipped", f"{s.path}: {s.reason}") for s in report.skipped)
    lines.extend(("outside", rel) for rel in report.outside)
    return lines


_PREFIXES = {
    "skipped": "[yellow]skipped[/] ",
    "outside": "[yellow]read from outside the seeds folder[/] (a link): ",
}


def print_report(report: IndexReport, *, refreshed: bool = False) -> None:
    for kind, line in report_lines(report, refreshed=refreshed):
        err.print(_PREFIXES.get(kind, "") + escape(line))


def refresh_index(
    service: QAService, *, say: Callable[[str, str], None] | None = None
) -> IndexReport | None:
    """Build or refresh the index when it is missing or stale, and say what was done: on
    stderr (with a progress bar on a terminal), or to ``say(kind, line)`` (the bot's log).
    Returns the report, or None when the index was up to date."""
    progress = progress_factory(say is None and sys.stderr.isatty())
    report = service.ensure_index(progress=progress)
    if report is not None and say is None:
        print_report(report, refreshed=True)
    elif report is not None and say is not None:
        for kind, line in report_lines(report, refreshed=True):
            say(kind, line)
    return report


__all__ = [
    "State",
    "app",
    "err",
    "errors",
    "hoist_global_options",
    "out",
    "print_report",
    "progress_bar",
    "progress_factory",
    "refresh_index",
    "report_lines",
    "state",
]
