from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa_bot.cli import app
from qa_bot.cli.base import hoist_global_options
from qa_bot.service import QAService

from .conftest import copy_project, write_article

runner = CliRunner()


def _run(*args: str, input: str | None = None):
    return runner.invoke(app, list(args), input=input, catch_exceptions=False)


@pytest.fixture
def project(tmp_path: Path, seeds_service: QAService) -> Path:
    """A copy of the indexed seeds project, so tests can break it without harming others."""
    return copy_project(seeds_service, tmp_path)


def _opts(project: Path) -> list[str]:
    return ["--seeds", str(project / "seeds"), "--index", str(project / "embeddings")]


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["ask", ""], 2, "the question is empty"),
        (["ask", "   "], 2, "the question is empty"),
        (["ask", "?!?"], 2, "no words"),
        (["ask", "x" * 10_000], 2, "10,000 characters long"),
        (["ask"], 2, "give a question"),
        (["ask", "--since", "yesterday", "Who?"], 2, "--since: “yesterday” is not a date"),
        (["ask", "--until", "2016-02-30", "Who?"], 2, "--until: “2016-02-30” is not a real"),
        (["ask", "--since", "2016-10", "--until", "2016-09", "Who?"], 2, "is after --until"),
        (["ask", "--batch", "/nonexistent/questions.txt"], 2, "cannot read"),
    ],
)
def test_bad_questions_get_clear_errors(
    project: Path, args: list[str], code: int, message: str
) -> None:
    result = _run(*_opts(project), *args)
    assert result.exit_code == code
    assert message in result.output
    assert "Traceback" not in result.output


def test_missing_seeds_folder(tmp_path: Path) -> None:
    result = _run("--seeds", str(tmp_path / "nope"), "--index", str(tmp_path / "i"), "index")
    assert result.exit_code == 3
    assert "seeds folder not found" in result.output


def test_empty_corpus(tmp_path: Path) -> None:
    (tmp_path / "seeds").mkdir()
    result = _run("--seeds", str(tmp_path / "seeds"), "--index", str(tmp_path / "i"), "index")
    assert result.exit_code == 3
    assert "no usable article" in result.output


@pytest.mark.parametrize("command", ["sources", "status"])
def test_missing_index(tmp_path: Path, command: str) -> None:
    result = _run("--index", str(tmp_path / "none"), command)
    assert result.exit_code == 4
    assert "no index" in result.output and "qa-bot index" in result.output


def test_corrupted_index(project: Path) -> None:
    current = (project / "embeddings" / "CURRENT").read_text().strip()
    (project / "embeddings" / current / "meta.sqlite").write_bytes(b"garbage" * 100)
    result = _run(*_opts(project), "sources")
    assert result.exit_code == 4
    assert "unreadable" in result.output and "qa-bot index" in result.output


def test_ask_prints_quotes_and_sources(project: Path) -> None:
    result = _run(*_opts(project), "ask", "Who is Russia's ambassador to the UN?")
    assert result.exit_code == 0, result.output
    assert "Vitaly Churkin" in result.output
    assert (
        "[1] Russia accuses the US of supporting terror groups in Syria — outlet unknown, "
        "date not stated (" in result.output
    )


def test_ask_json_batch_from_stdin(project: Path) -> None:
    questions = (
        "How long after the convoy caught fire did the drone leave?\n\nWho is the CEO of Apple?\n"
    )
    result = _run(*_opts(project), "ask", "--json", "--batch", "-", input=questions)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    assert [line["answered"] for line in lines] == [True, False]
    cite = lines[0]["citations"][0]
    assert set(cite) == {"n", "file", "title", "outlet", "date", "date_text", "quote", "score"}
    assert cite["file"].endswith("seeds/004_6573c82807c02ec9.txt")
    assert cite["outlet"] == "TASS" and cite["date"] is None and cite["date_text"] == "September 22"
    text = project / cite["file"].split("seeds/", 1)[0] / "seeds" / Path(cite["file"]).name
    assert cite["quote"] in (project / "seeds" / Path(cite["file"]).name).read_text()
    assert text.name == Path(cite["file"]).name
    assert lines[1]["citations"] == [] and "don't cover" in lines[1]["answer"]


