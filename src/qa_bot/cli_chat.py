"""``qa-bot chat``: ask question after question in one process, follow-ups included.

The model and the index are loaded once, before the first prompt, so each answer takes only the
question's own work. Follow-ups ("When was that?") are answered with the previous question's
topic, exactly as in the Telegram bot (:mod:`qa_bot.conversation`). When ``qa-bot index``
switches the index while the chat runs, the next question is answered from the new one.

Line editing and history (readline) only when stdin is a terminal; piped questions are read
line by line, without prompts, so ``qa-bot chat < questions.txt`` works as a script.

This module imports :mod:`qa_bot.cli` only inside its functions: ``cli`` imports every command
module when it loads, so importing ``cli`` here at the top would be circular.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Annotated, Any

import typer
from rich.markup import escape

from qa_bot.errors import QABotError

#: The chat id of the terminal in the conversation store (one conversation per process).
CHAT_ID = "terminal"
PROMPT = "? "

HELP = """\
Ask a question about the articles; follow-ups like "When was that?" or "And according to TASS?"
build on your previous question (the answer says so when they do).
  :sources   the articles I know
  :outlet NAME       search only that outlet's articles (:outlet all: every outlet)
  :dates FROM TO     search only articles published then: :dates 2016-09,
                     :dates 2016-09-20 2016-09-30, :dates 2016-09-20 - (:dates all: every date)
  :context   what a follow-up would build on
  :reset     forget the previous questions; the next one stands alone
  :help      this help
  :quit      leave (or Ctrl-D)"""


@dataclass
class ChatSession:
    """One terminal conversation: reads commands and questions, prints answers."""

    service: Any
    conversations: Any
    filters: Any = None
    use_context: bool = True
    as_json: bool = False
    generation: str | None = None
    #: The CLI's consoles and answer printers, shared with ``qa-bot ask``.
    cli: Any = None
    commands: dict[str, Callable[[str], bool]] = field(init=False, default_factory=dict)

    def __post_init__(self) -> None:
        if self.cli is None:
            from qa_bot import cli

            self.cli = cli
        self.commands = {
            ":quit": self.quit,
            ":q": self.quit,
            ":exit": self.quit,
            ":help": self.help,
            ":sources": self.sources,
            ":outlet": self.outlet,
            ":dates": self.dates,
            ":context": self.context,
            ":reset": self.reset,
        }

    def handle(self, line: str) -> bool:
        """Act on one line; False when the user wants to leave."""
        line = line.strip()
        if not line:
            return True
        if line.startswith(":"):
            name, _, argument = line.partition(" ")
            command = self.commands.get(name.casefold())
            if command is None:
                self.cli.err.print(f"unknown command {escape(name)}; :help lists them")
                return True
            return command(argument.strip())
        self.ask(line)
        return True

    def ask(self, question: str) -> None:
        try:
            self._notice_new_index()
            started = time.perf_counter()
            if self.use_context:
                reply = self.conversations.reply(
                    self.service, CHAT_ID, question, filters=self.filters
                )
                answer, follow_up = reply.answer, reply.follow_up
            else:
                answer, follow_up = self.service.ask(question, filters=self.filters), False
            elapsed = time.perf_counter() - started
        except QABotError as exc:  # a bad question, a missing index: say so, keep going
            self.cli.err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return
        except Exception as exc:  # a bug must not end the session; say what it was
            name = type(exc).__name__
            self.cli.err.print(f"[bold red]unexpected error:[/] {escape(name)}: {escape(str(exc))}")
            return
        if self.as_json:
            data = self.cli.answer_json(self.service, answer)
            data["follow_up"] = follow_up
            data["ms"] = round(elapsed * 1000, 1)
            sys.stdout.write(json.dumps(data, ensure_ascii=False) + "\n")
            sys.stdout.flush()
            return
        self.cli.print_answer(self.service, answer)
        if sys.stdin.isatty():
            self.cli.out.print(f"[dim]{elapsed * 1000:.0f} ms[/]")
        self.cli.out.print()

    def _notice_new_index(self) -> None:
        generation = self.service.snapshot().generation
        if self.generation is not None and generation != self.generation:
            self.cli.err.print("[dim]The index was rebuilt; answering from the new one.[/]")
        self.generation = generation

    # --- commands -------------------------------------------------------------------------------

    def quit(self, argument: str = "") -> bool:
        return False

    def help(self, argument: str = "") -> bool:
        self.cli.out.print(escape(HELP))
        return True

    def sources(self, argument: str = "") -> bool:
        try:
            rows = self.service.sources()
        except QABotError as exc:
            self.cli.err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return True
        for s in rows:
            meta = s.meta
            self.cli.out.print(
                f"• {meta.title} — {meta.outlet_label()}, {meta.date_label()} "
                f"({self.service.display_path(meta)})",
                markup=False,
            )
        self.cli.out.print(f"{len(rows)} articles")
        return True

    def outlet(self, argument: str = "") -> bool:
        """``:outlet NAME`` keeps to one outlet's articles; ``:outlet all`` lifts it."""
        from qa_bot.filters import LIFT_WORDS, SearchFilters, find_outlet

        filters = self.filters or SearchFilters()
        try:
            known = self.service.snapshot().outlets()
        except QABotError as exc:
            self.cli.err.print(f"[bold red]error:[/] {escape(str(exc))}")
            return True
        if not argument:
            current = " or ".join(filters.outlets) or "every outlet"
            self.cli.out.print(f"Searching {current}. Outlets: {', '.join(known) or 'none'}.")
            return True
        if argument.casefold() in LIFT_WORDS:
            self._set_filters(replace(filters, outlets=()), "Searching every outlet again.")
            return True
        match = find_outlet(argument, known)
        if match is None:
            self.cli.err.print(
                f"no outlet called “{escape(argument)}”; outlets: {escape(', '.join(known))}"
            )
            return True
        self._set_filters(replace(filters, outlets=(match,)), f"Searching only {match}.")
        return True

    def dates(self, argument: str = "") -> bool:
        """``:dates FROM TO`` keeps to articles published then; ``:dates all`` lifts it."""
        from qa_bot.filters import LIFT_WORDS, SearchFilters, parse_date_range

        filters = self.filters or SearchFilters()
        if not argument:
            dated = replace(filters, outlets=())
            self.cli.out.print(
                f"Searching articles {dated.describe()}."
                if dated.active
                else "Searching articles of every date. :dates 2016-09 (a month), "
                ":dates 2016-09-20 2016-09-30, :dates 2016-09-20 - (from then on)."
            )
            return True
        if argument.casefold() in LIFT_WORDS:
            since, until = None, None
        else:
            try:
                since, until = parse_date_range(argument)
            except ValueError as exc:
                self.cli.err.print(f"{escape(str(exc))}; e.g. :dates 2016-09-20 2016-09-30")
                return True
        changed = replace(filters, since=since, until=until)
        dated = replace(changed, outlets=())
        self._set_filters(
            changed,
            f"Searching only articles {dated.describe()} (undated articles are left out)."
            if dated.active
            else "Searching articles of every date again.",
        )
        return True

    def _set_filters(self, filters: Any, message: str) -> None:
        self.filters = filters if filters.active else None
        self.cli.out.print(escape(message))

    def context(self, argument: str = "") -> bool:
        turns = self.conversations.context(CHAT_ID) if self.use_context else []
        if not turns:
            self.cli.out.print("No context: the next question stands alone.")
            return True
        last = turns[-1]
        left = max(0, round((last.at + self.conversations.ttl_seconds - time.time()) / 60))
        self.cli.out.print(f"Follow-ups build on: “{escape(last.topic)}”")
        if last.words:
            self.cli.out.print(f"  key words: {escape(', '.join(last.words))}")
        self.cli.out.print(f"  forgotten in about {left} min, or now with :reset")
        return True

    def reset(self, argument: str = "") -> bool:
        self.conversations.reset(CHAT_ID)
        self.cli.out.print("Context cleared: the next question stands alone.")
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


