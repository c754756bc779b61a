"""Follow-ups in the bot, without the model or a network: one question at a time per
conversation, and what the user reads about the context. The dialogues themselves are tested
end to end in ``tests/test_bot.py``."""

from __future__ import annotations

import asyncio

from qa_bot.dialogue.asking import context_note
from qa_bot.models import Answer, Citation
from qa_bot.telegram.render import render_answer, render_help
from qa_bot.telegram.state import KeyedLocks
from tests.botapi_fake import check_message_text

from .conftest import make_meta


def test_one_key_at_a_time_in_arrival_order_other_keys_meanwhile() -> None:
    async def scenario() -> list[str]:
        locks = KeyedLocks()
        events: list[str] = []
        first_holds = asyncio.Event()

        async def turn(key: str, name: str, pause: float) -> None:
            async with locks.hold(key):
                events.append(f"{name} starts")
                if name == "a1":
                    first_holds.set()
                await asyncio.sleep(pause)
                events.append(f"{name} ends")

        tasks = [
            asyncio.create_task(turn("a", "a1", 0.05)),
            asyncio.create_task(turn("a", "a2", 0.0)),
            asyncio.create_task(turn("a", "a3", 0.0)),
        ]
        await first_holds.wait()
        assert len(locks) == 1
        await turn("b", "b1", 0.0)  # not held up by "a"
        await asyncio.gather(*tasks)
        assert len(locks) == 0  # nothing kept once nobody waits
        return events

    events = asyncio.run(scenario())
    assert events == [
        "a1 starts",
        "b1 starts",
        "b1 ends",
        "a1 ends",
        "a2 starts",
        "a2 ends",
        "a3 starts",
        "a3 ends",
    ]


def test_a_lock_is_released_when_the_turn_fails() -> None:
    async def scenario() -> None:
        locks = KeyedLocks()
        try:
            async with locks.hold(1):
                raise RuntimeError("the service failed")
        except RuntimeError:
            pass
        assert len(locks) == 0
        async with asyncio.timeout(1):
            async with locks.hold(1):
                pass

    asyncio.run(scenario())


META = make_meta()


def test_the_context_note_is_shown_escaped_above_the_quotes() -> None:
    note = context_note("What did <b>Lavrov</b> & co say?")
    answered = Answer(
        "When?", True, "", (Citation(1, META, "On Monday.", 0, 1, 1.0),), notes=(note,)
    )
    [html] = render_answer(answered)
    assert html.startswith(
        "<i>Taking your previous question into account: "
        "“What did &lt;b&gt;Lavrov&lt;/b&gt; &amp; co say?”.</i>\n<blockquote>"
    )
    text, _ = check_message_text(html, "HTML")
    assert text.startswith(note)

    declined = Answer("When?", False, "The articles don't cover this.", notes=(note,))
    [html] = render_answer(declined)
    text, _ = check_message_text(html, "HTML")
    assert text == f"{note}\n\nThe articles don't cover this."


def test_help_explains_follow_ups_and_reset() -> None:
    def help_text(seconds: float) -> str:
        html = render_help(
            max_question_chars=500,
            rate_limit_per_minute=10,
            outlets=["RT"],
            context_seconds=seconds,
        )
        return check_message_text(html, "HTML")[0]

    shown = help_text(900)
    assert "builds on your previous question" in shown
    assert "after 15 minutes, or at once with /reset" in shown
    assert "/reset — forget your previous questions" in shown
    assert "after 2 hours" in help_text(7200)
    off = help_text(0)  # no context is kept: nothing to explain but the command
    assert "Follow-ups" not in off and "/reset" in off
