"""``qa-bot chat`` driven through stdin: follow-ups, commands, errors, exits, hot reload."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qa_bot.cli import app
from qa_bot.cli import chat as cli_chat
from qa_bot.cli.chat import ChatSession
from qa_bot.dialogue.memory import Conversation
from qa_bot.service import QAService

from .conftest import CountingEmbedder, copy_project, make_settings, write_article

runner = CliRunner()
NOTE = "Taking your previous question into account"


@pytest.fixture
def project(tmp_path: Path, seeds_service: QAService) -> Path:
    """A copy of the indexed seeds project."""
    return copy_project(seeds_service, tmp_path)


def _chat(project: Path, lines: list[str], *args: str) -> Any:
    opts = ["--seeds", str(project / "seeds"), "--index", str(project / "embeddings")]
    return runner.invoke(
        app, [*opts, "chat", *args], input="\n".join(lines) + "\n", catch_exceptions=False
    )


def test_follow_ups_use_the_previous_question(project: Path) -> None:
    result = _chat(
        project,
        ["Who did the US say attacked the convoy?", "When was that?", "And according to TASS?"],
    )
    assert result.exit_code == 0, result.output
    assert result.output.count(f"{NOTE}: “Who did the US say attacked the convoy?”.") == 2
    assert "Searching only articles from TASS." in result.output
    assert "September 19" in result.output
    assert not result.output.startswith("? ")  # no prompts when stdin is not a terminal


def test_commands_and_bad_input_keep_the_loop_going(project: Path) -> None:
    result = _chat(
        project,
        [
            ":help",
            ":context",
            "Who did the US say attacked the convoy?",
            ":context",
            ":reset",
            ":context",
            "When was that?",
            "",
            "?!?",
            ":bogus",
            "x" * 5000,
            ":sources",
            "Who is Russia's ambassador to the UN?",
            ":quit",
            "Who co-chairs the International Syria Support Group?",
        ],
    )
    out = result.output
    assert result.exit_code == 0, out
    assert ":reset" in out and ":sources" in out  # help
    assert out.count("No context: the next question stands alone.") == 2
    assert "Follow-ups build on: “Who did the US say attacked the convoy?”" in out
    assert "Context cleared" in out
    assert NOTE not in out  # "When was that?" after :reset stands alone
    assert "The articles don't cover this." in out
    assert "no words in it" in out
    assert "unknown command :bogus" in out
    assert "5,000 characters long" in out
    assert "5 articles" in out
    assert "Vitaly Churkin" in out
    assert "Moscow and Washington" not in out  # asked after :quit


def test_outlet_and_dates_commands_restrict_the_next_questions(project: Path) -> None:
    ambassador = "Who is Russia's ambassador to the UN?"
    result = _chat(
        project,
        [
            ":outlet",
            ":outlet Nobody",
            ":outlet tass",
            ambassador,
            ":outlet all",
            ":dates 2016-13",
            ":dates 2016-09-24 2016-09-01",
            ":dates 1987",
            ":dates",
            ambassador,
            ":dates all",
            ambassador,
        ],
        "--no-context",
    )
    out = result.output
    assert result.exit_code == 0, out
    assert "Searching every outlet. Outlets: " in out and "TASS" in out
    assert "no outlet called “Nobody”" in out
    assert "Searching only TASS." in out
    assert "Searching only articles from TASS." in out  # the answer's note
    assert "Searching every outlet again." in out
    assert "“2016-13” is not a real date" in out
    assert "2016-09-24 is after 2016-09-01" in out
    assert out.count("published 1987-01-01 to 1987-12-31") == 3  # set, shown, noted
    assert "3 articles without a stated date left out." in out  # the seeds' undated ones
    assert "The articles don't cover this." in out
    assert "Searching articles of every date again." in out
    assert out.rstrip().count("Vitaly Churkin") >= 1
    assert out.rindex("Vitaly Churkin") > out.rindex("every date again")


def test_end_of_input_exits_cleanly(project: Path) -> None:
    result = _chat(project, ["Who is Russia's ambassador to the UN?"])
    assert result.exit_code == 0
    assert "Vitaly Churkin" in result.output


def test_json_lines_say_whether_context_was_used(project: Path) -> None:
    result = _chat(
        project,
        ["Who did the US say attacked the convoy?", "When was that?", ":quit"],
        "--json",
    )
    assert result.exit_code == 0, result.output
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["follow_up"] for r in rows] == [False, True]
    assert rows[1]["question"] == "When was that?"
    assert rows[1]["notes"][0].startswith(NOTE)
    assert all(r["ms"] >= 0 for r in rows)


def test_no_context_option_answers_each_question_alone(project: Path) -> None:
    result = _chat(
        project, ["Who did the US say attacked the convoy?", "When was that?"], "--no-context"
    )
    assert result.exit_code == 0
    assert NOTE not in result.output
    assert "The articles don't cover this." in result.output


def test_ctrl_c_exits_cleanly(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(interactive: bool) -> Any:
        def read() -> str | None:
            raise KeyboardInterrupt

        return read

    monkeypatch.setattr(cli_chat, "_read_lines", interrupted)
    result = _chat(project, [])
    assert result.exit_code == 0
    assert "Traceback" not in result.output


def test_missing_index_is_a_one_line_error(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["--index", str(tmp_path / "none"), "chat", "--no-refresh"], input="Who?\n"
    )
    assert result.exit_code == 4
    assert "no index" in result.output and "Traceback" not in result.output


# --- the session itself, over a tiny corpus -------------------------------------------------------


def _session(service: Any) -> ChatSession:
    return ChatSession(service, Conversation())


def test_a_rebuilt_index_is_used_by_the_next_question(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    embedder = CountingEmbedder()
    settings = make_settings(tmp_path, corpus)
    service = QAService(settings, embedder=embedder)
    service.index()
    session = _session(service)
    assert session.handle("Where did the cocoa harvest outlook improve?")
    assert "Rain in the cocoa zone" in capsys.readouterr().out

    write_article(
        corpus,
        "delta.txt",
        "Cocoa harvest revised",
        "Traders revised the cocoa harvest outlook in the Ashanti region downwards on Friday.",
    )
    QAService(settings, embedder=embedder).index()  # as `qa-bot index` in another process
    session.handle("Which region had its cocoa harvest outlook revised downwards?")
    captured = capsys.readouterr()
    assert "Ashanti region" in captured.out
    assert "index was rebuilt" in captured.err


def test_an_unexpected_error_does_not_end_the_session(
    capsys: pytest.CaptureFixture[str],
) -> None:
    class Broken:
        def snapshot(self) -> Any:
            raise RuntimeError("disk on fire")

    session = _session(Broken())
    assert session.handle("Who is Churkin?") is True
    assert "unexpected error: RuntimeError: disk on fire" in capsys.readouterr().err
