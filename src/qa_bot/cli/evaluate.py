"""``qa-bot eval QUESTIONS.jsonl``: how well the bot answers a question set with gold answers."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape
from rich.table import Table

from qa_bot.cli.base import errors, out, progress_bar, refresh_index, state

_ROWS = (
    ("questions", "questions ({answerable} answerable, {unanswerable} unanswerable)"),
    ("hit_at_1", "gold article ranked first"),
    ("hit_at_3", "gold article in the top 3"),
    ("hit_at_5", "gold article in the top 5"),
    ("mrr_at_10", "MRR@10 by gold article"),
    ("answered_rate", "answerable questions answered"),
    ("first_quote_answer_rate", "first quote holds a gold answer (of answerable)"),
    ("answered_first_quote_rate", "first quote holds a gold answer (of answered)"),
    ("answered_quote_answer_rate", "some quote holds a gold answer (of answered)"),
    ("first_quote_in_gold_paragraph", "first quote inside the gold paragraph"),
    ("abstention_precision", "declined questions that were unanswerable"),
    ("abstention_recall", "unanswerable questions declined"),
    ("complaints_resolved", "readers' complaints no longer failing ({complaints})"),
    ("approvals_kept", "readers' approved answers kept ({approvals})"),
    ("faithfulness", "quotes found verbatim in their article"),
    ("median_quoted_chars", "median quoted characters per answer"),
    ("latency_mean_ms", "mean latency, ms"),
    ("latency_p50_ms", "median latency, ms"),
    ("latency_p95_ms", "p95 latency, ms"),
    ("baseline_mean_ms", "embedding + vector search alone, ms"),
    ("latency_ratio", "latency / (embedding + vector search)"),
)

_WHOLE_NUMBERS = frozenset(
    {
        "median_quoted_chars",
        "latency_mean_ms",
        "latency_p50_ms",
        "latency_p95_ms",
        "baseline_mean_ms",
    }
)


def evaluate(
    ctx: typer.Context,
    questions_file: Annotated[
        Path, typer.Argument(metavar="QUESTIONS.jsonl", help="Questions with gold answers.")
    ],
    as_json: Annotated[bool, typer.Option("--json", help="Print the report as JSON.")] = False,
    refresh: Annotated[
        bool, typer.Option(help="Build or refresh the index first if missing or stale.")
    ] = True,
) -> None:
    """Score answers against gold: ranking, quotes, abstention, faithfulness and latency.

    A file of dialogues (first question, follow-up, gold for the follow-up) is recognised by
    its shape and scored as follow-ups, with and without the conversation's context.
    """
    from qa_bot.dialogue.evaluation import evaluate_dialogues, is_dialogue_file, load_dialogues
    from qa_bot.evaluation import evaluate as evaluate_questions
    from qa_bot.evaluation import load_questions

    with errors():
        dialogues = is_dialogue_file(questions_file)
        questions = load_dialogues(questions_file) if dialogues else load_questions(questions_file)
        service = state(ctx).service
        if refresh:
            refresh_index(service)
        bar = progress_bar("asking", len(questions)) if sys.stderr.isatty() else None
        if dialogues:
            scored = evaluate_dialogues(service, questions_file, progress=bar)
            if as_json:
                sys.stdout.write(json.dumps(scored.to_json(), ensure_ascii=False, indent=1) + "\n")
            else:
                out.print(scored.render(), markup=False, highlight=False)
            return
        result = evaluate_questions(service, questions, progress=bar)
        if as_json:
            sys.stdout.write(json.dumps(result.to_json(), ensure_ascii=False, indent=1) + "\n")
            return
        _print_result(result.to_json())


def _print_result(data: dict[str, Any]) -> None:
    for key, label in _ROWS:
        value = data[key]
        if value is None:
            continue
        if key == "questions":
            shown = label.format(**data)
            out.print(f"{value:>9}  {escape(shown)}")
            continue
        label = label.format(**data)
        text = f"{value:.3f}" if isinstance(value, float) and value <= 1.0 else f"{value:,.1f}"
        if key in _WHOLE_NUMBERS:
            text = f"{value:,.0f}"
        if key == "latency_ratio":
            text = f"{value:.2f}x"
        out.print(f"{text:>9}  {escape(label)}")
    _print_classes(data.get("by_class") or {})
    failures = data["failures"]
    if not failures:
        out.print("no failures")
        return
    table = Table("id", "failure", "question", "gold", "rank", "first quote", show_lines=True)
    for row in failures:
        quote = row["first_quote"] or ""
        table.add_row(
            escape(str(row["id"])),
            escape(row["failure"]),
            escape(row["question"]),
            escape(" | ".join(row["gold"])),
            str(row["gold_rank"] or "-"),
            escape(quote if len(quote) <= 160 else quote[:157] + "..."),
        )
    out.print(table)
    out.print(f"{len(failures)} failures")


def _print_classes(by_class: dict[str, dict[str, Any]]) -> None:
    """The scores per kind of question, when the set names kinds."""
    if not by_class:
        return
    table = Table(
        "kind", "questions", "first quote holds an answer", "answered", "declined", "passed"
    )
    keys = ("first_quote_answer_rate", "answered_rate", "abstention_recall", "passed_rate")
    for kind, row in by_class.items():
        cells = [row[k] for k in keys]
        table.add_row(
            escape(kind),
            str(row["questions"]),
            *("-" if v is None else f"{v:.3f}" for v in cells),
        )
    out.print(table)


__all__ = ["evaluate"]
