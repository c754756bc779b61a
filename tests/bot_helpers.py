"""Driving the real bot against the Bot API fake: start both, send, press, read replies."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Coroutine
from typing import Any

from pydantic import SecretStr

from qa_bot.settings import TelegramSettings
from qa_bot.telegram.app import build_application, serving
from tests.botapi_fake import BotAPIFake


def run(coro: Coroutine[Any, Any, Any], timeout: float = 60) -> Any:
    return asyncio.run(asyncio.wait_for(coro, timeout))


@contextlib.asynccontextmanager
async def running(
    service: Any, fake: BotAPIFake | None = None, **settings: Any
) -> AsyncIterator[BotAPIFake]:
    """The bot polling a Bot API fake (a fresh one unless given), with these Telegram
    settings."""
    with contextlib.ExitStack() as stack:
        if fake is None:
            fake = stack.enter_context(BotAPIFake())
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


async def ask(
    fake: BotAPIFake, chat: dict[str, Any], user: dict[str, Any], text: str, **fields: Any
) -> dict[str, Any]:
    """Send a message and wait for the one reply to it."""
    mark = fake.mark()
    fake.send(chat, user, text, **fields)
    [reply] = await fake.replies(chat["id"], after=mark, settle=0.05)
    return reply
