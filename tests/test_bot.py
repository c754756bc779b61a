"""End to end: the real bot (python-telegram-bot ``Application``, long polling) against the
Bot API fake on 127.0.0.1, answering from the real model over a tiny corpus.

These are the few scenarios that need real answers (follow-ups, passages, a rebuilt index,
the ``qa-bot bot`` process); buttons, commands, limits and failures are tested against a stub
service in ``tests/test_bot_stub.py``. The model and the corpus's index are built once per
session; each test starts its own fake and bot (about a second).
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from qa_bot.dialogue.asking import context_note
from qa_bot.dialogue.cues import follow_up_cue
from qa_bot.service import QAService
from qa_bot.settings import Settings, load_settings
from qa_bot.telegram.render import RESET_DONE, RESET_NOTHING
from tests.bot_helpers import ask, buttons, entity_text, note, run, running, user_and_chat
from tests.botapi_fake import BotAPIFake, parse_html
from tests.conftest import SEEDS, build_once, shared_folder, write_article
from tests.stub_service import DAM_PARAGRAPH

pytestmark = pytest.mark.model

AMBASSADOR = "Who is Russia's ambassador to the UN?"
CEASEFIRE = "On what basis did Lavrov say the revival of the ceasefire is possible?"

#: A dialogue of ``tests/dialogues.jsonl`` (c38) whose article is in ``bot_service``.
COUNCIL = "What did the US call Russia's action in Syria at the Security Council?"
MEETING = "Who asked for that meeting?"
REQUESTERS = "the United States, Britain and France"
ACCUSES = "Russia accuses the US of supporting terror groups in Syria"
#: c37, in the other article.
AIR_FORCE = "Why could the Syrian Air Force not have hit the convoy?"


@pytest.fixture(scope="session")
def bot_service(tmp_path_factory: pytest.TempPathFactory, model_embedder: Any) -> QAService:
    """Three articles: RT with a stated date, one with neither outlet nor date, and one whose
    single paragraph is longer than a Telegram message. Indexed once for the run."""

    def settings(root: Path) -> Settings:
        return load_settings(seeds_dir=root / "seeds", index_dir=root / "embeddings", root_dir=root)

    def build(root: Path) -> None:
        seeds = root / "seeds"
        seeds.mkdir()
        for name in ("000_cb0a8d303033b8e8.txt", "003_1b155dc13c4e1f4e.txt"):
            shutil.copy(SEEDS / name, seeds / name)
        write_article(
            seeds, "dam.txt", "Kessel dam inquiry finds design flaws", DAM_PARAGRAPH, "2016-10-02"
        )
        QAService(settings(root), embedder=model_embedder).index()

    root = build_once(shared_folder(tmp_path_factory, "bot-project"), build)
    return QAService(settings(root), embedder=model_embedder)


def test_start_says_what_the_bot_knows(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(
            bot_service, example_questions=[AMBASSADOR, CEASEFIRE, "not shown"]
        ) as fake:
            user, chat = user_and_chat(1)
            fake.send(chat, user, "/start")
            [welcome] = await fake.replies(chat["id"])
            text = welcome["text"]
            assert "3 news articles" in text
            assert "24 Sep 2016 to 2 Oct 2016" in text
            assert AMBASSADOR in text and CEASEFIRE in text and "not shown" not in text
            assert {c["command"] for c in fake.commands} >= {"ask", "sources", "help", "status"}

            for command, expected in [
                ("/help", "/outlet"),
                ("/sources", "Kessel dam inquiry finds design flaws"),
                ("/status", "Up to date"),
                ("/about", "Articles: 3"),
            ]:
                mark = fake.mark()
                fake.send(chat, user, command)
                [reply] = await fake.replies(chat["id"], after=mark)
                assert expected in reply["text"], (command, reply["text"])
            mark = fake.mark()
            fake.send(chat, user, "/sources")
            [listing] = await fake.replies(chat["id"], after=mark)
            assert "RT, 24 Sep, 2016 01:53" in listing["text"]
            assert "outlet unknown, date not stated" in listing["text"]

    run(scenario())


def test_start_builds_examples_from_titles(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(2)
            fake.send(chat, user, "/start")
            [welcome] = await fake.replies(chat["id"])
            examples = [line[2:] for line in welcome["text"].splitlines() if line.startswith("• ")]
        assert len(examples) == 2
        for question in examples:  # the suggestions must actually work
            assert bot_service.ask(question).answered, question

    run(scenario())


def test_question_gets_quoted_dated_sources(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(3)
            mark = fake.mark()
            fake.send(chat, user, AMBASSADOR)
            [answer] = await fake.replies(chat["id"], after=mark)
            quotes = entity_text(answer, "blockquote")
            assert quotes and "Vitaly Churkin" in quotes[0] and quotes[0].startswith("[1] ")
            assert "Russia accuses the US of supporting terror groups in Syria" in entity_text(
                answer, "bold"
            )
            assert (
                "[1] Russia accuses the US of supporting terror groups in Syria — "
                "outlet unknown, date not stated" in answer["text"]
            )
            assert set(buttons(answer)) == {"Passage 1", "More", "👍", "👎"}
            assert "reply_to_message" not in answer  # private chat: no quoting needed
            typing = fake.calls_of("sendChatAction", after=mark)
            assert typing and typing[0].params["action"] == "typing"
            assert typing[0].at < fake.calls_of("sendMessage", after=mark)[0].at

            mark = fake.mark()
            fake.send(chat, user, CEASEFIRE)
            [answer] = await fake.replies(chat["id"], after=mark)
            assert "collective basis" in answer["text"]
            assert "— RT, 24 Sep, 2016 01:53" in answer["text"]  # the date as the article has it

    run(scenario())


def test_passage_button_shows_the_text_around_the_quote(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(6)
            fake.send(chat, user, AMBASSADOR)
            [answer] = await fake.replies(chat["id"])
            mark = fake.mark()
            query = fake.press(answer, buttons(answer)["Passage 1"], user)
            [passage] = await fake.replies(chat["id"], after=mark)
            assert fake.answered(query)
            assert passage["text"].startswith("Passage [1]")
            assert passage["reply_to_message"]["message_id"] == answer["message_id"]
            [bold_quote] = [b for b in entity_text(passage, "bold") if "Churkin" in b]
            # The quote may span paragraphs, which the answer shows run together.
            assert " ".join(bold_quote.split()) in entity_text(answer, "blockquote")[0]
            [context] = entity_text(passage, "blockquote")
            assert len(context) > len(bold_quote) and bold_quote in context
            assert passage["text"].rstrip().endswith("outlet unknown, date not stated")

    run(scenario())


def test_follow_up_builds_on_the_previous_question_until_reset(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(110)
            assert (await ask(fake, chat, user, "/reset"))["text"] == RESET_NOTHING
            first = await ask(fake, chat, user, COUNCIL)
            assert "barbarism" in first["text"] and note(first) is None

            answer = await ask(fake, chat, user, MEETING)
            assert note(answer) == context_note(COUNCIL)
            assert REQUESTERS in entity_text(answer, "blockquote")[0]
            assert f"[1] {ACCUSES}" in answer["text"]
            # "More" searches the topic too, not "Who asked for that meeting?" alone.
            mark = fake.mark()
            fake.press(answer, buttons(answer)["More"], user)
            [more] = await fake.replies(chat["id"], after=mark)
            assert more["text"].startswith("Further passages")

            assert (await ask(fake, chat, user, "/reset"))["text"] == RESET_DONE
            alone = await ask(fake, chat, user, MEETING)
            assert note(alone) is None
            # After a reset the question is read as a newcomer's would be, whatever it finds.
            stranger, their_chat = user_and_chat(112)
            assert alone["text"] == (await ask(fake, their_chat, stranger, MEETING))["text"]
            assert alone["text"] != answer["text"]
            assert "reset" in {c["command"] for c in fake.commands}

    run(scenario())


def test_a_reply_to_the_bots_answer_is_a_follow_up(bot_service: QAService) -> None:
    requesters = "Which countries requested the Security Council meeting?"
    assert follow_up_cue(requesters) is None  # nothing but the reply makes it a follow-up

    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(111)
            first = await ask(fake, chat, user, COUNCIL)
            replied = await ask(fake, chat, user, requesters, reply_to=first)
            assert note(replied) == context_note(COUNCIL, replied=True)
            assert note(await ask(fake, chat, user, requesters)) is None

    run(scenario())


def test_a_reply_builds_on_the_answer_it_replies_to(bot_service: QAService) -> None:
    """Not on the chat's latest question: on the one behind the answer replied to, however
    long ago, and in a group whoever asked it."""
    requesters = "Which countries requested the Security Council meeting?"

    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(114)
            council = await ask(fake, chat, user, COUNCIL)
            await ask(fake, chat, user, AIR_FORCE)
            replied = await ask(fake, chat, user, requesters, reply_to=council)
            assert note(replied) == context_note(COUNCIL, replied=True)
            assert REQUESTERS in entity_text(replied, "blockquote")[0]

            group = BotAPIFake.group(-100601, "Desk")
            ann, bob = BotAPIFake.user(115, "Ann"), BotAPIFake.user(116, "Bob")
            to_ann = await ask(fake, group, ann, f"/ask {COUNCIL}")
            await ask(fake, group, bob, f"/ask {AIR_FORCE}")
            bobs = await ask(fake, group, bob, requesters, reply_to=to_ann)
            assert note(bobs) == context_note(COUNCIL, replied=True)
            assert note(bobs) == f"Taking the question you replied to into account: “{COUNCIL}”."
            # Bob's reply is now Bob's topic; Ann's own topic is untouched.
            assert note(await ask(fake, group, bob, f"/ask {MEETING}")) == context_note(COUNCIL)
            assert note(await ask(fake, group, ann, f"/ask {MEETING}")) == context_note(COUNCIL)

    run(scenario())


def _cli(*args: str, env: dict[str, str]) -> Any:
    from qa_bot.cli import app

    return CliRunner().invoke(app, list(args), env=env)


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({}, "no bot token: set QA_BOT_TELEGRAM__TOKEN"),
        (
            {"QA_BOT_TELEGRAM__TOKEN": "1:abc", "QA_BOT_TELEGRAM__MODE": "webhook"},
            "webhook mode needs the public URL",
        ),
    ],
)
def test_cli_setup_errors_are_one_line(tmp_path: Path, env: dict[str, str], message: str) -> None:
    clean = {k: "" for k in os.environ if k.startswith("QA_BOT_TELEGRAM__")}
    result = _cli("--index", str(tmp_path / "none"), "bot", env={**clean, **env})
    assert result.exit_code == 2
    output = result.output.strip()
    assert output.startswith("error:") and message in output and "\n" not in output
    assert result.exception is None or isinstance(result.exception, SystemExit)


def test_cli_bot_runs_against_the_fake(bot_service: QAService) -> None:
    """`qa-bot bot` in a subprocess: settings from the environment, the token never logged,
    a clean stop on SIGINT."""
    settings = bot_service.settings

    async def scenario(fake: BotAPIFake, process: subprocess.Popen[str]) -> None:
        deadline = time.monotonic() + 120
        while not fake.calls_of("deleteWebhook"):  # polling has started
            assert process.poll() is None, "the bot exited"
            assert time.monotonic() < deadline, "the bot did not start"
            await asyncio.sleep(0.1)
        user, chat = user_and_chat(100)
        fake.send(chat, user, AMBASSADOR)
        [answer] = await fake.replies(chat["id"])
        assert "Vitaly Churkin" in answer["text"]

    with BotAPIFake() as fake:
        env = {
            **os.environ,
            "QA_BOT_TELEGRAM__TOKEN": fake.token,
            "QA_BOT_TELEGRAM__BASE_URL": fake.base_url,
            "QA_BOT_ROOT_DIR": str(settings.root_dir),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-c",
                "from qa_bot.cli import main; main()",
                "--seeds",
                str(settings.seeds_dir),
                "--index",
                str(settings.index_dir),
                "bot",
                "--verbose",  # debug logging: the token must not leak there either
            ],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
        )
        try:
            run(scenario(fake, process), timeout=150)
        finally:
            process.send_signal(signal.SIGINT)
            _, log = process.communicate(timeout=30)
    assert process.returncode == 0, log
    assert fake.token not in log and fake.token.split(":")[1] not in log
    assert "index is up to date" in log and "connected to the Bot API" in log
    assert "stopped" in log


def test_rendered_answers_pass_the_fakes_html_rules(bot_service: QAService) -> None:
    """The fake's parser is the one the property tests use; sanity-check it on a real answer."""
    from qa_bot.telegram.render import render_answer

    [html] = render_answer(bot_service.ask(AMBASSADOR))
    text, entities = parse_html(html)
    assert "Vitaly Churkin" in text and {e["type"] for e in entities} >= {"blockquote", "bold"}


def test_a_long_passage_is_one_message_trimmed_around_its_quote(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(7)
            fake.send(chat, user, "By how much was the Kessel dam spillway undersized?")
            [answer] = await fake.replies(chat["id"])
            assert "forty percent" in answer["text"]
            mark = fake.mark()
            fake.press(answer, buttons(answer)["Passage 1"], user)
            [passage] = await fake.replies(chat["id"], after=mark, settle=0.3)
            [context] = entity_text(passage, "blockquote")
            assert "…" in context and len(context) > 3000  # trimmed, yet most of it shown
            assert "forty percent" in "".join(entity_text(passage, "bold"))
            assert passage["text"].rstrip().endswith("2016-10-02")

    run(scenario())
