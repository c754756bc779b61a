"""``python -m qa_bot.cli``: the same as the ``qa-bot`` command."""

from qa_bot.cli import main

main()
