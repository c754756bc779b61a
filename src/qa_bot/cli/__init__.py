"""The terminal front: ``qa-bot index | ask | sources | status | chat | eval | bot | watch``,
``qa-bot feeds ...`` and ``qa-bot feedback ...``.

A thin layer over :class:`qa_bot.service.QAService`: it parses options, builds the settings
once, prints, and turns domain errors into one-line messages with a non-zero exit. The shared
parts are in :mod:`.base`; each command is a plain function of its module, registered here.
"""

from __future__ import annotations

from qa_bot.cli import bot, chat, commands, evaluate, feedback, feeds, watch
from qa_bot.cli.base import app
from qa_bot.runtime import prepare_process

app.command()(commands.index)
app.command()(commands.ask)
app.command()(commands.sources)
app.command()(commands.status)
app.command("eval")(evaluate.evaluate)
app.command()(chat.chat)
app.command()(bot.bot)
app.command()(watch.watch)
app.add_typer(feeds.feeds_app, name="feeds")
app.add_typer(feedback.feedback_app, name="feedback")


def main() -> None:
    """The ``qa-bot`` command (and the bot: ``qa-bot bot``)."""
    prepare_process()
    app()


__all__ = ["app", "main"]
