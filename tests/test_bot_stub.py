"""The real bot (python-telegram-bot ``Application``, long polling) against the Bot API fake on
127.0.0.1, answering from a stub service (``tests/stub_service.py``): buttons, commands,
groups, limits, refusals, retries and failures, in seconds; and a rebuilt index, over a real
service without the model (the counting embedder). The scenarios that need the model's answers
are in ``tests/test_bot.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from pathlib import Path
from typing import Any

import pytest
from pydantic import SecretStr

from qa_bot.dialogue.asking import context_note
from qa_bot.errors import IndexMissingError
from qa_bot.models import Answer
from qa_bot.passages import NO_SPEAKER
from qa_bot.service import QAService
from qa_bot.settings import TelegramSettings, load_settings
from qa_bot.telegram.app import build_application, serving
from qa_bot.telegram.render import CHANGED, EXPIRED, REFUSAL, RESET_DONE, SORRY
from tests.bot_helpers import ask, buttons, entity_text, note, run, running, user_and_chat
from tests.botapi_fake import BotAPIFake
from tests.conftest import CountingEmbedder, write_article
from tests.stub_service import DAM_PARAGRAPH, StubService

AMBASSADOR = "Who is Russia's ambassador to the UN?"
CEASEFIRE = "On what basis did Lavrov say the revival of the ceasefire is possible?"
UNANSWERABLE = "What is the capital of France?"
SPILLWAY = "By how much was the Kessel dam spillway undersized?"
COUNCIL = "What did the US call Russia's action in Syria at the Security Council?"
MEETING = "Who asked for that meeting?"


def stub(**conversation: Any) -> StubService:
    service = StubService()
    if conversation:
        settings = service.settings.conversation.model_copy(update=conversation)
        service.settings = service.settings.model_copy(update={"conversation": settings})
    return service


# --- answers and buttons -----------------------------------------------------------------------


def test_unanswerable_question_is_declined_plainly() -> None:
    async def scenario() -> None:
        async with running(stub()) as fake:
            user, chat = user_and_chat(4)
            fake.send(chat, user, UNANSWERABLE)
            [reply] = await fake.replies(chat["id"])
            assert reply["text"].startswith("The articles don't cover this.")
            assert "blockquote" not in {e["type"] for e in reply.get("entities", [])}
            assert set(buttons(reply)) == {"👍", "👎"}  # a reader can still say it is wrong

    run(scenario())


class LongAnswers(StubService):
    """Every answer very long and full of markup-like text (to prove splitting and escaping
    through the real API rules)."""

    def ask(self, question: str, **kwargs: Any) -> Answer:
        import dataclasses

        real = super().ask(AMBASSADOR)
        base = real.citations[0]
        quote = "A <b>claim</b> & “a quote” 🚀 with <i>tags</i> that must stay text. " * 30
        citations = tuple(
            dataclasses.replace(base, n=n, quote=f"{quote} (quote {n})") for n in range(1, 5)
        )
        return dataclasses.replace(real, citations=citations, notes=("A note & <b>more</b>",))


def test_long_answer_is_split_at_boundaries() -> None:
    async def scenario() -> None:
        async with running(LongAnswers()) as fake:
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


def test_a_long_passage_is_one_message_trimmed_around_its_quote() -> None:
    """Issue 15, item 4: one "Passage" press, one message (it used to be a burst)."""

    async def scenario() -> None:
        async with running(stub()) as fake:
            user, chat = user_and_chat(7)
            fake.send(chat, user, SPILLWAY)
            [answer] = await fake.replies(chat["id"])
            assert "forty percent" in answer["text"]
            assert "— outlet unknown, 2016-10-02" in answer["text"]
            mark = fake.mark()
            query = fake.press(answer, buttons(answer)["Passage 1"], user)
            [passage] = await fake.replies(chat["id"], after=mark, settle=0.3)
            assert fake.answered(query)
            assert passage["reply_to_message"]["message_id"] == answer["message_id"]
            [context] = entity_text(passage, "blockquote")
            assert context.endswith(" …") and context[:-2] in DAM_PARAGRAPH
            assert len(passage["text"].encode("utf-16-le")) // 2 <= 4096
            assert entity_text(passage, "bold")[1].startswith("The inquiry found")
            assert passage["text"].rstrip().endswith("2016-10-02")
            assert len(fake.calls_of("sendMessage", after=mark)) == 1

    run(scenario())


def test_more_button_shows_further_passages_once_in_one_message() -> None:
    async def scenario() -> None:
        async with running(stub()) as fake:
            user, chat = user_and_chat(8)
            fake.send(chat, user, SPILLWAY)
            [answer] = await fake.replies(chat["id"])
            shown = len([b for b in buttons(answer) if b.startswith("Passage")])
            mark = fake.mark()
            query = fake.press(answer, buttons(answer)["More"], user)
            [more] = await fake.replies(chat["id"], after=mark, settle=0.3)
            assert fake.answered(query)
            assert more["text"].startswith("Further passages")
            assert f"[{shown + 1}]" in more["text"]
            assert f"Passage {shown + 1}" in buttons(more) and "More" in buttons(more)
            assert len(fake.calls_of("sendMessage", after=mark)) == 1
            # The answer keeps its Passage buttons, without More.
            edited = fake.message(chat["id"], answer["message_id"])
            assert set(buttons(edited)) == set(buttons(answer)) - {"More"}
            for quote in entity_text(more, "blockquote"):
                assert quote[quote.index("] ") + 2 :] not in answer["text"]
            # The kept Passage buttons still work.
            mark = fake.mark()
            fake.press(edited, buttons(edited)["Passage 2"], user)
            [passage] = await fake.replies(chat["id"], after=mark)
            assert passage["text"].startswith("Passage [2]")
            # More of More skips everything shown so far.
            mark = fake.mark()
            fake.press(more, buttons(more)["More"], user)
            [further] = await fake.replies(chat["id"], after=mark)
            assert f"[{2 * shown + 1}]" in further["text"]

    run(scenario())


def test_a_button_without_its_message_is_answered_without_an_error(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Issue 15, item 9: a press with no message attached raised an AssertionError."""

    async def scenario() -> None:
        async with running(stub()) as fake:
            user, chat = user_and_chat(9)
            fake.send(chat, user, AMBASSADOR)
            [answer] = await fake.replies(chat["id"])
            mark = fake.mark()
            query = fake.press_detached(buttons(answer)["Passage 1"], user)
            call = await fake.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
            assert call.params["text"] == EXPIRED and fake.answered(query)
            await asyncio.sleep(0.2)
            assert fake.sent(chat["id"], after=mark) == []

    with caplog.at_level(logging.WARNING):
        run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR], caplog.text


