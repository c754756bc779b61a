"""Readers' feedback: the log (one row per rated answer, salted chat hashes, safe concurrent
writes), its export as questions for ``qa-bot eval`` and its counts, ``:good`` / ``:bad`` in
``qa-bot chat``, and the ``qa-bot feedback`` commands' errors."""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import sqlite3
import stat
import threading
from pathlib import Path

import pytest
from typer.testing import CliRunner

from qa_bot.cli import app
from qa_bot.cli.chat import ChatSession
from qa_bot.commands import NOTHING_TO_RATE
from qa_bot.dialogue.memory import Conversation
from qa_bot.evaluation import EvalQuestion, Outcome, Quote, judge, load_questions, summarize
from qa_bot.feedback import FeedbackError, FeedbackLog, export_questions, note_answers
from qa_bot.models import CitedPassage, Rated
from qa_bot.service import QAService
from qa_bot.settings import SettingsError, load_settings

from .conftest import CountingEmbedder, make_settings

runner = CliRunner()

QUOTE = "Russian Ambassador to the UN Vitaly Churkin said peace is almost impossible now."
CITED = CitedPassage("003_un.txt", "Russia accuses the US", None, None, QUOTE)
ANSWERED = Rated("a" * 32, "Who is Russia's ambassador to the UN?", True, (CITED,), "gen-000007")
DECLINED = Rated("b" * 32, "How many troops died?", False, (), "gen-000007")


def _rows(path: Path) -> list[tuple[str, ...]]:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT id, vote, note, chat FROM feedback ORDER BY rowid").fetchall()


# --- the log ----------------------------------------------------------------------------------