def chat_command(
    ctx: typer.Context,
    outlet: Annotated[
        list[str] | None, typer.Option(help="Only articles from this outlet (repeatable).")
    ] = None,
    since: Annotated[str | None, typer.Option(help="Only articles published on/after.")] = None,
    until: Annotated[str | None, typer.Option(help="Only articles published on/before.")] = None,
    context: Annotated[
        bool, typer.Option(help="Answer follow-ups with the previous question's topic.")
    ] = True,
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per answer per line.")
    ] = False,
    refresh: Annotated[
        bool, typer.Option(help="Build or refresh the index first if missing or stale.")
    ] = True,
) -> None:
    """Ask questions one after another; follow-ups build on the previous question."""
    from qa_bot.cli import _date_filters, _errors, _print_report, _progress_factory, _state, err
    from qa_bot.conversation import Conversations

    interactive = sys.stdin.isatty()
    with _errors():
        filters = _date_filters(outlet, since, until)
        service = _state(ctx).service
        if refresh:
            report = service.ensure_index(progress=_progress_factory(sys.stderr.isatty()))
            if report is not None:
                _print_report(report, quiet=True)
        status = service.status()
        service.query_embedder.embed(["warm up"])  # load the model now, not at question one
        session = ChatSession(
            service,
            Conversations(service.settings.conversation),
            filters=filters if filters.active else None,
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


def register(app: typer.Typer) -> None:
    app.command("chat")(chat_command)