def test_buttons_expire_after_a_restart_without_persistence_and_survive_with_it(
    tmp_path: Path,
) -> None:
    async def restart(service: StubService) -> tuple[str, str]:
        """Ask, restart the bot, press Passage and More; the two alerts or replies."""
        async with running(service) as fake:
            user, chat = user_and_chat(90)
            fake.send(chat, user, SPILLWAY)
            [answer] = await fake.replies(chat["id"])
        async with running(service) as fake2:  # a new process: a new bot, a new fake
            fake2.add_message(answer)
            results = []
            for label in ("Passage 1", "More"):
                mark = fake2.mark()
                query = fake2.press(answer, buttons(answer)[label], user)
                call = await fake2.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
                assert fake2.answered(query)
                if "text" not in call.params:  # answered quietly: the reply is a message
                    call = await fake2.wait_for(lambda c: c.method == "sendMessage", after=mark)
                results.append(call.params["text"])
            return results[0], results[1]

    passage, more = run(restart(stub()))
    assert passage == more == EXPIRED
    passage, more = run(restart(stub(persist_path=tmp_path / "state" / "bot.pickle")))
    assert "Passage [1]" in passage and "Further passages" in more


def test_a_changed_article_is_said_to_have_changed() -> None:
    class Changed(StubService):
        def passage(self, article_id: str, start: int, end: int, **kw: Any) -> Any:
            return super().passage(article_id, start, end, content_hash="0" * 64)

    async def scenario() -> None:
        async with running(Changed()) as fake:
            user, chat = user_and_chat(91)
            fake.send(chat, user, AMBASSADOR)
            [answer] = await fake.replies(chat["id"])
            mark = fake.mark()
            fake.press(answer, buttons(answer)["Passage 1"], user)
            call = await fake.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
            assert call.params["text"] == CHANGED

    run(scenario())