@pytest.mark.parametrize(
    "question",
    [
        "What did Lavrov deny about the convoy?",
        pytest.param(
            "What did Lavrov say about the convoy?",
            marks=pytest.mark.xfail(
                strict=True,
                reason="declined since the twenty-sixth round: the reader finds no answer span "
                "for a question this broad (span margin -5), and the boosted decision for the "
                "seeds trusts it more than the logistic one did (0.10 against 0.17; "
                "benchmarks/README.md, 'Twenty-sixth round')",
            ),
        ),
    ],
)
def test_ask_filters_by_outlet(project: Path, question: str) -> None:
    result = _run(*_opts(project), "ask", "--json", "--outlet", "RT", question)
    answer = json.loads(result.stdout)
    assert answer["citations"] and {c["outlet"] for c in answer["citations"]} == {"RT"}


def test_ask_refreshes_a_stale_index_and_says_so(project: Path) -> None:
    write_article(
        project / "seeds",
        "005_new.txt",
        "Wheat exports soar",
        "Canadian wheat exports rose by a record 40 percent in August, officials said.",
        date="2016-09-30",
    )
    result = _run(*_opts(project), "ask", "By how much did Canadian wheat exports rise?")
    assert result.exit_code == 0, result.output
    assert "index refreshed: added 1" in result.output
    assert "40 percent" in result.output


def test_sources_lists_every_article(project: Path) -> None:
    result = _run(*_opts(project), "sources", "--json")
    rows = [json.loads(line) for line in result.stdout.splitlines()]
    assert [r["outlet"] for r in rows] == ["RT", "RT", "Press TV", None, "TASS"]
    assert all(r["chunks"] > 0 for r in rows)


def test_index_reports_what_it_did(project: Path) -> None:
    (project / "seeds" / "001_fe20e008763192bb.txt").unlink()
    result = _run(*_opts(project), "index", "--json")
    report = json.loads(result.stdout)
    assert report["removed"] == ["001_fe20e008763192bb.txt"]
    assert report["chunks_embedded"] == 0
    assert len(report["unchanged"]) == 4


