"""A broken metadata.toml is reported with its line and key; it stops `qa-bot index` (exit 3,
after indexing the rest) and never the answers."""

from __future__ import annotations

import datetime as dt
import sqlite3
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa_bot.cli import app
from qa_bot.indexer import update_index
from qa_bot.service import QAService
from qa_bot.sidecar import parse_sidecar

from .conftest import CountingEmbedder, make_settings


@pytest.mark.parametrize(
    ("content", "line", "key", "message"),
    [
        ('["a.txt"]\ncolour = "red"\n', 2, "a.txt", "unknown field “colour”"),
        ('["a.txt"]\ntitle = "T"\ndate = "22/09/2016"\n', 3, "a.txt", "date: must be a date"),
        ('["a.txt"]\ndate = 20160922\n', 2, "a.txt", "date: must be a date"),
        ('["a.txt"]\ntitle = 42\n', 2, "a.txt", "title: must be text in quotes, got 42"),
        ('["a.txt"]\noutlet = ["RT"]\n', 2, "a.txt", "outlet: must be text in quotes"),
        ('["a.txt"]\nurl = "ftp://x.org/a"\n', 2, "a.txt", "url: must be an http(s) address"),
        ('["a.txt"]\nurl = "not an address"\n', 2, "a.txt", "url: must be an http(s) address"),
        ('["a.txt"]\ntitle = "two\\nlines"\n', 2, "a.txt", "title: must be one line"),
        ('["a.txt"]\ntitle = ""\n', 2, "a.txt", "title: must not be empty"),
        ('# notes\n\n["a.txt"]\ntitle = "T\n', 4, "a.txt", "not valid TOML"),
        ('["a.txt"]\ntitle = "T"\n["a.txt"]\nurl = "https://x.org"\n', 3, "a.txt", "twice"),
        ("[a.txt]\ntitle = 'T'\n", 1, "a", 'must be quoted: ["a.txt"]'),
        ('"a.txt" = "T"\n', 1, "a.txt", "must be a table"),
    ],
)
def test_each_problem_has_its_line_and_key(content: str, line: int, key: str, message: str) -> None:
    sidecar = parse_sidecar(content, known={"a.txt"})
    assert len(sidecar.errors) == 1, sidecar.problems
    problem = sidecar.errors[0]
    assert (problem.line, problem.key) == (line, key)
    assert message in problem.message
    assert f"line {line} [" in problem.describe()
    assert "a.txt" not in sidecar.entries and sidecar.holds(key)


def test_a_broken_table_leaves_the_others_applied() -> None:
    sidecar = parse_sidecar(
        '["a.txt"]\ndate = 2016-09-22T10:00:00\nurl = "https://tass.com/a"\n\n'
        '["b.txt"]\ntitle = "unclosed\n\n'
        '["c.txt"]\ntitle = "C"\ndate = "2016-09-23"\n',
        known={"a.txt", "b.txt", "c.txt"},
    )
    assert sidecar.entries == {
        "a.txt": {"date": dt.date(2016, 9, 22), "url": "https://tass.com/a"},
        "c.txt": {"title": "C", "date": dt.date(2016, 9, 23)},
    }
    assert [(p.line, p.key) for p in sidecar.errors] == [(6, "b.txt")]
    assert sidecar.holds("b.txt") and not sidecar.holds("a.txt")


def test_keys_that_match_no_file_are_reported_not_fatal() -> None:
    sidecar = parse_sidecar(
        '["a.txt"]\ntitle = "A"\n["gone.txt"]\ntitle = "G"\n["../x.txt"]\ntitle = "X"\n',
        known={"a.txt"},
    )
    assert sidecar.errors == ()
    warnings = {p.key: (p.line, p.message) for p in sidecar.problems}
    assert warnings["gone.txt"][0] == 3 and "matches no file" in warnings["gone.txt"][1]
    assert warnings["../x.txt"][0] == 5 and "outside the seeds folder" in warnings["../x.txt"][1]


def _break_sidecar(corpus: Path) -> None:
    (corpus / "metadata.toml").write_text(
        '["alpha.txt"]\ntitle = "Edited drone title"\n\n["beta.txt"]\ntitle = 42\n'
    )


def test_wrong_values_never_reach_the_index(tmp_path: Path, corpus: Path) -> None:
    (corpus / "metadata.toml").write_text('["beta.txt"]\ntitle = "Geneva"\n')
    settings = make_settings(tmp_path, corpus)
    update_index(settings, CountingEmbedder())
    _break_sidecar(corpus)
    report = update_index(settings, CountingEmbedder())
    assert report.metadata_errors == 1
    lines = [s.reason for s in report.skipped if s.path == "metadata.toml"]
    assert lines == [
        'line 5 ["beta.txt"]: title: must be text in quotes, got 42; this entry is not applied'
    ]
    assert report.updated == ["alpha.txt"]  # beta.txt keeps the title it was indexed with
    titles = {s.meta.path: s.meta.title for s in QAService(settings).sources()}
    assert titles["beta.txt"] == "Geneva" and titles["alpha.txt"] == "Edited drone title"
    db = next(settings.index_dir.glob("gen-*/meta.sqlite"))
    with sqlite3.connect(db) as conn:
        assert all(isinstance(t, str) for (t,) in conn.execute("SELECT title FROM articles"))


def test_a_broken_metadata_file_does_not_stop_the_answers(tmp_path: Path, corpus: Path) -> None:
    settings = make_settings(tmp_path, corpus)
    service = QAService(settings, embedder=CountingEmbedder())
    service.index()
    (corpus / "metadata.toml").write_text('["alpha.txt"]\ndate = "soon"\n')
    for _ in range(2):  # nothing to refresh: the index as built answers, with a warning
        report = service.ensure_index()
        assert report is not None and not report.changed and report.metadata_errors == 1
        assert 'line 2 ["alpha.txt"]: date' in report.skipped[0].reason
    answer = service.ask("At what altitude was the drone?")
    assert answer.answered and answer.citations[0].article.path == "alpha.txt"


def test_cli_index_fails_and_ask_warns(tmp_path: Path, corpus: Path, fake_model: None) -> None:
    runner = CliRunner()
    opts = ["--seeds", str(corpus), "--index", str(tmp_path / "index")]
    assert runner.invoke(app, [*opts, "index"]).exit_code == 0
    _break_sidecar(corpus)
    indexed = runner.invoke(app, [*opts, "index"])
    assert indexed.exit_code == 3
    assert 'metadata.toml: line 5 ["beta.txt"]: title' in indexed.output
    assert "updated 1" in indexed.output  # alpha.txt's good entry applied all the same
    asked = runner.invoke(app, [*opts, "ask", "Where did the ceasefire talks stall?"])
    assert asked.exit_code == 0, asked.output
    assert 'line 5 ["beta.txt"]' in asked.output and "Geneva" in asked.output