# --- groups, conversations, state --------------------------------------------------------------


def test_group_answers_only_when_addressed() -> None:
    async def scenario() -> None:
        async with running(stub()) as fake:
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


def test_in_a_group_everyone_has_their_own_topic() -> None:
    async def scenario() -> None:
        async with running(stub()) as fake:
            group = BotAPIFake.group(-100600, "Desk")
            ann, bob = BotAPIFake.user(112, "Ann"), BotAPIFake.user(113, "Bob")
            await ask(fake, group, ann, f"/ask {COUNCIL}")
            await ask(fake, group, bob, f"/ask {CEASEFIRE}")

            answer = await ask(fake, group, ann, f"/ask {MEETING}")
            assert note(answer) == context_note(COUNCIL)
            answer = await ask(fake, group, bob, "@qa_test_bot Who said so?")
            assert note(answer) == context_note(CEASEFIRE)

            # Bob's /reset forgets Bob's topic only.
            assert (await ask(fake, group, bob, "/reset"))["text"] == RESET_DONE
            assert note(await ask(fake, group, bob, "/ask Who said so?")) is None
            assert note(await ask(fake, group, ann, f"/ask {MEETING}")) == context_note(COUNCIL)

    run(scenario())


def test_who_said_so_quotes_the_sentence_naming_the_speaker() -> None:
    async def scenario() -> None:
        async with running(stub()) as fake:
            user, chat = user_and_chat(117)
            await ask(fake, chat, user, CEASEFIRE)
            said = await ask(fake, chat, user, "who said so?")
            assert "Lavrov said the revival of the ceasefire" in said["text"]
            assert note(said) == context_note(CEASEFIRE)
            await ask(fake, chat, user, "/reset")
            await ask(fake, chat, user, COUNCIL)  # "Power called Russia's action ... barbarism."
            said = await ask(fake, chat, user, "And who said that?")  # calling is not saying
            assert NO_SPEAKER in said["text"] and note(said) == context_note(COUNCIL)

    run(scenario())


def test_a_self_contained_question_is_not_polluted() -> None:
    async def scenario() -> None:
        async with running(stub()) as fake:
            user, chat = user_and_chat(114)
            other, fresh = user_and_chat(115)
            await ask(fake, chat, user, COUNCIL)
            second = await ask(fake, chat, user, AMBASSADOR)
            alone = await ask(fake, fresh, other, AMBASSADOR)
            assert note(second) is None
            assert second["text"] == alone["text"]
            assert second["entities"] == alone["entities"]

    run(scenario())


def test_questions_of_one_chat_are_answered_in_order() -> None:
    class SlowFirst(StubService):
        def ask(self, question: str, **kwargs: Any) -> Answer:
            if question == COUNCIL:
                time.sleep(1)
            return super().ask(question, **kwargs)

    async def scenario() -> None:
        async with running(SlowFirst()) as fake:
            user, chat = user_and_chat(116)
            fake.send(chat, user, COUNCIL)
            fake.send(chat, user, MEETING)  # at once: the first is still being answered
            first, second = await fake.replies(chat["id"], count=2)
            assert "barbarism" in first["text"]
            assert note(second) == context_note(COUNCIL)  # the second saw the first turn
            assert len(fake.sent(chat["id"])) == 2

    run(scenario())


