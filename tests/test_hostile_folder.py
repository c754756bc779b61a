"""A seeds folder set up by an attacker or a careless operator: `qa-bot index` gets through it
quickly, with one line per file it skips, and questions are answered from the rest."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa_bot.cli import app
from qa_bot.cli.bot import prepare_service
from qa_bot.service import QAService

from .conftest import CountingEmbedder, make_settings, run_with_deadline, write_article

SECRET = "Quetzalcoatlite"

#: Every file the index must skip, and a word of the reason it must give.
SKIPPED = {
    "pipe.txt": "named pipe (FIFO)",
    "sock.txt": "a socket",
    "null.txt": "a link to a device outside the seeds folder",
    "leak.txt": "a link to a file outside the seeds folder",
    "outside": "a link to a folder outside the seeds folder",
    "gone.txt": "dangling symlink",
    "loop.txt": "symlink loop",
    "nested/up": "symlink loop",
    "empty.txt": "empty file (0 bytes)",
    "headline.txt": "only a headline",
    "metadata.toml": 'line 2 ["alpha.txt"]: date: must be a date',
}


@pytest.fixture
def hostile(tmp_path: Path, corpus: Path, monkeypatch: pytest.MonkeyPatch):
    private = tmp_path / "private"
    write_article(private, "secret.txt", f"{SECRET} memo", f"The {SECRET} drone code is 4471.")
    (corpus / "leak.txt").symlink_to(private / "secret.txt")
    (corpus / "outside").symlink_to(private, target_is_directory=True)
    os.mkfifo(corpus / "pipe.txt")
    monkeypatch.chdir(corpus)
    server = socket.socket(socket.AF_UNIX)
    server.bind("sock.txt")
    (corpus / "null.txt").symlink_to(os.devnull)
    (corpus / "gone.txt").symlink_to(corpus / "nowhere.txt")
    (corpus / "loop.txt").symlink_to(corpus / "loop.txt")
    (corpus / "nested" / "up").symlink_to(corpus, target_is_directory=True)
    (corpus / "empty.txt").write_bytes(b"")
    (corpus / "headline.txt").write_text("Flamingo census planned\n")
    (corpus / "wide.txt").write_bytes(
        "Flamingo count\n\nRangers counted 4,200 flamingos at Lake Nakuru in June.\n".encode(
            "utf-16"
        )
    )
    (corpus / "odd\nname.txt").write_text(
        "Cheetah survey\n\nWardens counted 31 cheetahs in the Serengeti in May.\n"
    )
    (corpus / "metadata.toml").write_text('["alpha.txt"]\ndate = "last week"\n')
    yield corpus
    server.close()


def _cli(corpus: Path, tmp_path: Path, *args: str, fifo: Path):
    opts = ["--seeds", str(corpus), "--index", str(tmp_path / "index")]
    runner = CliRunner()
    return run_with_deadline(lambda: runner.invoke(app, [*opts, *args]), 10, fifo)


def test_index_and_ask_get_through_a_hostile_folder(
    hostile: Path, tmp_path: Path, fake_model: None
) -> None:
    fifo = hostile / "pipe.txt"
    started = time.perf_counter()
    indexed = _cli(hostile, tmp_path, "index", fifo=fifo)
    assert time.perf_counter() - started < 10
    assert indexed.exit_code == 3  # the broken metadata entry: an error for `index` only
    lines = indexed.output.splitlines()
    for name, reason in SKIPPED.items():
        mine = [line for line in lines if line.startswith(f"skipped {name}:")]
        assert len(mine) == 1 and reason in mine[0], (name, mine)
    assert "added 5," in indexed.output  # alpha, beta, gamma, wide, odd\nname
    assert SECRET not in indexed.output

    asked = _cli(hostile, tmp_path, "ask", "How many flamingos were counted?", fifo=fifo)
    assert asked.exit_code == 0, asked.output
    assert "4,200 flamingos" in asked.output and "wide.txt" in asked.output
    assert 'line 2 ["alpha.txt"]' in asked.output  # the warning, on every question
    assert "index refreshed" not in asked.output  # nothing to refresh: skips are remembered

    odd = _cli(hostile, tmp_path, "ask", "How many cheetahs did the wardens count?", fifo=fifo)
    sources = odd.output.split("Sources\n", 1)[1].splitlines()
    assert sources and all(line.startswith("[") for line in sources), odd.output
    assert "odd\\nname.txt" in odd.output, odd.output


def test_the_bot_starts_on_a_hostile_folder(hostile: Path, tmp_path: Path) -> None:
    service = QAService(make_settings(tmp_path, hostile), embedder=CountingEmbedder())
    run_with_deadline(lambda: prepare_service(service), 10, hostile / "pipe.txt")
    answer = service.ask("How many flamingos were counted?")
    assert answer.answered and answer.citations[0].article.path == "wide.txt"


def test_a_question_is_normalised_where_it_enters(tmp_path: Path, corpus: Path) -> None:
    service = QAService(make_settings(tmp_path, corpus), embedder=CountingEmbedder())
    service.index()
    clean = service.ask("At what altitude was the drone registered?")
    dirty = service.ask("At what \x1b[1maltitude\x1b[0m was the dr\u00adone regis\u00adtered?")
    assert dirty.question == clean.question
    assert [c.quote for c in dirty.citations] == [c.quote for c in clean.citations]
