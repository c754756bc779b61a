"""How an answer looks in the terminal and in JSON lines (``ask`` and ``chat`` alike)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich.markup import escape

from qa_bot.cli.base import out
from qa_bot.models import Answer

if TYPE_CHECKING:
    from qa_bot.service import QAService


def answer_json(service: QAService, answer: Answer) -> dict[str, Any]:
    return {
        "question": answer.question,
        "answered": answer.answered,
        "answer": answer.text,
        "citations": [c.to_json(service.display_path(c.article)) for c in answer.citations],
        "notes": list(answer.notes),
    }


def print_answer(service: QAService, answer: Answer, *, show_question: bool = False) -> None:
    """The notes, then the quotes ``[n]``, then the numbered sources with their files."""
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


__all__ = ["answer_json", "print_answer"]
