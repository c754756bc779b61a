"""How soon a watched seeds folder reaches the answers, with the real model.

A copy of the seeds is indexed, ``NewsDesk.watch`` runs in a thread (the defaults of
config/settings.toml: ``watch.debounce_ms``, ``watch.settle_seconds``), and for an added, a
changed and a deleted file the time from the write to the first question whose answer follows
it is printed; then a burst of 100 new files, and how many builds it caused.

    python benchmarks/bench_watch.py
"""

from __future__ import annotations

import shutil
import statistics
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from qa_bot.news import NewsDesk
from qa_bot.runtime import prepare_process
from qa_bot.service import QAService
from qa_bot.settings import load_settings

REPO = Path(__file__).resolve().parents[1]
QUESTION = "How many beehives did the Oslo rooftop project install?"


def _article(body: str) -> str:
    return f"2016-09-28\n\nRooftop bees in Oslo\n\n{body}\n"


def _until(check: Callable[[], bool], limit: float = 120.0) -> float:
    started = time.perf_counter()
    while not check():
        if time.perf_counter() - started > limit:
            raise TimeoutError("the answers never followed the change")
        time.sleep(0.02)
    return time.perf_counter() - started


def _quoted(service: QAService, text: str) -> bool:
    answer = service.ask(QUESTION)
    return any(text in c.quote for c in answer.citations)


def main() -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        shutil.copytree(REPO / "seeds", root / "seeds")
        settings = load_settings(seeds_dir=root / "seeds", index_dir=root / "index", root_dir=root)
        service = QAService(settings)
        builds: list[float] = []
        desk = NewsDesk(settings, lambda: service.index(lock_wait=60))
        stop, ready = threading.Event(), threading.Event()
        thread = threading.Thread(
            target=desk.watch,
            kwargs={
                "stop": stop,
                "on_report": lambda r: builds.append(r.seconds),
                "on_ready": ready.set,
            },
            daemon=True,
        )
        thread.start()
        ready.wait()
        service.ask("warm up")
        bees = root / "seeds" / "bees.txt"
        body = "The Oslo rooftop project installed {} beehives on office buildings this year."
        bees.write_text(_article(body.format(140)))
        added = _until(lambda: _quoted(service, "140 beehives"))
        bees.write_text(_article(body.format(175)))
        changed = _until(lambda: _quoted(service, "175 beehives"))
        bees.unlink()
        deleted = _until(lambda: not _quoted(service, "175 beehives"))
        print(f"added: {added:.2f} s; changed: {changed:.2f} s; deleted: {deleted:.2f} s")
        before = len(builds)
        for i in range(100):
            (root / "seeds" / f"burst_{i:03}.txt").write_text(_article(f"Story {i} happened."))
        _until(lambda: len(builds) > before)
        seen = -1
        while seen != len(builds):  # until no build for 5 s
            seen = len(builds)
            time.sleep(5)
        burst = builds[before:]
        print(f"burst of 100 files: {len(burst)} builds, {statistics.fsum(burst):.1f} s building")
        stop.set()
        thread.join(60)


if __name__ == "__main__":
    prepare_process()
    main()