def test_context_is_forgotten_after_its_ttl() -> None:
    async def scenario() -> None:
        async with running(stub(ttl_seconds=1)) as fake:
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


def test_chat_state_survives_a_restart_with_persistence(tmp_path: Path) -> None:
    """Context, /outlet and the answers a reply can build on are kept by python-telegram-bot's
    persistence, written at shutdown (and every minute), not on each message."""
    path = tmp_path / "bot.pickle"
    service = stub(persist_path=path)

    async def scenario() -> None:
        async with running(service) as fake:
            user, chat = user_and_chat(118)
            council = await ask(fake, chat, user, COUNCIL)
            await ask(fake, chat, user, "/outlet RT")
            assert not path.exists()  # nothing written on the request path
        assert path.exists()
        async with running(service) as fake:
            fake.add_message(council)
            answer = await ask(fake, chat, user, MEETING)
            assert note(answer) == context_note(COUNCIL)
            assert service.calls[-1]["filters"].outlets == ("RT",)
            replied = await ask(fake, chat, user, "Who?", reply_to=council)
            assert note(replied) == context_note(COUNCIL, replied=True)

    run(scenario())


def test_reindex_is_used_without_restart(tmp_path: Path) -> None:
    """A real service over a tiny index (the counting embedder, no model): a `qa-bot index`
    in another process is answered from by the next question, and a button under an older
    answer says its article changed."""
    seeds = tmp_path / "seeds"
    write_article(
        seeds,
        "vault.txt",
        "Seed vault expands",
        "The Svalbard seed vault received 30,000 new samples on Tuesday, its director said.",
        "2016-09-27",
    )
    settings = load_settings(seeds_dir=seeds, index_dir=tmp_path / "index", root_dir=tmp_path)
    service = QAService(settings, embedder=CountingEmbedder())
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
            indexer = QAService(settings, embedder=CountingEmbedder())
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


# --- commands ----------------------------------------------------------------------------------


def test_commands_answer_from_the_service() -> None:
    async def scenario() -> None:
        async with running(stub(), example_questions=[AMBASSADOR, CEASEFIRE, "not shown"]) as fake:
            user, chat = user_and_chat(1)
            fake.send(chat, user, "/start")
            [welcome] = await fake.replies(chat["id"])
            assert "3 news articles" in welcome["text"]
            assert AMBASSADOR in welcome["text"] and "not shown" not in welcome["text"]
            assert [c["command"] for c in fake.commands][:2] == ["ask", "sources"]
            assert "reset" in {c["command"] for c in fake.commands}
            for command, expected in [
                ("/help", "/outlet"),
                ("/sources", "Kessel dam inquiry finds design flaws"),
                ("/status", "Up to date"),
                ("/about", "Articles: 3"),
            ]:
                reply = await ask(fake, chat, user, command)
                assert expected in reply["text"], (command, reply["text"])

    run(scenario())


def test_outlet_filter_per_chat() -> None:
    service = stub()

    async def scenario() -> None:
        async with running(service) as fake:
            user, chat = user_and_chat(70)
            for text, expected in [
                ("/outlet", "Outlets: RT."),
                ("/outlet Reuters", "I know no outlet called “Reuters”"),
                ("/outlet rt", "Searching only RT. <code>/outlet all</code>"),
                (AMBASSADOR, "Searching only articles from RT."),
                ("/outlet all", "Searching every outlet again."),
                (AMBASSADOR, "Vitaly Churkin"),
            ]:
                mark = fake.mark()
                fake.send(chat, user, text)
                [reply] = await fake.replies(chat["id"], after=mark)
                rendered = fake.calls_of("sendMessage", after=mark)[0].params["text"]
                assert expected in rendered, (text, rendered)
            assert "Searching only" not in reply["text"]

    run(scenario())


