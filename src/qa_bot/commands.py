"""The commands of the conversational fronts, in one table: the bot's ``/help`` and the menu
it registers with Telegram (``setMyCommands``), and the terminal chat's ``:help``, are all
written from it, so they cannot drift apart.

Text is plain, with `code` marked by backquotes and ``{p}`` standing for the front's command
prefix ("/" in Telegram, ":" in the terminal); each front renders that its own way.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Command:
    """One command. ``menu`` is the short line of Telegram's command menu, ``help`` the line of
    the help text; ``args`` name what follows the command ("question", "from to")."""

    name: str
    menu: str
    help: str
    args: str = ""
    in_bot: bool = True
    in_chat: bool = True
    #: Other names that do the same.
    aliases: tuple[str, ...] = ()
    #: Shown in the help text (the greeting command is only in the menu).
    in_help: bool = True


COMMANDS: tuple[Command, ...] = (
    Command(
        "ask",
        "Ask a question about the articles",
        "ask a question (needed in groups)",
        args="question",
        in_chat=False,
    ),
    Command(
        "sources",
        "The articles I know: title, outlet, date",
        "the articles I know: title, outlet, date",
    ),
    Command(
        "outlet",
        "Search only one outlet's articles in this chat",
        "search only that outlet's articles; `{p}outlet all` to search every outlet again",
        args="name",
    ),
    Command(
        "dates",
        "Search only articles published in a date range",
        "search only articles published then (`{p}dates 2016-09`, "
        "`{p}dates 2016-09-20 2016-09-30`, `{p}dates 2016-09-20 -`); `{p}dates all` to "
        "search every date again",
        args="from to",
    ),
    Command(
        "reset",
        "Forget my previous questions; the next one stands alone",
        "forget your previous questions; the next one stands alone",
    ),
    Command(
        "context",
        "What a follow-up would build on",
        "what a follow-up would build on",
        in_bot=False,
    ),
    Command(
        "status",
        "How fresh the index is",
        "how fresh the index is, and which model reads it",
        in_chat=False,
        aliases=("about",),
    ),
    Command(
        "good",
        "Say my last answer was good",
        "say the answer was good (in Telegram: 👍 under it, or this in reply to it)",
    ),
    Command(
        "bad",
        "Say my last answer was wrong, and why",
        "say the answer was wrong; a note may say what is right: "
        '`{p}bad the answer is "62 troops"` (in Telegram: 👎 under it, or this in reply to it)',
        args="note",
    ),
    Command("help", "How to ask, and the commands", "this help"),
    Command("start", "What this bot is", "what this bot is", in_chat=False, in_help=False),
    Command("quit", "Leave", "leave (or Ctrl-D)", in_bot=False, aliases=("q", "exit")),
)


def bot_commands() -> list[Command]:
    """The bot's commands, in menu order."""
    return [c for c in COMMANDS if c.in_bot]


def chat_commands() -> list[Command]:
    """The terminal chat's commands, in help order."""
    return [c for c in COMMANDS if c.in_chat]


def help_line(command: Command, prefix: str) -> str:
    """``{p}name args — help``, with ``{p}`` filled in (still plain text with `code` marks)."""
    head = f"{prefix}{command.name}" + (f" {command.args}" if command.args else "")
    return f"{head} — {command.help.format(p=prefix)}"


NOTHING_TO_RATE = "There is no answer to rate yet: ask a question first."


def vote_reply(vote: str, outcome: str, *, prefix: str, noted: bool = False) -> str:
    """What a front says to a vote (``outcome`` as :meth:`FeedbackLog.record` returns it):
    thanks, the vote changed, or already noted; after a 👎 without a note, how to add one."""
    word = "good" if vote == "good" else "wrong"
    if outcome == "same":
        return f"Already noted as {word}, thanks."
    text = f"Thanks: noted as {word}." if outcome == "new" else f"Changed to {word}, thanks."
    if vote == "bad" and not noted:
        text += f" `{prefix}bad` and a note say what is right."
    return text


__all__ = [
    "COMMANDS",
    "NOTHING_TO_RATE",
    "Command",
    "bot_commands",
    "chat_commands",
    "help_line",
    "vote_reply",
]
