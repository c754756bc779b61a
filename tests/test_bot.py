"""End to end: the real bot (python-telegram-bot ``Application``, long polling) against the
Bot API fake on 127.0.0.1, answering from the real model over a tiny corpus.

Each test starts its own fake and bot (about a second); the model and the corpus's index are
built once per session.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Coroutine
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr
from typer.testing import CliRunner

from qa_bot.conversation import context_note, follow_up_cue
from qa_bot.errors import IndexMissingError
from qa_bot.models import Answer
from qa_bot.service import QAService
from qa_bot.settings import ConversationSettings, TelegramSettings, load_settings
from qa_bot.telegram_bot import (
    EXPIRED,
    REFUSAL,
    RESET_DONE,
    RESET_NOTHING,
    SORRY,
    build_application,
    serving,
)
from tests.botapi_fake import BotAPIFake, parse_html
from tests.conftest import SEEDS, write_article

pytestmark = pytest.mark.model

AMBASSADOR = "Who is Russia's ambassador to the UN?"
CEASEFIRE = "On what basis did Lavrov say the revival of the ceasefire is possible?"
UNANSWERABLE = "What is the capital of France?"
SPILLWAY = "By how much was the Kessel dam spillway undersized?"

#: One paragraph of about 6,000 characters: its passage cannot fit one message.
_DAM_SENTENCES = [
    "The inquiry found that the Kessel dam spillway was undersized by forty percent.",
    "Engineers had warned the regional water board about the spillway as early as 2009.",
    "Minutes of the board's meetings show the warnings were noted but never costed.",
    "The contractor said it had built the dam exactly to the approved drawings.",
    "Residents downstream described water reaching the first floor within an hour.",
    "The report recommends rebuilding the spillway before the next flood season.",
]
DAM_PARAGRAPH = " ".join(
    f"{sentence} (Section {i + 1}.)" if i % 6 else sentence
    for i, sentence in enumerate(_DAM_SENTENCES * 13)
)


def run(coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@pytest.fixture(scope="session")
def bot_service(tmp_path_factory: pytest.TempPathFactory, real_embedder: Any) -> QAService:
    """Three articles: RT with a stated date, one with neither outlet nor date, and one whose
    single paragraph is longer than a Telegram message."""
    root = tmp_path_factory.mktemp("bot-project")
    seeds = root / "seeds"
    seeds.mkdir()
    for name in ("000_cb0a8d303033b8e8.txt", "003_1b155dc13c4e1f4e.txt"):
        shutil.copy(SEEDS / name, seeds / name)
    write_article(
        seeds, "dam.txt", "Kessel dam inquiry finds design flaws", DAM_PARAGRAPH, "2016-10-02"
    )
    settings = load_settings(seeds_dir=seeds, index_dir=root / "embeddings", root_dir=root)
    service = QAService(settings, embedder=real_embedder)
    service.index()
    return service


@contextlib.asynccontextmanager
async def running(service: Any, **settings: Any) -> AsyncIterator[BotAPIFake]:
    """A fresh Bot API fake and the bot polling it."""
    with BotAPIFake() as fake:
        telegram = TelegramSettings(token=SecretStr(fake.token), base_url=fake.base_url, **settings)
        async with serving(build_application(service, telegram), poll_timeout=1):
            yield fake


def buttons(message: dict[str, Any]) -> dict[str, str]:
    """Button text -> callback data under a message."""
    rows = message.get("reply_markup", {}).get("inline_keyboard", [])
    return {b["text"]: b["callback_data"] for row in rows for b in row}


def entity_text(message: dict[str, Any], kind: str) -> list[str]:
    """The text covered by each entity of ``kind`` (offsets are UTF-16)."""
    data = message["text"].encode("utf-16-le")
    return [
        data[2 * e["offset"] : 2 * (e["offset"] + e["length"])].decode("utf-16-le")
        for e in message.get("entities", [])
        if e["type"] == kind
    ]


def user_and_chat(user_id: int) -> tuple[dict[str, Any], dict[str, Any]]:
    user = BotAPIFake.user(user_id, f"User{user_id}")
    return user, BotAPIFake.private_chat(user)


# --- conversation ----------------------------------------------------------------------------


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
            assert set(buttons(answer)) == {"Passage 1", "More"}
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


def test_unanswerable_question_is_declined_plainly(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(4)
            fake.send(chat, user, UNANSWERABLE)
            [reply] = await fake.replies(chat["id"])
            assert reply["text"].startswith("The articles don't cover this.")
            assert "blockquote" not in {e["type"] for e in reply.get("entities", [])}
            assert "reply_markup" not in reply

    run(scenario())


class LongAnswers:
    """The real service, except that ``ask`` returns a very long answer full of markup-like
    text (to prove splitting and escaping through the real API rules)."""

    def __init__(self, service: QAService):
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    def ask(self, question: str, **kwargs: Any) -> Answer:
        real = self._service.ask(AMBASSADOR)
        base = real.citations[0]
        quote = "A <b>claim</b> & “a quote” 🚀 with <i>tags</i> that must stay text. " * 30
        citations = tuple(
            dataclasses.replace(base, n=n, quote=f"{quote} (quote {n})") for n in range(1, 5)
        )
        return dataclasses.replace(real, citations=citations, notes=("A note & <b>more</b>",))


def test_long_answer_is_split_at_boundaries(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(LongAnswers(bot_service)) as fake:
            user, chat = user_and_chat(5)
            fake.send(chat, user, "anything")
            messages = await fake.replies(chat["id"], count=2, settle=0.3)
            failed = [c for c in fake.calls if not c.ok]
            assert not failed, failed
            assert len(messages) >= 2
            for message in messages:
                assert len(message["text"].encode("utf-16-le")) // 2 <= 4096
            text = "\n".join(m["text"] for m in messages)
            assert "<b>claim</b> & “a quote” 🚀" in text  # escaped, so shown as text
            assert text.index("A note & <b>more</b>") < text.index("(quote 1)")  # notes first
            for n in range(1, 5):
                assert f"(quote {n})" in text
            assert text.index("(quote 1)") < text.index("(quote 4)") < text.index("Sources")
            # Only the last message carries the buttons.
            assert [bool(buttons(m)) for m in messages] == [False] * (len(messages) - 1) + [True]
            # Cut at sentence boundaries: every message but the last ends a sentence or a block.
            for message in messages[:-1]:
                assert message["text"].rstrip()[-1] in ".)]", message["text"][-40:]

    run(scenario())


# --- buttons ---------------------------------------------------------------------------------


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


def test_long_passage_is_split(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(7)
            fake.send(chat, user, SPILLWAY)
            [answer] = await fake.replies(chat["id"])
            assert "forty percent" in answer["text"]
            assert "— outlet unknown, 2016-10-02" in answer["text"]
            mark = fake.mark()
            fake.press(answer, buttons(answer)["Passage 1"], user)
            parts = await fake.replies(chat["id"], after=mark, count=2, settle=0.3)
            assert len(parts) == 2
            assert all(entity_text(p, "blockquote") for p in parts)
            # Nothing lost at the cut: the two quoted halves are the paragraph.
            halves = [entity_text(p, "blockquote")[0] for p in parts]
            assert " ".join(halves) == DAM_PARAGRAPH
            assert parts[1]["text"].rstrip().endswith("2016-10-02")

    run(scenario())


def test_more_button_shows_further_passages_once(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(8)
            fake.send(chat, user, SPILLWAY)
            [answer] = await fake.replies(chat["id"])
            shown = len(buttons(answer)) - 1
            mark = fake.mark()
            query = fake.press(answer, buttons(answer)["More"], user)
            [more] = await fake.replies(chat["id"], after=mark)
            assert fake.answered(query)
            assert more["text"].startswith("Further passages")
            assert f"[{shown + 1}]" in more["text"]
            assert f"Passage {shown + 1}" in buttons(more)
            # The answer keeps its Passage buttons, without More.
            edited = fake.message(chat["id"], answer["message_id"])
            assert set(buttons(edited)) == set(buttons(answer)) - {"More"}
            for quote in entity_text(more, "blockquote"):
                assert quote[quote.index("] ") + 2 :] not in answer["text"]

    run(scenario())


# --- groups ----------------------------------------------------------------------------------


def test_group_answers_only_when_addressed(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            group = BotAPIFake.group(-100500, "Newsroom")
            ann, bob = BotAPIFake.user(10, "Ann"), BotAPIFake.user(11, "Bob")
            fake.send(group, ann, AMBASSADOR)  # chatter, however on-topic
            fake.send(group, bob, "/ask@some_other_bot " + AMBASSADOR)
            asked = fake.send(group, bob, f"@qa_test_bot {AMBASSADOR}")
            [answer] = await fake.replies(group["id"], settle=0.5)
            assert answer["reply_to_message"]["message_id"] == asked["message_id"]
            assert "Vitaly Churkin" in answer["text"]
            # Typing was shown to the group only for the addressed question.
            assert len(fake.calls_of("sendChatAction")) == 1

            mark = fake.mark()
            follow = fake.send(group, ann, UNANSWERABLE, reply_to=answer)
            [reply] = await fake.replies(group["id"], after=mark)
            assert reply["reply_to_message"]["message_id"] == follow["message_id"]
            # A reply to Bob's answer builds on Bob's question, and says so.
            assert reply["text"].startswith(
                f"Taking the question you replied to into account: “{AMBASSADOR}”."
            )
            assert "The articles don't cover this." in reply["text"]

            mark = fake.mark()
            command = fake.send(group, ann, f"/ask {CEASEFIRE}")
            [reply] = await fake.replies(group["id"], after=mark)
            assert reply["reply_to_message"]["message_id"] == command["message_id"]
            assert "collective basis" in reply["text"]

            mark = fake.mark()
            question = fake.send(group, bob, AMBASSADOR)
            fake.send(group, ann, "/ask", reply_to=question)  # ask someone else's question
            [reply] = await fake.replies(group["id"], after=mark)
            assert "Vitaly Churkin" in reply["text"]

            mark = fake.mark()
            fake.send(group, ann, "thanks, @qa_test_bot_fan is a different account")
            fake.send(group, bob, "Nice!", reply_to=question)  # a reply, but not to the bot
            await asyncio.sleep(0.5)
            assert fake.sent(group["id"], after=mark) == []

    run(scenario())


# --- follow-ups --------------------------------------------------------------------------------

#: A dialogue of ``tests/dialogues.jsonl`` (c38) whose article is in ``bot_service``.
COUNCIL = "What did the US call Russia's action in Syria at the Security Council?"
MEETING = "Who asked for that meeting?"
REQUESTERS = "the United States, Britain and France"
ACCUSES = "Russia accuses the US of supporting terror groups in Syria"
#: c37, in the other article.
AIR_FORCE = "Why could the Syrian Air Force not have hit the convoy?"
WHO_SAID = "Who said so?"


def note(message: dict[str, Any]) -> str | None:
    """The "Taking your previous question (or the question you replied to) into account" line
    of an answer, if any."""
    found = [
        t
        for t in entity_text(message, "italic")
        if t.startswith(("Taking your previous", "Taking the question you replied to"))
    ]
    assert len(found) <= 1
    if found and "[1]" in message["text"]:  # shown above the quotes
        assert message["text"].index(found[0]) < message["text"].index("[1]")
    return found[0] if found else None


class Delegating:
    """The real service behind a wrapper that changes one thing."""

    def __init__(self, service: QAService):
        self._service = service

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)


async def ask(
    fake: BotAPIFake, chat: dict[str, Any], user: dict[str, Any], text: str, **fields: Any
) -> dict[str, Any]:
    """Send a message and wait for the one reply to it."""
    mark = fake.mark()
    fake.send(chat, user, text, **fields)
    [reply] = await fake.replies(chat["id"], after=mark)
    return reply


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
            assert alone["text"].startswith("The articles don't cover this.")
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


def test_in_a_group_everyone_has_their_own_topic(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            group = BotAPIFake.group(-100600, "Desk")
            ann, bob = BotAPIFake.user(112, "Ann"), BotAPIFake.user(113, "Bob")
            await ask(fake, group, ann, f"/ask {COUNCIL}")
            await ask(fake, group, bob, f"/ask {AIR_FORCE}")

            answer = await ask(fake, group, ann, f"/ask {MEETING}")
            assert note(answer) == context_note(COUNCIL)
            assert REQUESTERS in entity_text(answer, "blockquote")[0]
            answer = await ask(fake, group, bob, f"@qa_test_bot {WHO_SAID}")
            assert note(answer) == context_note(AIR_FORCE)
            assert "Lavrov stated" in entity_text(answer, "blockquote")[0]

            # Bob's /reset forgets Bob's topic only.
            assert (await ask(fake, group, bob, "/reset"))["text"] == RESET_DONE
            assert note(await ask(fake, group, bob, f"/ask {WHO_SAID}")) is None
            assert note(await ask(fake, group, ann, f"/ask {MEETING}")) == context_note(COUNCIL)

    run(scenario())


def test_a_self_contained_question_is_not_polluted(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(114)
            other, fresh = user_and_chat(115)
            await ask(fake, chat, user, COUNCIL)
            second = await ask(fake, chat, user, AMBASSADOR)
            alone = await ask(fake, fresh, other, AMBASSADOR)
            assert note(second) is None
            assert second["text"] == alone["text"]
            assert second["entities"] == alone["entities"]

    run(scenario())


def test_questions_of_one_chat_are_answered_in_order(bot_service: QAService) -> None:
    class SlowFirst(Delegating):
        def ask(self, question: str, **kwargs: Any) -> Answer:
            if question == COUNCIL:
                time.sleep(1)
            return self._service.ask(question, **kwargs)

    async def scenario() -> None:
        async with running(SlowFirst(bot_service)) as fake:
            user, chat = user_and_chat(116)
            fake.send(chat, user, COUNCIL)
            fake.send(chat, user, MEETING)  # at once: the first is still being answered
            first, second = await fake.replies(chat["id"], count=2)
            assert "barbarism" in first["text"]
            assert note(second) == context_note(COUNCIL)  # the second saw the first turn
            assert len(fake.sent(chat["id"])) == 2

    run(scenario())


def test_context_is_forgotten_after_its_ttl(bot_service: QAService) -> None:
    class ShortMemory(Delegating):
        settings = bot_service.settings.model_copy(
            update={"conversation": ConversationSettings(ttl_seconds=1)}
        )

    async def scenario() -> None:
        async with running(ShortMemory(bot_service)) as fake:
            user, chat = user_and_chat(117)
            assert (
                "after 1 second, or at once with /reset"
                in (await ask(fake, chat, user, "/help"))["text"]
            )
            await ask(fake, chat, user, COUNCIL)
            await asyncio.sleep(1.0)
            late = await ask(fake, chat, user, MEETING)
            assert note(late) is None
            assert late["text"].startswith("The articles don't cover this.")

    run(scenario())


# --- safety ----------------------------------------------------------------------------------


def test_allowlist_refuses_others_politely(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service, allowed_user_ids=[20], allowed_chat_ids=[-100777]) as fake:
            friend, friend_chat = user_and_chat(20)
            stranger, stranger_chat = user_and_chat(21)
            team = BotAPIFake.group(-100777, "Team")
            other_group = BotAPIFake.group(-100888, "Elsewhere")

            fake.send(friend_chat, friend, AMBASSADOR)
            [answer] = await fake.replies(friend_chat["id"])
            assert "Vitaly Churkin" in answer["text"]

            for text in (AMBASSADOR, "/start", "/sources"):
                mark = fake.mark()
                fake.send(stranger_chat, stranger, text)
                [refusal] = await fake.replies(stranger_chat["id"], after=mark)
                assert refusal["text"] == REFUSAL

            # Strangers in an allowed group may ask; in another group, chatter stays unanswered
            # and addressed messages are refused.
            fake.send(team, stranger, f"/ask {AMBASSADOR}")
            [answer] = await fake.replies(team["id"])
            assert "Vitaly Churkin" in answer["text"]
            fake.send(other_group, stranger, "just chatting")
            fake.send(other_group, stranger, f"@qa_test_bot {AMBASSADOR}")
            [refusal] = await fake.replies(other_group["id"], settle=0.3)
            assert refusal["text"] == REFUSAL

            # A stranger pressing a friend's button (in the allowed group it would work).
            mark = fake.mark()
            fake.send(other_group, friend, f"/ask {AMBASSADOR}")
            [answer] = await fake.replies(other_group["id"], after=mark)
            mark = fake.mark()
            query = fake.press(answer, buttons(answer)["Passage 1"], stranger)
            call = await fake.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
            assert call.params["text"] == REFUSAL and fake.answered(query)
            await asyncio.sleep(0.2)
            assert fake.sent(other_group["id"], after=mark) == []

    run(scenario())


def test_rate_limit_and_length_limit(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service, rate_limit_per_minute=2, max_question_chars=80) as fake:
            user, chat = user_and_chat(30)
            other, other_chat = user_and_chat(31)
            for _ in range(2):
                mark = fake.mark()
                fake.send(chat, user, AMBASSADOR)
                [answer] = await fake.replies(chat["id"], after=mark)
                assert "Vitaly Churkin" in answer["text"]
            mark = fake.mark()
            fake.send(chat, user, AMBASSADOR)
            [slow] = await fake.replies(chat["id"], after=mark)
            assert "slow down" in slow["text"] and "2 questions a minute" in slow["text"]
            assert not fake.calls_of("sendChatAction", after=mark)

            fake.send(other_chat, other, AMBASSADOR)  # others are not affected
            [answer] = await fake.replies(other_chat["id"])
            assert "Vitaly Churkin" in answer["text"]

            mark = fake.mark()
            fake.send(other_chat, other, "Why " * 30 + "?")
            [refusal] = await fake.replies(other_chat["id"], after=mark)
            assert "please keep it under 80" in refusal["text"]

    run(scenario())


class Failing:
    """A service whose ``ask`` fails, to exercise the error handler."""

    def __init__(self, service: QAService, error: Exception):
        self._service, self._error = service, error

    def __getattr__(self, name: str) -> Any:
        return getattr(self._service, name)

    def ask(self, question: str, **kwargs: Any) -> Answer:
        raise self._error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("/secret/path/embeddings is broken"), SORRY),
        (IndexMissingError("no index in /secret/path"), "not available right now"),
    ],
)
def test_errors_are_logged_and_reported_without_internals(
    bot_service: QAService, caplog: pytest.LogCaptureFixture, error: Exception, expected: str
) -> None:
    async def scenario() -> None:
        async with running(Failing(bot_service, error)) as fake:
            user, chat = user_and_chat(40)
            fake.send(chat, user, AMBASSADOR)
            [reply] = await fake.replies(chat["id"])
            assert expected in reply["text"] and "secret" not in reply["text"]

    with caplog.at_level(logging.ERROR, logger="qa_bot.telegram_bot"):
        run(scenario())
    [record] = [r for r in caplog.records if r.name == "qa_bot.telegram_bot"]
    assert record.exc_info is not None and record.exc_info[1] is error


def test_blocked_by_the_user_is_not_an_error(
    bot_service: QAService, caplog: pytest.LogCaptureFixture
) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(45)
            fake.fail_next(
                "sendMessage", code=403, description="Forbidden: bot was blocked by the user"
            )
            mark = fake.mark()
            fake.send(chat, user, AMBASSADOR)
            await fake.wait_for(lambda c: c.method == "sendMessage", after=mark)
            await asyncio.sleep(0.3)
            assert len(fake.calls_of("sendMessage", after=mark)) == 1  # no apology to nobody

    with caplog.at_level(logging.INFO, logger="qa_bot.telegram_bot"):
        run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("blocked" in r.getMessage() for r in caplog.records)


def test_flood_control_and_network_errors_are_retried(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(50)
            fake.fail_next("sendMessage", retry_after=1)
            fake.drop_next("sendMessage")
            started = time.monotonic()
            fake.send(chat, user, AMBASSADOR)
            [answer] = await fake.replies(chat["id"])
            assert "Vitaly Churkin" in answer["text"]
            attempts = fake.calls_of("sendMessage")
            assert [c.ok for c in attempts] == [False, False, True]
            assert attempts[0].error.startswith("Too Many Requests")
            assert attempts[2].at - attempts[0].at >= 1.0  # waited out retry_after
            assert time.monotonic() - started < 10

    run(scenario())


def test_slow_question_does_not_hold_up_other_chats(bot_service: QAService) -> None:
    class Slow:
        def __init__(self, service: QAService):
            self._service = service

        def __getattr__(self, name: str) -> Any:
            return getattr(self._service, name)

        def ask(self, question: str, **kwargs: Any) -> Answer:
            if question.startswith("slow"):
                time.sleep(2)
            return self._service.ask(AMBASSADOR, **kwargs)

    async def scenario() -> None:
        async with running(Slow(bot_service)) as fake:
            slow_user, slow_chat = user_and_chat(60)
            quick_user, quick_chat = user_and_chat(61)
            fake.send(slow_chat, slow_user, "slow question")
            await asyncio.sleep(0.2)
            fake.send(quick_chat, quick_user, "quick question")
            await fake.replies(quick_chat["id"])
            assert fake.sent(slow_chat["id"]) == []  # still thinking, and still typing
            assert fake.calls_of("sendChatAction")[0].params["chat_id"] == slow_chat["id"]
            await fake.replies(slow_chat["id"])

    run(scenario())


def test_outlet_filter_per_chat(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(70)
            for text, expected in [
                ("/outlet", "Outlets: RT."),
                ("/outlet Reuters", "I know no outlet called “Reuters”"),
                ("/outlet rt", "only <b>RT</b>"),
                (AMBASSADOR, "Searching only articles from RT."),
                ("/outlet all", "Searching all outlets again."),
                (AMBASSADOR, "Vitaly Churkin"),
            ]:
                mark = fake.mark()
                fake.send(chat, user, text)
                [reply] = await fake.replies(chat["id"], after=mark)
                rendered = fake.calls_of("sendMessage", after=mark)[0].params["text"]
                assert expected in rendered, (text, rendered)
            assert "Searching only" not in reply["text"]

    run(scenario())


def test_date_range_filter_per_chat(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(71)
            for text, expected, absent in [
                ("/dates", "Searching articles of every date.", None),
                ("/dates last week", "“last” is not a date", None),
                ("/dates 2016-02-30", "“2016-02-30” is not a real date", None),
                ("/dates 2016-10-05 to 2016-10-01", "2016-10-05 is after 2016-10-01", None),
                ("/dates 2016-09", "published 2016-09-01 to 2016-09-30", None),
                (CEASEFIRE, "collective basis", None),
                ("/dates 2016-10-01 -", "published on or after 2016-10-01", None),
                (
                    CEASEFIRE,
                    "published on or after 2016-10-01; 1 article without a stated date left out.",
                    "collective basis",
                ),
                ("/outlet RT", "only <b>RT</b>", None),
                ("/dates ..2016-09-30", "published on or before 2016-09-30", None),
                (CEASEFIRE, "from RT, published on or before 2016-09-30; 1 article without", None),
                ("/dates all", "Searching articles of every date again.", None),
                ("/outlet all", "Searching all outlets again.", None),
                (CEASEFIRE, "collective basis", "Searching only"),
            ]:
                mark = fake.mark()
                fake.send(chat, user, text)
                await fake.replies(chat["id"], after=mark)
                rendered = fake.calls_of("sendMessage", after=mark)[0].params["text"]
                assert expected in rendered, (text, rendered)
                assert absent is None or absent not in rendered, (text, rendered)

    run(scenario())


def test_private_chat_explains_what_it_cannot_do(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(75)
            for kwargs, expected in [
                ({"text": "/frobnicate"}, "I don't know that command. /help"),
                ({"text": None, "location": {"latitude": 1.0, "longitude": 2.0}}, "as text"),
                ({"text": "/ask"}, "Ask me something about the articles"),
            ]:
                mark = fake.mark()
                fake.send(chat, user, **kwargs)
                [reply] = await fake.replies(chat["id"], after=mark)
                assert expected in reply["text"]

    run(scenario())


def test_bad_markup_falls_back_to_plain_text(
    bot_service: QAService, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should the renderer ever produce markup Telegram refuses, the answer still arrives."""
    import qa_bot.telegram_bot as telegram_bot

    monkeypatch.setattr(telegram_bot, "render_answer", lambda answer: ["<b>Broken &amp; <i>x</b>"])

    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(76)
            fake.send(chat, user, AMBASSADOR)
            [reply] = await fake.replies(chat["id"])
            refused = [c for c in fake.calls_of("sendMessage") if not c.ok]
            assert refused and "can't parse entities" in refused[0].error
            assert reply["text"] == "Broken & x" and "entities" not in reply
            assert buttons(reply)  # the buttons survive too

    with caplog.at_level(logging.ERROR, logger="qa_bot.telegram_bot"):
        run(scenario())
    assert any("refused our HTML" in r.getMessage() for r in caplog.records)