def test_date_range_filter_per_chat() -> None:
    service = stub()

    async def scenario() -> None:
        async with running(service) as fake:
            user, chat = user_and_chat(71)
            for text, expected in [
                ("/dates", "Searching articles of every date."),
                ("/dates last week", "“last” is not a date"),
                ("/dates 2016-02-30", "“2016-02-30” is not a real date"),
                ("/dates 2016-10-05 to 2016-10-01", "2016-10-05 is after 2016-10-01"),
                ("/dates 2016-09", "published 2016-09-01 to 2016-09-30"),
                ("/dates 2016-10-01 -", "published on or after 2016-10-01"),
                (SPILLWAY, "forty percent"),
                ("/outlet RT", "Searching only RT."),
                ("/dates ..2016-09-30", "published on or before 2016-09-30"),
                (CEASEFIRE, "from RT, published on or before 2016-09-30"),
                ("/dates all", "Searching articles of every date again."),
                ("/outlet all", "Searching every outlet again."),
            ]:
                mark = fake.mark()
                fake.send(chat, user, text)
                await fake.replies(chat["id"], after=mark)
                rendered = fake.calls_of("sendMessage", after=mark)[0].params["text"]
                assert expected in rendered, (text, rendered)
            filters = [c["filters"] for c in service.calls]
            assert filters[0].since.isoformat() == "2016-10-01" and filters[0].until is None
            assert filters[1].outlets == ("RT",) and filters[1].until.isoformat() == "2016-09-30"
            await ask(fake, chat, user, CEASEFIRE)
            assert service.calls[-1]["filters"] is None

    run(scenario())