def test_a_second_vote_on_an_answer_replaces_the_first(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.sqlite")
    assert log.record(ANSWERED, "bad", chat_id=42) == "new"
    assert log.record(ANSWERED, "bad", chat_id=42) == "same"
    assert log.record(ANSWERED, "bad", note="it is Churkin", chat_id=42) == "changed"
    assert log.record(ANSWERED, "good", chat_id=42) == "changed"
    assert log.record(DECLINED, "bad") == "new"
    rows = _rows(log.path)
    assert [(r[0][0], r[1], r[2]) for r in rows] == [
        ("a", "good", "it is Churkin"),
        ("b", "bad", ""),
    ]
    [first, second] = log.votes()
    assert first.rated == ANSWERED and first.front == ""
    assert second.rated == DECLINED and second.chat is None
    with pytest.raises(ValueError, match="a vote is one of"):
        log.record(ANSWERED, "meh")  # type: ignore[arg-type]


def test_chat_ids_are_kept_only_as_salted_hashes(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "fb" / "feedback.sqlite")
    log.record(ANSWERED, "bad", chat_id=987654321)
    salt = log.path.with_name("feedback.sqlite.salt")
    assert stat.S_IMODE(salt.stat().st_mode) == 0o600
    assert stat.S_IMODE(log.path.stat().st_mode) == 0o600
    stored = log.path.read_bytes()
    assert b"987654321" not in stored
    [(_, _, _, chat)] = _rows(log.path)
    assert chat == log.chat_hash(987654321) and len(chat) == 32
    # The same salt gives the same hash in another process; another salt another hash.
    assert FeedbackLog(log.path).chat_hash(987654321) == chat
    assert FeedbackLog(log.path, salt="from-the-environment").chat_hash(987654321) != chat


def test_a_salt_from_the_environment_is_used_and_never_written(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("QA_BOT_FEEDBACK__SALT", "s3cret-salt")
    settings = load_settings(index_dir=tmp_path / "index")
    log = FeedbackLog.from_settings(settings)
    assert log.path == tmp_path / "index" / "feedback.sqlite"
    log.record(ANSWERED, "good", chat_id=5)
    assert not log.salt_path.exists()
    assert b"s3cret-salt" not in log.path.read_bytes()
    assert log.chat_hash(5) == FeedbackLog(log.path, salt="s3cret-salt").chat_hash(5)


def test_a_salt_in_the_settings_file_is_refused(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "settings.toml"
    config.write_text('[feedback]\nsalt = "oops"\n', encoding="utf-8")
    monkeypatch.setenv("QA_BOT_CONFIG", str(config))
    with pytest.raises(SettingsError, match="QA_BOT_FEEDBACK__SALT"):
        load_settings()


def test_concurrent_votes_are_all_kept_whole(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.sqlite")
    errors: list[BaseException] = []

    def vote(worker: int) -> None:
        try:
            for i in range(15):
                rated = dataclasses.replace(ANSWERED, id=f"{worker:02d}-{i:02d}")
                log.record(rated, "bad" if i % 2 else "good", chat_id=worker, note=f"w{worker}")
                log.record(rated, "bad", chat_id=worker)  # a second press on the same answer
        except BaseException as exc:  # handed to the test's thread
            errors.append(exc)

    threads = [threading.Thread(target=vote, args=(w,)) for w in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    votes = log.votes()
    assert len(votes) == 90 and {v.vote for v in votes} == {"bad"}
    assert all(v.note.startswith("w") for v in votes)
    with sqlite3.connect(log.path) as db:
        assert db.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_unusable_feedback_files_say_so(tmp_path: Path) -> None:
    broken = tmp_path / "feedback.sqlite"
    broken.write_bytes(b"not a database" * 100)
    with pytest.raises(FeedbackError, match="cannot read the feedback"):
        FeedbackLog(broken).votes()
    with pytest.raises(FeedbackError, match="cannot write feedback"):
        FeedbackLog(broken).record(ANSWERED, "bad")
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    with pytest.raises(FeedbackError, match=r"cannot write feedback to .*a-file"):
        FeedbackLog(blocked / "feedback.sqlite").record(ANSWERED, "bad")
    assert FeedbackLog(tmp_path / "none.sqlite").votes() == []


def test_votes_since_a_day(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.sqlite")
    log.record(ANSWERED, "bad", now=dt.datetime(2026, 11, 30, 23, 0, tzinfo=dt.UTC))
    log.record(DECLINED, "bad", now=dt.datetime(2026, 12, 1, 9, 0, tzinfo=dt.UTC))
    assert [v.rated.id[0] for v in log.votes(since=dt.date(2026, 12, 1))] == ["b"]
    assert len(log.votes(since=dt.date(2026, 11, 1))) == 2


# --- export and stats -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("note", "answers"),
    [
        ("62 troops", ["62 troops"]),
        ('the answer is "62 troops"', ["62 troops"]),
        ("it says “62 Syrian troops” and “Deir ez-Zor”", ["62 Syrian troops", "Deir ez-Zor"]),
        ("  ", []),
    ],
)
def test_a_note_gives_the_answer_to_find(note: str, answers: list[str]) -> None:
    assert note_answers(note) == answers


def test_export_turns_each_vote_into_a_question(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.sqlite")
    log.record(ANSWERED, "bad")
    log.record(DECLINED, "bad", note='"62 troops"')
    followup = dataclasses.replace(ANSWERED, id="c" * 32, searched="When was that? Churkin UN")
    log.record(followup, "good")
    log.record(dataclasses.replace(DECLINED, id="d" * 32), "good")
    complaints = log.export()
    assert [line["vote"] for line in complaints] == ["bad", "bad"]
    rejected, declined = complaints
    assert rejected["rejected"] == [QUOTE] and rejected["answers"] == []
    assert rejected["class"] == "feedback" and rejected["verdict"] == "answered"
    assert rejected["generation"] == "gen-000007" and not rejected["unanswerable"]
    assert declined["answers"] == ["62 troops"] and "rejected" not in declined
    everything = export_questions(log.votes(), approvals=True)
    kept, stays_declined = everything[2:]
    assert kept["question"] == "When was that? Churkin UN" and kept["asked"] == ANSWERED.question
    assert kept["kept"] == [QUOTE] and kept["docs"] == ["003_un.txt"]
    assert stays_declined["unanswerable"] is True
    path = tmp_path / "q.jsonl"
    assert log.write_export(path, approvals=True) == 4
    questions = load_questions(path)  # what `qa-bot eval` reads
    assert [q.vote for q in questions] == ["bad", "bad", "good", "good"]
    assert questions[0].rejected == (QUOTE,) and questions[2].kept == (QUOTE,)


def _outcome(q: EvalQuestion, answered: bool, quote: str | None = None) -> Outcome:
    quotes = (Quote("003_un.txt", quote, 0, len(quote), True),) if quote else ()
    return Outcome(q, answered, ("003_un.txt",), quotes, 0.01)


def test_eval_scores_complaints_and_approvals() -> None:
    rejected = EvalQuestion("r", "Q", vote="bad", kind="feedback", rejected=(QUOTE,))
    with_note = EvalQuestion("n", "Q", ("Churkin",), vote="bad", kind="feedback", rejected=(QUOTE,))
    declined = EvalQuestion("d", "Q", vote="bad", kind="feedback")
    kept = EvalQuestion("k", "Q", vote="good", kind="feedback", kept=(QUOTE,))
    judged = [
        judge(_outcome(rejected, True, QUOTE)),
        judge(_outcome(rejected, True, "Another sentence entirely.")),
        judge(_outcome(with_note, True, "Another sentence entirely.")),
        judge(_outcome(declined, False)),
        judge(_outcome(declined, True, "Anything at all.")),
        judge(_outcome(kept, True, "Vitaly Churkin said peace is almost impossible now.")),
        judge(_outcome(kept, True, "Another sentence entirely.")),
    ]
    assert [j.failure for j in judged] == [
        "first quote is the one a reader rejected",
        None,
        "no quote holds the answer",
        "declined an answerable question",
        None,
        None,
        "first quote is no longer the one a reader approved",
    ]
    report = summarize(judged)
    assert (report.complaints, report.approvals) == (5, 2)
    assert report.complaints_resolved == pytest.approx(2 / 5)
    assert report.approvals_kept == pytest.approx(1 / 2)
    assert report.by_class["feedback"]["passed_rate"] == round(3 / 7, 4)
    # Only the question with a note has a gold answer to look for.
    assert report.first_quote_answer_rate == 0.0 and report.answerable == 7


def test_stats_count_votes(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.sqlite")
    tass = dataclasses.replace(CITED, doc="004_tass.txt", outlet="TASS")
    log.record(ANSWERED, "bad", chat_id=1, note="wrong person")
    log.record(
        dataclasses.replace(ANSWERED, id="c" * 32, citations=(tass, CITED)), "good", chat_id=2
    )
    log.record(DECLINED, "bad", chat_id=1)
    stats = log.stats(recent=1)
    assert (stats.votes, stats.good, stats.bad, stats.chats) == (3, 1, 2, 2)
    assert stats.by_verdict == {
        "answered": {"good": 1, "bad": 1},
        "declined": {"good": 0, "bad": 1},
    }
    assert stats.by_outlet == {
        "outlet unknown": {"good": 1, "bad": 1},
        "TASS": {"good": 1, "bad": 0},
    }
    assert stats.by_document["003_un.txt"] == {"good": 1, "bad": 1}
    assert stats.by_generation == {"gen-000007": {"good": 1, "bad": 2}}
    [latest] = stats.recent_complaints
    assert latest["question"] == DECLINED.question and latest["first_quote"] is None


# --- :good and :bad in qa-bot chat ------------------------------------------------------------


def test_chat_good_and_bad_rate_the_latest_answer(
    tmp_path: Path, corpus: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    service = QAService(make_settings(tmp_path, corpus), embedder=CountingEmbedder())
    service.index()
    session = ChatSession(service, Conversation())
    session.handle(":good")
    assert NOTHING_TO_RATE in capsys.readouterr().err
    session.handle("Where did the cocoa harvest outlook improve?")
    assert "Rain in the cocoa zone" in capsys.readouterr().out
    session.handle(":bad")
    assert "Thanks: noted as wrong. :bad and a note say what is right." in capsys.readouterr().err
    session.handle(':bad it should say "the cocoa zone"')
    assert "Changed to wrong, thanks." in capsys.readouterr().err
    session.handle(":bad")
    assert "Already noted as wrong" in capsys.readouterr().err
    session.handle("What is the capital of Mongolia?")
    session.handle(":GOOD")
    assert "Thanks: noted as good." in capsys.readouterr().err
    first, second = service.feedback.votes()
    assert (first.vote, first.note, first.front) == (
        "bad",
        'it should say "the cocoa zone"',
        "chat",
    )
    assert first.rated.answered and "cocoa zone" in first.rated.citations[0].quote
    assert first.rated.generation == service.snapshot().generation
    assert first.chat is None
    assert (second.vote, second.rated.answered) == ("good", False)
    assert service.feedback.path == tmp_path / "index" / "feedback.sqlite"


# --- qa-bot feedback ---------------------------------------------------------------------------


def _cli(tmp_path: Path, *args: str) -> object:
    return runner.invoke(app, ["--index", str(tmp_path / "index"), *args], catch_exceptions=False)


def test_feedback_commands_on_an_empty_store(tmp_path: Path) -> None:
    result = _cli(tmp_path, "feedback", "export", str(tmp_path / "out.jsonl"))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "no complaints (👎) to export in" in result.output  # type: ignore[attr-defined]
    assert not (tmp_path / "out.jsonl").exists()
    result = _cli(tmp_path, "feedback", "stats")
    assert result.exit_code == 0  # type: ignore[attr-defined]
    assert "no feedback yet" in result.output  # type: ignore[attr-defined]
    result = _cli(tmp_path, "feedback", "stats", "--json")
    assert json.loads(result.stdout)["votes"] == 0  # type: ignore[attr-defined]


def test_feedback_export_and_stats_from_the_command_line(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "index" / "feedback.sqlite")
    log.record(ANSWERED, "bad", chat_id=3, note="wrong person")
    log.record(DECLINED, "good", chat_id=3)
    blocked = tmp_path / "a-file"
    blocked.write_text("x")
    result = _cli(tmp_path, "feedback", "export", str(blocked / "out.jsonl"))
    assert result.exit_code == 2  # type: ignore[attr-defined]
    assert "cannot write" in result.output and "Traceback" not in result.output  # type: ignore[attr-defined]
    result = _cli(tmp_path, "feedback", "export", "--since", "someday", str(tmp_path / "o.jsonl"))
    assert result.exit_code == 2 and "--since" in result.output  # type: ignore[attr-defined]
    out = tmp_path / "out.jsonl"
    result = _cli(tmp_path, "feedback", "export", "--all", str(out))
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    assert "wrote 2 questions" in result.output  # type: ignore[attr-defined]
    assert len(load_questions(out)) == 2
    result = _cli(tmp_path, "feedback", "stats")
    text = result.output  # type: ignore[attr-defined]
    assert "2 votes: 1 👍, 1 👎 (from 1 chats in Telegram)" in text
    assert "wrong person" in text and ANSWERED.question in text
