"""Readers' feedback end to end: 👍 / 👎 and ``/bad note`` in the real bot (long polling against
the Bot API fake on 127.0.0.1, answering from the stub service, votes in the real log), then
``qa-bot feedback export`` and ``qa-bot eval`` on the exported file (the counting embedder
instead of the model)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from typer.testing import CliRunner

from qa_bot.cli import app
from qa_bot.feedback import FeedbackLog
from qa_bot.telegram.render import NOTHING_HERE
from tests.bot_helpers import ask, buttons, run, running
from tests.botapi_fake import BotAPIFake
from tests.conftest import write_article
from tests.stub_service import TEXTS, UN, StubService

AMBASSADOR = "Who is Russia's ambassador to the UN?"
UNANSWERABLE = "How many Syrian troops died in the strike?"
CHURKIN = "Russian Ambassador to the UN Vitaly Churkin said peace is almost impossible now."

runner = CliRunner()


async def _press(fake: BotAPIFake, message: dict[str, Any], label: str, user: Any) -> str:
    """Press a button and return the text the bot answered the press with."""
    mark = fake.mark()
    query = fake.press(message, buttons(message)[label], user)
    call = await fake.wait_for(
        lambda c: c.method == "answerCallbackQuery" and c.params["callback_query_id"] == query,
        after=mark,
    )
    assert call.ok
    return str(call.params.get("text"))


def _vote_in_telegram(log: FeedbackLog) -> None:
    async def scenario() -> None:
        async with running(StubService(feedback=log)) as fake:
            user = BotAPIFake.user(987654321, "Wilhelmina", username="wilhelmina_reads")
            chat = BotAPIFake.private_chat(user)
            answer = await ask(fake, chat, user, AMBASSADOR)
            assert {"Passage 1", "More", "👍", "👎"} <= set(buttons(answer))
            said = await _press(fake, answer, "👎", user)
            assert said == "Thanks: noted as wrong. /bad and a note say what is right."
            assert await _press(fake, answer, "👎", user) == "Already noted as wrong, thanks."
            assert await _press(fake, answer, "👍", user) == "Changed to good, thanks."
            said = await _press(fake, answer, "👎", user)
            assert said == "Changed to wrong, thanks. /bad and a note say what is right."

            declined = await ask(fake, chat, user, UNANSWERABLE)
            assert set(buttons(declined)) == {"👍", "👎"}
            said = await _press(fake, declined, "👎", user)
            assert said.startswith("Thanks: noted as wrong.")
            note = '/bad it says "62 troops" were killed'
            reply = await ask(fake, chat, user, note, reply_to=declined)
            assert reply["text"] == "Changed to wrong, thanks."  # the note was added

            group = BotAPIFake.group(-100123)
            reply = await ask(fake, group, user, "/good")
            assert reply["text"] == NOTHING_HERE.replace("`", "")

    run(scenario())


def test_a_thumbs_down_in_telegram_becomes_a_scored_question(
    tmp_path: Path, fake_model: None
) -> None:
    index = tmp_path / "index"
    log = FeedbackLog(index / "feedback.sqlite")
    _vote_in_telegram(log)

    stored = log.path.read_bytes()
    for secret in (b"Wilhelmina", b"wilhelmina_reads", b"987654321"):
        assert secret not in stored  # no name, and the chat only as a salted hash
    answered, declined = log.votes()
    assert (answered.vote, answered.rated.question, answered.front) == (
        "bad",
        AMBASSADOR,
        "telegram",
    )
    assert answered.rated.citations[0].quote == CHURKIN
    assert answered.rated.generation == "gen-000001"
    assert (declined.vote, declined.note, declined.rated.answered) == (
        "bad",
        'it says "62 troops" were killed',
        False,
    )
    assert answered.chat == declined.chat == log.chat_hash(987654321)

    out = tmp_path / "complaints.jsonl"
    result = runner.invoke(app, ["--index", str(index), "feedback", "export", str(out)])
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [line["question"] for line in lines] == [AMBASSADOR, UNANSWERABLE]
    assert lines[0]["rejected"] == [CHURKIN] and lines[1]["answers"] == ["62 troops"]

    # The same article in a real index: the complaint still stands, and eval says so.
    seeds = tmp_path / "seeds"
    write_article(seeds, UN.path, UN.title, TEXTS["un"])
    opts = ["--seeds", str(seeds), "--index", str(index)]
    result = runner.invoke(app, [*opts, "eval", "--json", str(out)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["questions"], report["complaints"]) == (2, 2)
    assert report["complaints_resolved"] == 0.0
    assert report["by_class"]["feedback"]["questions"] == 2
    failures = {row["question"]: row["failure"] for row in report["failures"]}
    assert failures[UNANSWERABLE] == "declined an answerable question"
    assert failures[AMBASSADOR] in (
        "first quote is the one a reader rejected",
        "declined an answerable question",
    )
    result = runner.invoke(app, [*opts, "eval", str(out)], catch_exceptions=False)
    assert "readers' complaints no longer failing (2)" in result.output
    assert "feedback" in result.output


def test_in_a_group_bad_rates_the_answer_replied_to(tmp_path: Path) -> None:
    log = FeedbackLog(tmp_path / "feedback.sqlite")

    async def scenario() -> None:
        async with running(StubService(feedback=log)) as fake:
            asker = BotAPIFake.user(11, "Asker")
            critic = BotAPIFake.user(12, "Critic")
            group = BotAPIFake.group(-100555)
            answer = await ask(fake, group, asker, f"/ask {AMBASSADOR}")
            await ask(fake, group, asker, "/ask On what basis is the ceasefire possible?")
            reply = await ask(fake, group, critic, "/bad not him", reply_to=answer)
            assert reply["text"] == "Thanks: noted as wrong."
            reply = await ask(fake, group, critic, "/good")  # the critic asked nothing
            assert "no answer to rate yet" in reply["text"]

    run(scenario())
    [vote] = log.votes()
    assert (vote.rated.question, vote.note) == (AMBASSADOR, "not him")
    assert vote.chat == log.chat_hash(-100555)


def test_chat_data_saved_before_feedback_still_loads() -> None:
    import pickle
    from collections import OrderedDict

    from qa_bot.telegram.state import ChatData

    old = ChatData()
    del old.__dict__["rated"]  # as pickled by a version without feedback
    loaded = pickle.loads(pickle.dumps(old))
    assert loaded.rated == OrderedDict() and loaded.rated_for(None, 0) is None
