"""``qa-bot feedback export FILE | stats``: readers' votes, as test cases and as counts.

The votes come from the bot's 👍 / 👎 buttons and ``/good`` / ``/bad``, and from ``:good`` /
``:bad`` in ``qa-bot chat``; they are kept by the service (:attr:`QAService.feedback`).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from qa_bot.cli.base import err, errors, out, state
from qa_bot.cli.commands import option_filters

feedback_app = typer.Typer(
    help="Readers' votes on answers: `export` the complaints as questions for `qa-bot eval`, "
    "`stats` counts them.",
    no_args_is_help=True,
)

SinceOption = Annotated[
    str | None, typer.Option(help="Only votes given on or after this day (or month, or year).")
]


@feedback_app.command("export")
def export(
    ctx: typer.Context,
    target: Annotated[Path, typer.Argument(metavar="FILE", help="The question file to write.")],
    since: SinceOption = None,
    approvals: Annotated[
        bool,
        typer.Option("--all", help="Also the 👍 ones, as cases that must keep their answer."),
    ] = False,
) -> None:
    """Write the 👎 answers as a question file that `qa-bot eval FILE` scores.

    A complaint about an answer becomes a question whose first quote must not be the rejected
    one; about a declined question, one that must be answered. A reader's note is the answer
    to find (the parts in double quotes, if any).
    """
    with errors():
        day = option_filters(None, since, None).since
        log = state(ctx).service.feedback
        written = log.write_export(target, since=day, approvals=approvals)
        err.print(
            f"wrote {written} questions to {escape(str(target))}; score them with "
            f"`qa-bot eval {escape(str(target))}`"
        )


@feedback_app.command("stats")
def stats(
    ctx: typer.Context,
    since: SinceOption = None,
    recent: Annotated[
        int | None, typer.Option(min=0, help="Latest complaints to list (feedback.recent).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the counts as JSON.")] = False,
) -> None:
    """Count the votes: 👍 and 👎, by verdict, outlet, document and index generation; and the
    latest complaints."""
    with errors():
        day = option_filters(None, since, None).since
        service = state(ctx).service
        shown = recent if recent is not None else service.settings.feedback.recent
        result = service.feedback.stats(since=day, recent=shown).to_json()
        if as_json:
            sys.stdout.write(json.dumps(result, ensure_ascii=False, indent=1) + "\n")
            return
        if not result["votes"]:
            err.print(f"no feedback yet (votes are kept in {escape(str(service.feedback.path))})")
            return
        _print_stats(result)


def _print_stats(data: dict[str, Any]) -> None:
    out.print(
        f"{data['votes']} votes: {data['good']} 👍, {data['bad']} 👎 (from {data['chats']} "
        "chats in Telegram)",
        markup=False,
    )
    for key, title in (
        ("by_verdict", "by verdict"),
        ("by_outlet", "by outlet quoted"),
        ("by_document", "by article quoted"),
        ("by_generation", "by index generation"),
    ):
        if data[key]:
            out.print(f"\n{title}:")
        for name, counts in data[key].items():
            out.print(f"  {counts['good']:>4} 👍 {counts['bad']:>4} 👎  {name}", markup=False)
    if data["recent_complaints"]:
        out.print("\nlatest complaints:")
    for item in data["recent_complaints"]:
        out.print(f"  {item['at']}  {item['question']} ({item['verdict']})", markup=False)
        if item["first_quote"]:
            out.print(f"      quoted: {_short(item['first_quote'])} ({item['doc']})", markup=False)
        if item["note"]:
            out.print(f"      note: {item['note']}", markup=False)


def _short(text: str, most: int = 120) -> str:
    return text if len(text) <= most else text[: most - 1] + "…"


__all__ = ["feedback_app"]
