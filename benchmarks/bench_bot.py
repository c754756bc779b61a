"""Benchmark the Telegram bot end to end: N questions from M simulated users through the
Bot API fake on 127.0.0.1, answered by the real model.

Each user is a private chat that asks its next question as soon as the previous answer arrives
(a closed loop, M questions in flight). Latency is from the moment the update is available to
``getUpdates`` until the fake receives the answer's ``sendMessage``. It is measured twice:

* ``telegram``: with the flood control the bot runs with in production (at most 30 requests a
  second overall, typing indicators included), so the ceiling is Telegram's, not ours;
* ``unthrottled``: without it, which shows what the bot itself can do.

The per-user question limit (telegram.rate_limit_per_minute) is switched off: the simulated
users ask far faster than people.

    python benchmarks/bench_bot.py                        # 200 questions, 20 users
    python benchmarks/bench_bot.py --questions 500 --users 50 --index embeddings
    python benchmarks/bench_bot.py --stub                 # the Telegram layer alone
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from pydantic import SecretStr

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # tests.botapi_fake

from tests.botapi_fake import BotAPIFake  # noqa: E402

from qa_bot.models import Answer, ArticleMeta, Citation  # noqa: E402
from qa_bot.runtime import prepare_process  # noqa: E402
from qa_bot.service import QAService, validate_question  # noqa: E402
from qa_bot.settings import TelegramSettings, load_settings  # noqa: E402
from qa_bot.telegram.app import build_application, serving  # noqa: E402
from qa_bot.telegram.sending import PatientRateLimiter  # noqa: E402

DEV_QUESTIONS = REPO.parent / "shared" / "eval" / "dev_questions.jsonl"
FALLBACK_QUESTIONS = [
    "Who is Russia's ambassador to the UN?",
    "On what basis did Lavrov say the revival of the ceasefire is possible?",
    "How long after the convoy caught fire did the drone leave?",
    "What is the capital of France?",
]


class StubService:
    """Answers instantly with a fixed two-quote answer: measures the Telegram layer alone
    (python-telegram-bot, rendering, the fake), without retrieval."""

    def __init__(self) -> None:
        self.settings = load_settings()
        meta = ArticleMeta(
            id="a",
            path="a.txt",
            title="US-led coalition must prove it really wants to separate Al-Nusra Front",
            outlet="RT",
            date=None,
            date_text="24 Sep, 2016 01:53",
            url=None,
            content_hash="0" * 64,
        )
        quote = "Russia will “no longer take seriously” requests that its forces make concessions."
        self._answer = Answer(
            question="",
            answered=True,
            text="",
            citations=(
                Citation(1, meta, quote, 0, 80, 1.0),
                Citation(2, meta, quote, 90, 170, 0.9),
            ),
        )

    def check_question(self, question: str) -> str:
        return validate_question(question, self.settings.max_question_chars)

    def outlets(self) -> list[str]:
        return ["RT"]

    def vocabulary(self, article_ids: Any) -> frozenset[str]:
        return frozenset()

    def ask(self, question: str, **kwargs: Any) -> Answer:
        return self._answer


class _NoLimits(PatientRateLimiter):
    """Network retries as in production, no flood control."""

    def __init__(self) -> None:
        super().__init__(overall_max_rate=0, group_max_rate=0)


def questions() -> list[str]:
    if DEV_QUESTIONS.is_file():
        lines = DEV_QUESTIONS.read_text(encoding="utf-8").splitlines()
        return [json.loads(line)["question"] for line in lines if line.strip()]
    return FALLBACK_QUESTIONS


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


async def run_load(
    service: Any, *, n: int, users: int, throttled: bool, workers: int
) -> dict[str, Any]:
    pool = itertools.cycle(questions())
    todo = [next(pool) for _ in range(n)]
    latencies: list[float] = []
    with BotAPIFake() as fake:
        settings = TelegramSettings(
            token=SecretStr(fake.token),
            base_url=fake.base_url,
            rate_limit_per_minute=0,
            workers=workers,
        )
        limiter = PatientRateLimiter() if throttled else _NoLimits()
        application = build_application(service, settings, rate_limiter=limiter)
        async with serving(application, poll_timeout=1):
            warm_user = fake.user(999_999)
            fake.send(fake.private_chat(warm_user), warm_user, todo[0])
            await fake.replies(warm_user["id"], settle=0)

            async def user(index: int) -> None:
                person = fake.user(1000 + index, f"User{index}")
                chat = fake.private_chat(person)
                for question in todo[index::users]:
                    mark = fake.mark()
                    fake.send(chat, person, question)
                    sent = time.monotonic()
                    await fake.replies(chat["id"], after=mark, settle=0, timeout=120)
                    answer = fake.calls_of("sendMessage", after=mark)
                    arrived = next(
                        c.at for c in answer if c.ok and c.params["chat_id"] == chat["id"]
                    )
                    latencies.append(arrived - sent)

            started = time.monotonic()
            await asyncio.gather(*(user(i) for i in range(users)))
            elapsed = time.monotonic() - started
            requests = len([c for c in fake.calls if c.method != "getUpdates"])
    return {
        "mode": "telegram" if throttled else "unthrottled",
        "questions": n,
        "users": users,
        "workers": workers,
        "seconds": round(elapsed, 2),
        "answers_per_s": round(n / elapsed, 1),
        "api_requests_per_s": round(requests / elapsed, 1),
        "p50_ms": round(1000 * statistics.median(latencies), 1),
        "p95_ms": round(1000 * percentile(latencies, 95), 1),
        "max_ms": round(1000 * max(latencies), 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--questions", type=int, default=200, help="N: questions in all")
    parser.add_argument("--users", type=int, default=20, help="M: simulated users at once")
    parser.add_argument("--workers", type=int, default=2, help="telegram.workers")
    parser.add_argument("--threads", type=int, default=1, help="embedding threads per worker")
    parser.add_argument("--seeds", type=Path, default=REPO / "seeds")
    parser.add_argument(
        "--index", type=Path, default=None, help="index folder (default: a fresh temporary one)"
    )
    parser.add_argument("--mode", choices=["both", "telegram", "unthrottled"], default="both")
    parser.add_argument(
        "--stub", action="store_true", help="answer instantly: the Telegram layer's own cost"
    )
    args = parser.parse_args()
    modes = [True, False] if args.mode == "both" else [args.mode == "telegram"]
    if args.stub:
        service: Any = StubService()
        report([run_once(service, args, throttled) for throttled in modes])
        return

    with tempfile.TemporaryDirectory() as tmp:
        settings = load_settings(
            seeds_dir=args.seeds,
            index_dir=args.index or Path(tmp) / "index",
            embedding={"threads": args.threads},
        )
        service = QAService(settings)
        started = time.monotonic()
        service.ensure_index()
        service.query_embedder.embed(["warm up"])
        print(f"index and model ready in {time.monotonic() - started:.1f} s", file=sys.stderr)
        report([run_once(service, args, throttled) for throttled in modes])


def run_once(service: Any, args: argparse.Namespace, throttled: bool) -> dict[str, Any]:
    return asyncio.run(
        run_load(
            service,
            n=args.questions,
            users=args.users,
            throttled=throttled,
            workers=args.workers,
        )
    )


def report(results: list[dict[str, Any]]) -> None:
    columns = list(results[0])
    print(" | ".join(columns))
    for row in results:
        print(" | ".join(str(row[c]) for c in columns))


if __name__ == "__main__":
    prepare_process()
    main()