def test_webhook_mode(bot_service: QAService) -> None:
    pytest.importorskip("tornado", reason="webhook mode needs python-telegram-bot[webhooks]")
    import socket
    import urllib.error
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    public = "https://bot.example.org/telegram/hook"

    async def scenario() -> None:
        async with running(
            bot_service,
            mode="webhook",
            webhook_listen="127.0.0.1",
            webhook_port=port,
            webhook_url=public,
            webhook_secret=SecretStr("s3cret_Token-1"),
        ) as fake:
            [registered] = fake.calls_of("setWebhook")
            assert registered.params["url"] == public
            assert registered.params["secret_token"] == "s3cret_Token-1"
            assert not fake.calls_of("getUpdates")
            fake.route_webhook(public, f"http://127.0.0.1:{port}/telegram/hook")

            user, chat = user_and_chat(77)
            fake.send(chat, user, AMBASSADOR)
            [answer] = await fake.replies(chat["id"])
            assert "Vitaly Churkin" in answer["text"]
            assert [status for _, status in fake.deliveries] == [200]

            # Without the secret the bot's server refuses the post, and nothing is answered.
            forged = urllib.request.Request(
                f"http://127.0.0.1:{port}/telegram/hook",
                data=b'{"update_id": 99, "message": {}}',
                headers={"Content-Type": "application/json"},
            )
            with pytest.raises(urllib.error.HTTPError) as refused:
                await asyncio.to_thread(urllib.request.urlopen, forged, timeout=5)
            assert refused.value.code == 403

    run(scenario())


