"""News keeps arriving, end to end: `qa-bot bot --watch` with scheduled feed pulls, on the Bot
API fake, answers about the newest entry of a loopback feed with a quote and the page's own
date; a page removed from seeds/ stops being cited without a restart."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

from qa_bot.feeds import add_feed, page_path
from qa_bot.service import QAService
from qa_bot.settings import load_settings
from tests.bot_helpers import ask, run, user_and_chat
from tests.botapi_fake import BotAPIFake
from tests.conftest import write_article
from tests.test_feeds import Server, page, rss

ENTRIES = [
    (
        "Ferry line closes",
        "/news/ferry",
        "Mon, 19 Sep 2016 08:00:00 GMT",
        "2016-09-19",
        "The ferry line across the fjord closed for the winter after its last crossing on Monday.",
    ),
    (
        "Airport runway resurfaced",
        "/news/runway",
        "Tue, 20 Sep 2016 08:00:00 GMT",
        "2016-09-20",
        "Crews resurfaced the airport runway over two nights, the airport operator said.",
    ),
    (
        "Vardø tunnel opens",
        "/news/tunnel",
        "Wed, 21 Sep 2016 08:00:00 GMT",
        "2016-09-21",
        "The Vardø tunnel under the fjord opened to traffic fourteen months ahead of schedule, "
        "the roads authority said, and it cost 310 million kroner to build.",
    ),
]
QUESTION = "How much did the Vardø tunnel cost to build?"


def test_feed_to_answer_and_removal_without_restart(tmp_path: Path, export_dir: Path) -> None:
    seeds = tmp_path / "seeds"
    # The index folder holds the model's ONNX export, as after any first build: the bot
    # embeds with it (the real model's vectors) and has no export to make.
    settings = load_settings(seeds_dir=seeds, index_dir=tmp_path / "index", root_dir=tmp_path)
    shutil.copytree(export_dir, QAService(settings).onnx_dir(), copy_function=os.link)
    write_article(
        seeds,
        "bees.txt",
        "Rooftop bees in Oslo",
        "The Oslo rooftop project installed 140 beehives on office buildings.",
        "2016-09-10",
    )
    server = Server()
    server.routes["/feed.xml"] = (
        200,
        {"Content-Type": "application/rss+xml"},
        rss(server.base, [(t, link, date) for t, link, date, _, _ in ENTRIES]),
    )
    for title, link, _, published, body in ENTRIES:
        server.html(link, page(title, body, published + "T06:00:00Z"))
    add_feed(seeds, server.base + "/feed.xml")
    tunnel = seeds / page_path(server.base + "/news/tunnel")

    async def scenario(fake: BotAPIFake, process: subprocess.Popen[str]) -> None:
        user, chat = user_and_chat(7)
        deadline = time.monotonic() + 240
        answer = None
        while answer is None or "310 million kroner" not in answer["text"]:
            assert process.poll() is None, "the bot exited"
            assert time.monotonic() < deadline, f"never answered from the feed: {answer}"
            if fake.calls_of("deleteWebhook"):  # polling has started
                answer = await ask(fake, chat, user, QUESTION)
            await asyncio.sleep(0.5)
        assert "Vardø tunnel opens" in answer["text"]
        assert "2016-09-21" in answer["text"]  # the page's own date
        assert "Loopback News" in answer["text"]

        tunnel.unlink()
        while "Vardø tunnel opens" in answer["text"]:
            assert time.monotonic() < deadline, "the removed page is still cited"
            await asyncio.sleep(0.5)
            answer = await ask(fake, chat, user, QUESTION)

    with BotAPIFake() as fake:
        env = {
            **os.environ,
            "PYTHONPATH": str(Path(__file__).resolve().parents[1] / "src"),
            "QA_BOT_TELEGRAM__TOKEN": fake.token,
            "QA_BOT_TELEGRAM__BASE_URL": fake.base_url,
            "QA_BOT_TELEGRAM__FEEDS_INTERVAL_MINUTES": "60",
            "QA_BOT_WATCH__DEBOUNCE_MS": "200",
            "QA_BOT_FEEDS__PER_SITE_INTERVAL_SECONDS": "0.1",
            "QA_BOT_WATCH__SETTLE_SECONDS": "0.2",
            "QA_BOT_ROOT_DIR": str(tmp_path),
        }
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qa_bot",
                "--seeds",
                str(seeds),
                "--index",
                str(tmp_path / "index"),
                "bot",
                "--watch",
            ],
            env=env,
            stderr=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            text=True,
            cwd=Path(__file__).resolve().parents[1],
        )
        try:
            run(scenario(fake, process), timeout=300)
        finally:
            process.send_signal(signal.SIGINT)
            _, log = process.communicate(timeout=60)
            server.httpd.shutdown()
            server.httpd.server_close()
    assert process.returncode == 0, log
    assert "feeds: 3 new pages, 0 failures" in log