def test_private_chat_explains_what_it_cannot_do() -> None:
    async def scenario() -> None:
        async with running(stub()) as fake:
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
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Should the renderer ever produce markup Telegram refuses, the answer still arrives."""
    import qa_bot.telegram.questions as questions

    monkeypatch.setattr(questions, "render_answer", lambda answer: ["<b>Broken &amp; <i>x</b>"])

    async def scenario() -> None:
        async with running(stub()) as fake:
            user, chat = user_and_chat(76)
            fake.send(chat, user, AMBASSADOR)
            [reply] = await fake.replies(chat["id"])
            refused = [c for c in fake.calls_of("sendMessage") if not c.ok]
            assert refused and "can't parse entities" in refused[0].error
            assert reply["text"] == "Broken & x" and "entities" not in reply
            assert buttons(reply)  # the buttons survive too

    with caplog.at_level(logging.ERROR, logger="qa_bot.telegram.sending"):
        run(scenario())
    assert any("refused our HTML" in r.getMessage() for r in caplog.records)


# --- who may ask, and how often ---------------------------------------------------------------


def test_allowlist_refuses_strangers_once_per_chat_per_interval() -> None:
    """Issue 15, item 9: a stranger used to get one refusal per message."""

    async def scenario() -> None:
        async with running(stub(), allowed_user_ids=[20], allowed_chat_ids=[-100777]) as fake:
            friend, friend_chat = user_and_chat(20)
            stranger, stranger_chat = user_and_chat(21)
            team = BotAPIFake.group(-100777, "Team")
            other_group = BotAPIFake.group(-100888, "Elsewhere")

            assert "Vitaly Churkin" in (await ask(fake, friend_chat, friend, AMBASSADOR))["text"]

            mark = fake.mark()
            for text in (AMBASSADOR, "/start", "/sources"):
                fake.send(stranger_chat, stranger, text)
            [refusal] = await fake.replies(stranger_chat["id"], after=mark, settle=0.5)
            assert refusal["text"] == REFUSAL

            # Strangers in an allowed group may ask; in another group, chatter stays unanswered
            # and addressed messages are refused.
            assert (
                "Vitaly Churkin" in (await ask(fake, team, stranger, f"/ask {AMBASSADOR}"))["text"]
            )
            fake.send(other_group, stranger, "just chatting")
            fake.send(other_group, stranger, f"@qa_test_bot {AMBASSADOR}")
            [refusal] = await fake.replies(other_group["id"], settle=0.3)
            assert refusal["text"] == REFUSAL

            # A stranger pressing a friend's button: answered (so it stops spinning), silently
            # now that this chat was told no.
            answer = await ask(fake, other_group, friend, f"/ask {AMBASSADOR}")
            mark = fake.mark()
            query = fake.press(answer, buttons(answer)["Passage 1"], stranger)
            call = await fake.wait_for(lambda c: c.method == "answerCallbackQuery", after=mark)
            assert "text" not in call.params and fake.answered(query)
            await asyncio.sleep(0.2)
            assert fake.sent(other_group["id"], after=mark) == []

    run(scenario())


def test_a_stranger_is_told_again_once_the_interval_has_passed() -> None:
    async def scenario() -> None:
        async with running(stub(), allowed_user_ids=[20], refusal_interval_seconds=0.3) as fake:
            stranger, chat = user_and_chat(22)
            assert (await ask(fake, chat, stranger, AMBASSADOR))["text"] == REFUSAL
            mark = fake.mark()
            fake.send(chat, stranger, "/help")
            await asyncio.sleep(0.2)
            assert fake.sent(chat["id"], after=mark) == []
            await asyncio.sleep(0.15)
            assert (await ask(fake, chat, stranger, "/help"))["text"] == REFUSAL

    run(scenario())


def test_rate_limit_and_length_limit() -> None:
    service = stub()
    service.settings = service.settings.model_copy(update={"max_question_chars": 80})

    async def scenario() -> None:
        async with running(service, rate_limit_per_minute=2) as fake:
            user, chat = user_and_chat(30)
            other, other_chat = user_and_chat(31)
            for _ in range(2):
                assert "Vitaly Churkin" in (await ask(fake, chat, user, AMBASSADOR))["text"]
            mark = fake.mark()
            fake.send(chat, user, AMBASSADOR)
            [slow] = await fake.replies(chat["id"], after=mark)
            assert "slow down" in slow["text"] and "2 questions a minute" in slow["text"]
            assert not fake.calls_of("sendChatAction", after=mark)

            # others are not affected
            assert "Vitaly Churkin" in (await ask(fake, other_chat, other, AMBASSADOR))["text"]
            refusal = await ask(fake, other_chat, other, "Why " * 30 + "?")
            assert "please keep it under 80" in refusal["text"]

    run(scenario())


# --- failures ----------------------------------------------------------------------------------


class Failing(StubService):
    """A service whose ``ask`` fails, to exercise the error handler."""

    error: Exception = RuntimeError()

    def ask(self, question: str, **kwargs: Any) -> Answer:
        raise self.error


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        (RuntimeError("/secret/path/embeddings is broken"), SORRY),
        (IndexMissingError("no index in /secret/path"), "not available right now"),
    ],
)
def test_errors_are_logged_and_reported_without_internals(
    caplog: pytest.LogCaptureFixture, error: Exception, expected: str
) -> None:
    service = Failing()
    service.error = error

    async def scenario() -> None:
        async with running(service) as fake:
            user, chat = user_and_chat(40)
            fake.send(chat, user, AMBASSADOR)
            [reply] = await fake.replies(chat["id"])
            assert expected in reply["text"] and "secret" not in reply["text"]

    with caplog.at_level(logging.ERROR, logger="qa_bot.telegram.handlers"):
        run(scenario())
    [record] = [r for r in caplog.records if r.name == "qa_bot.telegram.handlers"]
    assert record.exc_info is not None and record.exc_info[1] is error


def test_blocked_by_the_user_is_not_an_error(caplog: pytest.LogCaptureFixture) -> None:
    async def scenario() -> None:
        async with running(stub()) as fake:
            user, chat = user_and_chat(45)
            fake.fail_next(
                "sendMessage", code=403, description="Forbidden: bot was blocked by the user"
            )
            mark = fake.mark()
            fake.send(chat, user, AMBASSADOR)
            await fake.wait_for(lambda c: c.method == "sendMessage", after=mark)
            await asyncio.sleep(0.3)
            assert len(fake.calls_of("sendMessage", after=mark)) == 1  # no apology to nobody

    with caplog.at_level(logging.INFO, logger="qa_bot.telegram.handlers"):
        run(scenario())
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert any("blocked" in r.getMessage() for r in caplog.records)


def test_flood_control_is_waited_out_until_the_answer_is_delivered() -> None:
    """Issue 15, item 9: a fourth 429 in a row used to replace the answer with an apology."""

    async def scenario() -> None:
        async with running(stub()) as fake:
            user, chat = user_and_chat(50)
            for _ in range(4):
                fake.fail_next("sendMessage", retry_after=1)
            fake.drop_next("sendMessage")
            started = time.monotonic()
            fake.send(chat, user, AMBASSADOR)
            [answer] = await fake.replies(chat["id"], timeout=20, settle=0.3)
            assert "Vitaly Churkin" in answer["text"]
            attempts = fake.calls_of("sendMessage")
            assert [c.ok for c in attempts] == [False] * 5 + [True]
            assert attempts[0].error.startswith("Too Many Requests")
            assert attempts[4].at - attempts[0].at >= 4.0  # waited out each retry_after
            assert time.monotonic() - started < 15

    run(scenario(), timeout=30)


def test_a_reply_that_cannot_get_through_in_time_is_given_up_without_an_apology(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        async with running(stub(), send_deadline_seconds=1) as fake:
            user, chat = user_and_chat(51)
            for _ in range(2):
                fake.fail_next("sendMessage", retry_after=1)
            fake.send(chat, user, AMBASSADOR)
            await fake.wait_for(lambda c: c.method == "sendMessage", timeout=5)
            await asyncio.sleep(1.5)
            attempts = fake.calls_of("sendMessage")
            assert attempts and not any(c.ok for c in attempts)  # no answer, and no apology
            assert all("Vitaly" in c.params["text"] for c in attempts)

    with caplog.at_level(logging.ERROR, logger="qa_bot.telegram.handlers"):
        run(scenario())
    assert any(r.name == "qa_bot.telegram.handlers" for r in caplog.records)


def test_a_send_that_times_out_is_neither_repeated_nor_apologised_for() -> None:
    """Issue 15, item 9: the answer arrived, and then "Sorry, something went wrong" too."""

    async def scenario() -> None:
        async with running(stub(), read_timeout_seconds=0.2) as fake:
            user, chat = user_and_chat(52)
            fake.delay_next("sendMessage", 0.6)
            fake.send(chat, user, AMBASSADOR)
            [answer] = await fake.replies(chat["id"], settle=0.8)
            assert "Vitaly Churkin" in answer["text"]
            assert len(fake.calls_of("sendMessage")) == 1

    run(scenario())


def test_slow_question_does_not_hold_up_other_chats() -> None:
    class Slow(StubService):
        def ask(self, question: str, **kwargs: Any) -> Answer:
            if question.startswith("slow"):
                time.sleep(1)
            return super().ask(AMBASSADOR, **kwargs)

    async def scenario() -> None:
        async with running(Slow()) as fake:
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


# --- transport -----------------------------------------------------------------------------------


def test_webhook_mode() -> None:
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
            stub(),
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


def test_the_fake_speaks_python_telegram_bot() -> None:
    """getChat needs the full chat object in v22; errors come back as PTB's exceptions."""
    from telegram import ChatFullInfo
    from telegram.error import BadRequest

    async def scenario() -> None:
        with BotAPIFake() as fake:
            telegram = TelegramSettings(token=SecretStr(fake.token), base_url=fake.base_url)
            application = build_application(stub(), telegram)
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


def test_the_stub_has_the_services_methods() -> None:
    """The stub stands in for QAService: every public method it has, the service has too,
    with the same parameters."""
    import inspect

    from qa_bot.service import QAService

    for name, method in inspect.getmembers(StubService, inspect.isfunction):
        if name.startswith("_"):
            continue
        real = getattr(QAService, name)
        assert list(inspect.signature(method).parameters) == list(
            inspect.signature(real).parameters
        ), name