def test_commands_that_need_no_model_do_not_import_torch(project: Path) -> None:
    """`--help`, `sources`, `status`, and a question once the ONNX export exists, stay fast:
    no torch, no sentence-transformers."""
    probe = (
        "import json, sys; from qa_bot.cli import app\n"
        "for args in json.loads(sys.argv[1]):\n"
        "    try:\n        app(args)\n    except SystemExit as done:\n"
        "        assert not done.code, (args, done.code)\n"
        "heavy = sorted(m for m in ('torch', 'sentence_transformers', 'transformers') "
        "if m in sys.modules)\n"
        "print('HEAVY=' + ','.join(heavy))\n"
    )
    assert list((project / "embeddings" / "onnx").glob("*/model*.onnx"))
    # One process for all four (a process start costs seconds): what any of them imports,
    # the probe sees.
    commands = [
        ["--help"],
        [*_opts(project), "sources"],
        [*_opts(project), "status"],
        [*_opts(project), "ask", "Who is Russia's ambassador to the UN?"],
    ]
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(commands)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().endswith("HEAVY="), done.stdout[-300:]
    assert "Vitaly Churkin" in done.stdout and "articles" in done.stdout

    # A stale index is refreshed with the ONNX model too: still no torch.
    write_article(
        project / "seeds",
        "005_new.txt",
        "Wheat exports soar",
        "Canadian wheat exports rose by a record 40 percent in August, officials said.",
    )
    stale = [[*_opts(project), "ask", "By how much did Canadian wheat exports rise?"]]
    done = subprocess.run(
        [sys.executable, "-c", probe, json.dumps(stale)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "index refreshed: added 1" in done.stderr
    assert "40 percent" in done.stdout
    assert done.stdout.strip().endswith("HEAVY="), done.stdout[-300:]


def test_eval_scores_questions_and_recognises_dialogues(project: Path) -> None:
    questions = project / "q.jsonl"
    questions.write_text(
        json.dumps(
            {
                "id": "q1",
                "question": "Who is Russia's ambassador to the UN?",
                "answers": ["Vitaly Churkin"],
                "docs": ["003"],
            }
        )
        + "\n"
        + json.dumps(
            {
                "id": "q2",
                "question": "Who is the CEO of Apple?",
                "answers": [],
                "docs": [],
                "unanswerable": True,
            }
        )
        + "\n"
    )
    result = _run(*_opts(project), "eval", str(questions), "--json")
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["first_quote_answer_rate"] == 1.0
    assert report["abstention_recall"] == 1.0 and report["faithfulness"] == 1.0

    # Three dialogues of tests/dialogues.jsonl (the whole set is scored in test_dialogue.py).
    lines = (Path(__file__).parent / "dialogues.jsonl").read_text().splitlines()
    dialogues = project / "d.jsonl"
    dialogues.write_text("\n".join([*lines[:2], lines[-1]]) + "\n")
    result = _run("eval", str(dialogues), "--json", *_opts(project))  # options after it too
    assert result.exit_code == 0, result.output
    scored = json.loads(result.stdout)
    assert scored["follow_ups"] == 2 and scored["controls"] == 1
    assert scored["answer_at_1_with_context"] > scored["answer_at_1_without_context"]


def test_global_options_are_hoisted_before_the_command() -> None:
    assert hoist_global_options(["ask", "--seeds", "s", "Q?", "--index=i"]) == [
        "--seeds",
        "s",
        "--index=i",
        "ask",
        "Q?",
    ]
    # after "--" everything is an argument, even an option's name
    assert hoist_global_options(["ask", "--", "--seeds"]) == ["ask", "--", "--seeds"]


@pytest.mark.parametrize(
    ("command", "expected"),
    [
        (["sources"], "5 articles"),
        (["status"], "articles: 5"),
        (["ask", "--no-refresh", "Who is Russia's ambassador to the UN?"], "Vitaly Churkin"),
        (["index", "--json"], '"chunks_embedded": 0'),
        (["chat", "--no-context", "--no-refresh"], "Vitaly Churkin"),
    ],
)
def test_seeds_and_index_work_after_the_command_name(
    project: Path, command: list[str], expected: str
) -> None:
    """Before it, as every other test of this file writes them; after it; or one on each side."""
    seeds, index = ["--seeds", str(project / "seeds")], ["--index", str(project / "embeddings")]
    question = "Who is Russia's ambassador to the UN?\n"
    orders = [[*command, *seeds, *index]]
    if command[0] in ("sources", "status"):  # the quick ones: the mixed order too
        orders.append([command[0], *index, *command[1:], *seeds])
    for args in orders:
        result = _run(*args, input=question)
        assert result.exit_code == 0, (args, result.output)
        assert expected in result.output, (args, result.output[-500:])


def test_the_bot_command_takes_them_after_its_name_too(tmp_path: Path) -> None:
    result = runner.invoke(
        app, ["bot", "--index", str(tmp_path / "none")], env={"QA_BOT_TELEGRAM__TOKEN": ""}
    )
    assert result.exit_code == 2 and "no bot token" in result.output
    assert "No such option" not in result.output


def test_sources_says_where_each_field_came_from(project: Path) -> None:
    (project / "seeds" / "metadata.toml").write_text(
        '["004_6573c82807c02ec9.txt"]\noutlet = "TASS (edited)"\n', encoding="utf-8"
    )
    result = _run(*_opts(project), "sources", "--json", "--origins")
    rows = {r["file"].rsplit("/", 1)[-1]: r for r in map(json.loads, result.stdout.splitlines())}
    assert rows["004_6573c82807c02ec9.txt"]["origins"] == {
        "title": "text",
        "outlet": "metadata.toml",
        "date": "text",
    }
    assert rows["000_cb0a8d303033b8e8.txt"]["origins"]["title"] == "text"
    table = _run(*_opts(project), "sources", "--origins")
    assert table.exit_code == 0 and "from" in table.stdout
