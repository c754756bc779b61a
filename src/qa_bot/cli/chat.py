"""``qa-bot chat``: ask question after question in one process, follow-ups included.

The model and the index are loaded once, before the first prompt, so each answer takes only the
question's own work. Follow-ups ("When was that?") are answered with the previous question's
topic, exactly as in the Telegram bot (:mod:`qa_bot.dialogue`). When ``qa-bot index``
switches the index while the chat runs, the next question is answered from the new one.

Line editing and history (readline) only when stdin is a terminal; piped questions are read
line by line, without prompts, so ``qa-bot chat < questions.txt`` works as a script.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Annotated

import typer
from rich.markup import escape

from qa_bot.cli.answers import answer_json, print_answer
from qa_bot.cli.base import err, errors, out, refresh_index, state
from qa_bot.cli.commands import OutletOption, RefreshOption, option_filters
from qa_bot.commands import NOTHING_TO_RATE, chat_commands, help_line, vote_reply
from qa_bot.dialogue.asking import ask_in_conversation
from qa_bot.dialogue.memory import Conversation
from qa_bot.errors import QABotError
from qa_bot.filters import FilterChange, SearchFilters, dates_command, outlet_command
from qa_bot.models import Rated

if TYPE_CHECKING:
    from qa_bot.service import QAService

PROMPT = "? "
PREFIX = ":"


def help_text() -> str:
    """``:help``: how follow-ups work, then the commands of :mod:`qa_bot.commands`."""
    lines = [
        'Ask a question about the articles; follow-ups like "When was that?" or "And according '
        'to TASS?" build on your previous question (the answer says so when they do).'
    ]
    lines += [f"  {_plain(help_line(c, PREFIX))}" for c in chat_commands()]
    return "\n".join(lines)


def _plain(text: str) -> str:
    """Text with `code` marks, for the terminal: the marks dropped."""
    return text.replace("`", "")


@dataclass
class ChatSession:
    """One terminal conversation: reads commands and questions, prints answers."""

    service: QAService
    conversation: Conversation
    filters: SearchFilters = field(default_factory=SearchFilters)
    use_context: bool = True
    as_json: bool = False
    generation: str | None = None
    #: The latest answer, as ``:good`` / ``:bad`` rate it.
    rated: Rated | None = None
    commands: dict[str, Callable[[str], bool]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        actions: dict[str, Callable[[str], bool]] = {
            "quit": self.quit,
            "help": self.help,
            "sources": self.sources,
            "outlet": self.outlet,
            "dates": self.dates,
            "context": self.context,
            "reset": self.reset,
            "good": self.good,
            "bad": self.bad,
        }
        for command in chat_commands():
            for name in (command.name, *command.aliases):
                self.commands[PREFIX + name] = actions[command.name]

    def handle(self, line: str) -> bool:
        """Act on one line; False when the user wants to leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith(PREFIX):
            name, _, argument = line.partition(" ")
            command = self.commands.get(name.casefold())
            if command is None:
                err.print(f"unknown command {escape(name)}; :help lists them")
                return True
            return command(argument.strip())
        self.ask(line)
        return True

    def ask(self, question: str) -> None:
        filters = self.filters if self.filters.active else None
        try:
            self._notice_new_index()
            started = time.perf_counter()
            if self.use_context:
                reply = ask_in_conversation(
                    self.service, self.conversation, question, filters=filters
                )
                answer, follow_up = reply.answer, reply.follow_up
                searched = reply.searched
            else:
                answer, follow_up = self.service.ask(question, filters=filters), False
                searched = ""
            elapsed = time.perf_counter() - started
        except QABotError as exc:  # a bad question, a missing index: say so, keep going
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return
        except Exception as exc:  # a bug must not end the session; say what it was
            name = type(exc).__name__
            err.print(f"[bold red]unexpected error:[/] {escape(name)}: {escape(str(exc))}")
            return
        self.rated = Rated.of(answer, searched=searched)
        if self.as_json:
            data = answer_json(self.service, answer)
            data["follow_up"] = follow_up
            data["ms"] = round(elapsed * 1000, 1)
            sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return
        print_answer(self.service, answer)
        if sys.stdin.isatty():
            out.print(f"[dim]{elapsed * 1000:.0f} ms[/]")
        out.print()

    def _notice_new_index(self) -> None:
        generation = self.service.snapshot().generation
        if self.generation is not None and generation != self.generation:
            err.print("[dim]The index was rebuilt; answering from the new one.[/]")
        self.generation = generation

    # --- commands -------------------------------------------------------------------------------

    def quit(self, argument: str = "") -> bool:
        return False

    def help(self, argument: str = "") -> bool:
        out.print(escape(help_text()))
        return True

    def sources(self, argument: str = "") -> bool:
        try:
            rows = self.service.sources()
        except QABotError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return True
        for s in rows:
            meta = s.meta
            out.print(
                f"• {meta.title} — {meta.outlet_label()}, {meta.date_label()} "
                f"({self.service.display_path(meta)})",
                markup=False,
            )
        out.print(f"{len(rows)} articles")
        return True

    def outlet(self, argument: str = "") -> bool:
        """``:outlet NAME`` keeps to one outlet's articles; ``:outlet all`` lifts it."""
        try:
            known = self.service.outlets()
        except QABotError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return True
        self._apply(outlet_command(self.filters, argument, known, prefix=PREFIX))
        return True

    def dates(self, argument: str = "") -> bool:
        """``:dates FROM TO`` keeps to articles published then; ``:dates all`` lifts it."""
        self._apply(dates_command(self.filters, argument, prefix=PREFIX))
        return True

    def _apply(self, change: FilterChange) -> None:
        self.filters = change.filters
        (out if change.ok else err).print(escape(_plain(change.message)))

    def context(self, argument: str = "") -> bool:
        last = self.conversation.last() if self.use_context else None
        if last is None:
            out.print("No context: the next question stands alone.")
            return True
        left = max(0, round((last.at + self.conversation.ttl_seconds - time.time()) / 60))
        out.print(f"Follow-ups build on: “{escape(last.topic)}”")
        if last.words:
            out.print(f"  key words: {escape(', '.join(last.words))}")
        out.print(f"  forgotten in about {left} min, or now with :reset")
        return True

    def good(self, argument: str = "") -> bool:
        """``:good``: the latest answer was right."""
        return self._vote("good", argument)

    def bad(self, argument: str = "") -> bool:
        """``:bad [note]``: the latest answer was wrong; the note may say what is right."""
        return self._vote("bad", argument)

    def _vote(self, vote: str, note: str) -> bool:
        if self.rated is None:
            err.print(NOTHING_TO_RATE)
            return True
        try:
            outcome = self.service.feedback.record(self.rated, vote, note=note, front="chat")
        except QABotError as exc:
            err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return True
        err.print(escape(_plain(vote_reply(vote, outcome, prefix=PREFIX, noted=bool(note)))))
        return True

    def reset(self, argument: str = "") -> bool:
        self.conversation.reset()
        out.print("Context cleared: the next question stands alone.")
        return True


