"""The rule that chose the 150 Reuters stories of ``reuters_questions.jsonl``.

Stories sorted by file name; those tagged ``earn`` or with a body under 700 characters left out;
kept are those with at least four prose paragraphs (15 words or more, at least 60% of them
words) making up at least three quarters of the body; then 150 evenly spaced ones.

    python training/data/select_stories.py            # prints the chosen files, one per line
    python training/data/select_stories.py --second   # the second batch (selected_docs2.txt)
    python training/data/select_stories.py --third    # the third batch (selected_docs3.txt)
    python training/data/select_stories.py --fourth   # the fourth batch (selected_docs4.txt)

The second batch (``reuters_questions2.jsonl``): the same rule, the first batch's stories left
out, then 120 evenly spaced ones from the rest. The third (``reuters_questions3.jsonl``): both
earlier batches left out, then 300 evenly spaced ones. The fourth
(``reuters_questions4.jsonl``): the three earlier batches left out, then 240 evenly spaced ones
from the 299 left.
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

REUTERS = Path(__file__).resolve().parents[3] / "shared" / "external" / "reuters21578"
#: Stories per batch, in the order they were chosen: each from those the earlier ones left.
STORIES = (150, 120, 300, 240)
#: The flag that prints each batch (none: the first).
FLAGS = ("", "--second", "--third", "--fourth")


def body(name: str) -> str:
    parts = (REUTERS / "articles" / name).read_text(encoding="utf-8").split("\n", 3)
    return parts[3] if len(parts) > 3 else ""


def prose(paragraph: str) -> bool:
    words = paragraph.split()
    if len(words) < 15:
        return False
    real = sum(1 for w in words if re.fullmatch(r"[A-Za-z][A-Za-z'\-,.;:()]*", w))
    return real / len(words) >= 0.6


def eligible() -> list[str]:
    with (REUTERS / "index.jsonl").open(encoding="utf-8") as lines:
        rows = sorted((json.loads(line) for line in lines), key=lambda r: r["file"])
    kept = []
    for row in rows:
        text = body(row["file"])
        if "earn" in row["topics"] or len(text) < 700:
            continue
        paragraphs = [p for p in text.split("\n\n") if p.strip() and prose(p)]
        if len(paragraphs) >= 4 and sum(len(p) for p in paragraphs) >= 0.75 * len(text):
            kept.append(row["file"])
    return kept


def spaced(stories: list[str], count: int) -> list[str]:
    return [stories[int(i * len(stories) / count)] for i in range(count)]


def batches() -> list[list[str]]:
    """Every batch's stories: each evenly spaced among the eligible ones no earlier batch took."""
    left, out = eligible(), []
    for count in STORIES:
        out.append(spaced(left, count))
        taken = set(out[-1])
        left = [f for f in left if f not in taken]
    return out


if __name__ == "__main__":
    asked = [k for k, flag in enumerate(FLAGS) if flag and flag in sys.argv[1:]]
    for name in batches()[asked[-1] if asked else 0]:
        print(name)