def test_the_fake_speaks_python_telegram_bot(bot_service: QAService) -> None:
    """getChat needs the full chat object in v22; errors come back as PTB's exceptions."""
    from telegram import ChatFullInfo
    from telegram.error import BadRequest

    async def scenario() -> None:
        with BotAPIFake() as fake:
            telegram = TelegramSettings(token=SecretStr(fake.token), base_url=fake.base_url)
            application = build_application(bot_service, telegram)
            async with serving(application, poll_timeout=1):
                user, chat = user_and_chat(78)
                fake.send(chat, user, "/help")
                await fake.replies(chat["id"])
                info = await application.bot.get_chat(chat["id"])
                assert isinstance(info, ChatFullInfo) and info.first_name == "User78"
                commands = await application.bot.get_my_commands()
                assert [c.command for c in commands][:2] == ["ask", "sources"]
                with pytest.raises(BadRequest, match=r"(?i)chat not found"):
                    await application.bot.send_message(424242, "hello")
                with pytest.raises(BadRequest, match=r"(?i)message is too long"):
                    await application.bot.send_message(chat["id"], "x" * 4097)

    run(scenario())


# --- hot reload --------------------------------------------------------------------------------


def test_reindex_is_used_without_restart(tmp_path: Path, real_embedder: Any) -> None:
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "vault.txt",
        "Seed vault expands",
        "The Svalbard seed vault received 30,000 new samples on Tuesday, its director said.",
        "2016-09-27",
    )
    settings = load_settings(seeds_dir=seeds, index_dir=tmp_path / "index", root_dir=tmp_path)
    service = QAService(settings, embedder=real_embedder)
    service.index()
    question = "How many beehives did the Oslo rooftop project install?"

    async def scenario() -> None:
        async with running(service) as fake:
            user, chat = user_and_chat(80)
            fake.send(chat, user, "How many samples did the Svalbard seed vault receive?")
            [before] = await fake.replies(chat["id"])
            assert "30,000" in before["text"]
            mark = fake.mark()
            fake.send(chat, user, question)
            [declined] = await fake.replies(chat["id"], after=mark)
            assert declined["text"].startswith("The articles never mention “Oslo”.")
            assert "The articles don't cover this." in declined["text"]

            # `qa-bot index` in another process: a second service over the same folders.
            write_article(
                seeds,
                "bees.txt",
                "Rooftop bees in Oslo",
                "The Oslo rooftop project installed 140 beehives on office buildings this year.",
                "2016-09-28",
            )
            write_article(
                seeds,
                "vault.txt",
                "Seed vault expands",
                "The Svalbard seed vault received 45,000 new samples on Tuesday, its director "
                "said after the count was corrected.",
                "2016-09-27",
            )
            indexer = QAService(settings, embedder=real_embedder)
            # Questions keep being answered while the index is rebuilt.
            rebuild = asyncio.create_task(asyncio.to_thread(indexer.index))
            mark = fake.mark()
            fake.send(chat, user, "How many samples did the Svalbard seed vault receive?")
            await fake.replies(chat["id"], after=mark)
            await rebuild

            mark = fake.mark()
            fake.send(chat, user, question)
            [after] = await fake.replies(chat["id"], after=mark)
            assert "140 beehives" in after["text"]
            assert "Rooftop bees in Oslo" in after["text"]

            # A button under an answer from before the change no longer shows stale text.
            mark = fake.mark()
            query = fake.press(before, buttons(before)["Passage 1"], user)
            call = await fake.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
            assert "changed" in call.params["text"] and fake.answered(query)

    run(scenario())


def test_expired_more_button(bot_service: QAService) -> None:
    async def scenario() -> None:
        async with running(bot_service) as fake:
            user, chat = user_and_chat(90)
            fake.send(chat, user, AMBASSADOR)
            [answer] = await fake.replies(chat["id"])
        # A new bot process (a restart) has no memory of the question behind "More".
        async with running(bot_service) as fake2:
            fake2.add_message(answer)
            mark = fake2.mark()
            query = fake2.press(answer, buttons(answer)["More"], user)
            call = await fake2.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
            assert call.params["text"] == EXPIRED and fake2.answered(query)
            # The Passage button carries everything it needs and survives the restart.
            mark = fake2.mark()
            fake2.press(answer, buttons(answer)["Passage 1"], user)
            [passage] = await fake2.replies(chat["id"], after=mark)
            assert passage["text"].startswith("Passage [1]")

    run(scenario())


# --- the command line --------------------------------------------------------------------------


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
    from qa_bot.telegram_render import render_answer

    [html] = render_answer(bot_service.ask(AMBASSADOR))
    text, entities = parse_html(html)
    assert "Vitaly Churkin" in text and {e["type"] for e in entities} >= {"blockquote", "bold"}