def _read_lines(interactive: bool) -> Callable[[], str | None]:
    """A function returning the next line, or None at the end of input."""
    if interactive:
        with contextlib.suppress(ImportError):  # Windows without pyreadline: no editing
            import readline  # noqa: F401  (importing it gives input() editing and history)

        def read_tty() -> str | None:
            try:
                return input(PROMPT)
            except EOFError:
                return None

        return read_tty

    def read_pipe() -> str | None:
        line = sys.stdin.readline()
        return line if line else None

    return read_pipe


def chat(
    ctx: typer.Context,
    outlet: OutletOption = None,
    since: Annotated[str | None, typer.Option(help="Only articles published on/after.")] = None,
    until: Annotated[str | None, typer.Option(help="Only articles published on/before.")] = None,
    context: Annotated[
        bool, typer.Option(help="Answer follow-ups with the previous question's topic.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per answer per line.")
    ] = False,
    refresh: RefreshOption = True,
) -> None:
    """Ask questions one after another; follow-ups build on the previous question."""
    interactive = sys.stdin.isatty()
    with errors():
        filters = option_filters(outlet, since, until)
        service = state(ctx).service
        if refresh:
            refresh_index(service)
        status = service.status()
        service.query_embedder.embed(["warm up"])  # load the model now, not at question one
        memory = service.settings.conversation
        session = ChatSession(
            service,
            Conversation(memory.ttl_seconds, memory.max_turns),
            filters=filters,
            use_context=context,
            as_json=as_json,
            generation=status.generation,
        )
    if interactive:
        err.print(
            f"{status.articles} articles indexed. Ask a question; :help for commands, "
            ":quit or Ctrl-D to leave."
        )
    read = _read_lines(interactive)
    try:
        while True:
            line = read()
            if line is None or not session.handle(line):
                break
    except KeyboardInterrupt:
        pass
    if interactive:
        err.print()


__all__ = ["ChatSession", "chat", "help_text"]
